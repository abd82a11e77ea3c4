/* imds.h - IMDSv2 client: session tokens, retries while the service is not up yet. */
#ifndef ASG_IMDS_H
#define ASG_IMDS_H

#include "outcome.h"

struct halt;

struct imds {
	char		*endpoint;
	char		*token;		/* wiped when replaced */
	double		 token_expiry;	/* mono_now() seconds */
	double		 timeout;	/* seconds one call keeps retrying */
	int		 disabled;	/* AWS_EC2_METADATA_DISABLED */
	const struct halt *halt;	/* stopped by a signal: give up waiting */
	unsigned long	 requests;	/* counters for the status view */
	unsigned long	 retries;
	double		 clock_offset;	/* IMDS's Date minus our clock, at the last answer */
	int		 clock_known;	/* an answer had a Date header */
};

/* Endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT, else the one given, else 169.254.169.254. */
void	imds_init(struct imds *, const char *endpoint, double timeout);
void	imds_free(struct imds *);
/*
 * GET latest/PATH into *out, retried until the timeout: OUTCOME_OK,
 * OUTCOME_NOT_FOUND (404: an answer, e.g. tags in IMDS are off), or
 * OUTCOME_FATAL (disabled, refused, or no answer within the timeout).
 */
enum outcome imds_get(struct imds *, const char *path, char **out, char **cause);

#endif
