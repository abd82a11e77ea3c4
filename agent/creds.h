/* creds.h - the credential chain: environment, else the instance role through IMDS. */
#ifndef ASG_CREDS_H
#define ASG_CREDS_H

#include "imds.h"

struct creds {
	char	*access_key_id;
	char	*secret_access_key;	/* wiped when replaced */
	char	*session_token;		/* wiped when replaced */
	double	 expiration;		/* epoch seconds; 0: does not expire */
};

struct creds_provider {
	struct imds	*imds;
	struct creds	 cur;
	char		*role;
	char		*source;	/* "environment" or "instance role NAME" */
	double		 fetched;	/* wall_now() of the last fetch */
	unsigned long	 refreshes;
};

#define CREDS_REFRESH_MARGIN	300	/* refresh this long before Expiration */

void	creds_init(struct creds_provider *, struct imds *);
void	creds_free(struct creds_provider *);
/* Current credentials, fetched or refreshed as needed. */
int	creds_get(struct creds_provider *, const struct creds **, char **);
/* Forget the cached credentials (the service said they expired). */
void	creds_invalidate(struct creds_provider *);
void	creds_clear(struct creds *);
/* Parse IMDS's security-credentials JSON; exported for the unit tests. */
int	creds_parse_imds(const char *, struct creds *, char **);
/* Parse an ISO 8601 UTC time like 2026-11-22T15:40:00Z; -1 when malformed. */
double	creds_parse_time(const char *);

#endif
