/* aws.h - signed AWS calls: the Query APIs and S3 reads and writes. */
#ifndef ASG_AWS_H
#define ASG_AWS_H

#include <stddef.h>

#include "creds.h"
#include "imds.h"
#include "outcome.h"
#include "pace.h"
#include "xml.h"

enum aws_service {
	AWS_EC2,
	AWS_AUTOSCALING,
	AWS_ELBV2,
	AWS_S3,
	AWS_CLOUDWATCH,		/* metrics and alarms: the Query API "monitoring" */
	AWS_STS,
	AWS_ELB,		/* Classic Load Balancers: same host as elbv2, older version */
	AWS_NSERVICES
};

/*
 * aws_call and aws_s3_open return an enum outcome: OUTCOME_OK; OUTCOME_FATAL
 * when AWS answered with an error (code and message set); OUTCOME_RETRY or
 * OUTCOME_THROTTLED when there was no usable answer (network, 5xx, no
 * credentials, still throttled after api_timeout: see cause). The older
 * names, for the callers that still use them:
 */
#define AWS_OK		OUTCOME_OK
#define AWS_ERROR	OUTCOME_FATAL

#define AWS_MAX_ACTIONS	32

struct halt;

struct aws_counter {
	char		*action;
	unsigned long	 calls;
	unsigned long	 throttled;
	unsigned long	 errors;
};

struct aws {
	struct imds		*imds;
	struct creds_provider	*creds;
	char			*region;
	char			*endpoint_url;	/* from the config; env wins */
	double			 api_timeout;	/* seconds of retrying per call */
	double			 clock_offset;	/* server time minus ours */
	double			 max_rate;	/* requests per second at most; 0: no limit */
	double			 tokens;	/* the rate limiter's bucket */
	double			 refilled;	/* mono_now() of the last refill */
	double			 slowdown;	/* >= 1: grows on throttling, shrinks on success */
	int			 adaptive;	/* [aws] retry_mode = adaptive */
	struct pace		 pace[AWS_NSERVICES];	/* one per API bucket */
	const struct halt	*halt;		/* stopped: calls end, no more retries */
	struct aws_counter	 counters[AWS_MAX_ACTIONS];
	size_t			 ncounters;
};

struct aws_param {
	const char	*name;
	const char	*value;
};

struct http_header;

struct aws_result {
	long		 status;
	struct http_header *headers;	/* S3 writes: the answer's headers */
	size_t		 nheaders;
	char		*body;
	struct xml_node	*xml;		/* parsed body, or NULL */
	char		*code;		/* AWS_ERROR */
	char		*message;
	char		*request_id;
};

void	aws_init(struct aws *, struct imds *, struct creds_provider *,
	    const char *region, const char *endpoint_url, double api_timeout);
void	aws_free(struct aws *);
/* The region: AWS_REGION, AWS_DEFAULT_REGION, the one configured, then IMDS. */
int	aws_resolve_region(struct aws *, const char *configured, char **);
int	aws_service_parse(const char *);
const char *aws_service_name(int);
/* The endpoint for a service: per-service env, AWS_ENDPOINT_URL, config, then AWS's. */
char	*aws_endpoint(const struct aws *, int);
/*
 * One Query API call. Its answers go through awserr_classify: throttling,
 * 5xx, transient codes and connection errors are retried until api_timeout;
 * a skewed clock or expired credentials are fixed and retried at once, once.
 */
enum outcome aws_call(struct aws *, int service, const char *action,
	    const struct aws_param *, size_t, struct aws_result *, char **);
/* aws_call, 0 when OUTCOME_OK; else -1 with the action named first in the cause. */
int	aws_call_ok(struct aws *, int service, const char *action,
	    const struct aws_param *, size_t, struct aws_result *, char **);
void	aws_result_free(struct aws_result *);
/* Split s3://BUCKET/KEY; -1 with a cause when malformed. */
int	aws_s3_parse_url(const char *, char **bucket, char **key, char **);
/*
 * Open an S3 object for streaming from byte offset from up to byte to
 * (inclusive; <= 0: to the end), a Range request unless the whole object.
 * Errors are classified and retried as for aws_call.
 */
struct http_stream;
enum outcome aws_s3_open(struct aws *, const char *bucket, const char *key, long long from,
	    long long to, struct http_stream **, char **);
/*
 * One S3 request that writes (PutObject, the multipart calls) or asks about an
 * object (HeadObject), with a body from memory or from a file range; retried
 * as aws_call is. A body read from a file is read again on each attempt.
 */
struct http_file_body;
struct aws_s3_request {
	const char			*action;	/* "PutObject": names the call */
	const char			*method;
	const char			*bucket;
	const char			*key;
	const char			*query;		/* after '?', or NULL */
	const struct aws_param		*headers;	/* x-amz-meta-* and the like: signed */
	size_t				 nheaders;
	const void			*body;
	size_t				 body_len;
	const struct http_file_body	*body_file;	/* or NULL */
	const char			*body_sha256;	/* hex of the body */
};
enum outcome aws_s3_call(struct aws *, const struct aws_s3_request *, struct aws_result *,
	    char **);
/* A header of an S3 answer, or NULL. */
const char *aws_result_header(const struct aws_result *, const char *);
/*
 * How much slower than normal to poll: doubles with every throttling answer
 * and halves with every success (1 to 32). Polling loops scale their delays.
 */
double	aws_slowdown(const struct aws *);
/* Record an answer: throttled or not (adjusts the slowdown). */
void	aws_adapt(struct aws *, int throttled);
/* Block until the per-process rate ceiling allows one more request. */
void	aws_rate_wait(struct aws *);
/*
 * Seconds adaptive pacing holds the next request to a service (0: none), so
 * that a loop with more to do than this call asks later rather than block.
 */
double	aws_held(const struct aws *, int service);
/* Whether an error code means "slow down". */
int	aws_is_throttle(const char *);
/* Pull Code, Message and RequestId out of any AWS error body; 0 if found. */
int	aws_parse_error(const struct xml_node *, char **, char **, char **);

#endif
