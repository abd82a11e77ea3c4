/* awserr.h - what one answer to an AWS call means: the one classifier for Query APIs and S3. */
#ifndef ASG_AWSERR_H
#define ASG_AWSERR_H

/* Clocks further apart than this (seconds) explain a signature or request-time error. */
#define AWSERR_SKEW_LIMIT	300

/* The transport result of an attempt that was never sent (no credentials to sign with). */
#define AWSERR_NOT_SENT		(-1)

/* Fixes a call has already tried; each is tried once per call. */
#define AWSERR_TRIED_CLOCK	0x1
#define AWSERR_TRIED_CREDS	0x2

enum awserr_decision {
	AWSERR_OK,		/* a 2xx answer without an error: done */
	AWSERR_RETRY,		/* no usable answer (network, 5xx, transient): pause, ask again */
	AWSERR_THROTTLED,	/* slow down: pause longer, ask again */
	AWSERR_FIX_CLOCK,	/* our clock is off: sign with the server's time, ask again at once */
	AWSERR_REFRESH_CREDS,	/* the credentials expired: fetch new ones, ask again at once */
	AWSERR_FATAL,		/* a final answer: asking again gives the same */
	AWSERR_GIVE_UP,		/* no answer, and asking again now will not help (TLS, bad URL,
				   not sent): the call ends as OUTCOME_RETRY */
};

/* One attempt of a call, as far as the decision needs it. */
struct awserr_answer {
	int		 transport;	/* enum http_err, or AWSERR_NOT_SENT */
	long		 status;	/* HTTP status, when the transport is HTTP_OK */
	const char	*code;		/* AWS error code, NULL without an error */
	double		 skew;		/* the server's clock minus ours, seconds; 0 if unknown */
	int		 tried;		/* AWSERR_TRIED_* already done in this call */
};

/* What to do next; pure: the same answer always gives the same decision. */
enum awserr_decision awserr_classify(const struct awserr_answer *);
/* Whether a code means "slow down". */
int	awserr_is_throttle(const char *);
/* Whether AWS's message for a code may echo the signed request (and so the token). */
int	awserr_echoes_request(const char *);
/* The decision's name, as in the enum without the prefix ("FIX_CLOCK"). */
const char *awserr_name(enum awserr_decision);

#endif
