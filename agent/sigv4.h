/* sigv4.h - AWS Signature Version 4 (canonical request, string to sign, Authorization). */
#ifndef ASG_SIGV4_H
#define ASG_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "util.h"

struct sigv4_header {
	const char	*name;
	const char	*value;
};

struct sigv4_request {
	const char			*method;
	const char			*path;		/* as on the request line */
	const char			*query;		/* after '?', or NULL */
	const struct sigv4_header	*headers;	/* every header to sign */
	size_t				 nheaders;
	const char			*payload_hash;	/* hex, "UNSIGNED-PAYLOAD", or NULL to hash body */
	const void			*body;
	size_t				 body_len;
	const char			*region;
	const char			*service;
	const char			*amz_date;	/* YYYYMMDDTHHMMSSZ */
	int				 s3;		/* S3 rules: path signed as sent */
};

int	sigv4_canonical_request(const struct sigv4_request *, struct buf *, char **);
int	sigv4_string_to_sign(const struct sigv4_request *, struct buf *, char **);
int	sigv4_authorization(const struct sigv4_request *, const char *access_key_id,
	    const char *secret_access_key, struct buf *, char **);
void	sigv4_sha256_hex(const void *, size_t, char out[65]);
void	sigv4_amz_date(time_t, char out[17]);
/* RFC 3986 percent-encoding as AWS wants it; '/' kept when keep_slash. */
void	sigv4_uri_encode(struct buf *, const char *, size_t, int keep_slash);

#endif
