/* awserr.c - what one answer to an AWS call means: the one classifier for Query APIs and S3. */
#include <stddef.h>
#include <string.h>

#include "awserr.h"
#include "http.h"

static const char *const throttle_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
	"RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
	"RequestThrottledException", "ProvisionedThroughputExceededException",
	"EC2ThrottledException", "PriorRequestNotComplete", "BandwidthLimitExceeded",
	NULL
};

static const char *const transient_codes[] = {
	"ResourceContention", "InternalError", "InternalFailure", "ServiceUnavailable",
	"RequestTimeout", "RequestTimeoutException", "Unavailable", NULL
};

/* S3 answers ExpiredToken and TokenRefreshRequired (400); other services ExpiredToken(Exception). */
static const char *const expired_codes[] = {
	"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired", NULL
};

/* Errors a skewed clock causes; S3 answers RequestTimeTooSkewed with 403. */
static const char *const skew_codes[] = {
	"RequestTimeTooSkewed", "RequestExpired", "InvalidSignatureException",
	"SignatureDoesNotMatch", "AuthFailure", "RequestInTheFuture", NULL
};

/*
 * An error code's rules, first match wins. A fix ("once") is tried once per
 * call; the clock fix only when the clocks are really that far apart.
 */
static const struct rule {
	const char *const	*codes;
	int			 once;		/* AWSERR_TRIED_* bit, or 0 */
	int			 skewed;	/* needs |skew| beyond AWSERR_SKEW_LIMIT */
	enum awserr_decision	 decision;
} rules[] = {
	{ skew_codes, AWSERR_TRIED_CLOCK, 1, AWSERR_FIX_CLOCK },
	{ expired_codes, AWSERR_TRIED_CREDS, 0, AWSERR_REFRESH_CREDS },
	{ throttle_codes, 0, 0, AWSERR_THROTTLED },
	{ transient_codes, 0, 0, AWSERR_RETRY },
};

static const char *const names[] = {
	[AWSERR_OK] = "OK",
	[AWSERR_RETRY] = "RETRY",
	[AWSERR_THROTTLED] = "THROTTLED",
	[AWSERR_FIX_CLOCK] = "FIX_CLOCK",
	[AWSERR_REFRESH_CREDS] = "REFRESH_CREDS",
	[AWSERR_FATAL] = "FATAL",
	[AWSERR_GIVE_UP] = "GIVE_UP",
};

static int
in_list(const char *const *list, const char *code)
{
	if (code == NULL)
		return 0;
	for (; *list != NULL; list++) {
		if (strcmp(*list, code) == 0)
			return 1;
	}
	return 0;
}

static int
rule_applies(const struct rule *r, const struct awserr_answer *ans)
{
	if (!in_list(r->codes, ans->code) || (ans->tried & r->once) != 0)
		return 0;
	return !r->skewed || ans->skew > AWSERR_SKEW_LIMIT || ans->skew < -AWSERR_SKEW_LIMIT;
}

enum awserr_decision
awserr_classify(const struct awserr_answer *ans)
{
	size_t	i;

	if (ans->transport != HTTP_OK)
		return http_retryable(ans->transport) ? AWSERR_RETRY : AWSERR_GIVE_UP;
	if (ans->code == NULL && ans->status >= 200 && ans->status <= 299)
		return AWSERR_OK;
	for (i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		if (rule_applies(&rules[i], ans))
			return rules[i].decision;
	}
	/* Whatever a server error says, another attempt may get through. */
	return ans->status >= 500 ? AWSERR_RETRY : AWSERR_FATAL;
}

int
awserr_is_throttle(const char *code)
{
	return in_list(throttle_codes, code);
}

int
awserr_echoes_request(const char *code)
{
	return in_list(skew_codes, code) ||
	    (code != NULL && strcmp(code, "IncompleteSignature") == 0);
}

const char *
awserr_name(enum awserr_decision d)
{
	if ((size_t)d >= sizeof names / sizeof names[0] || names[d] == NULL)
		return "?";
	return names[d];
}
