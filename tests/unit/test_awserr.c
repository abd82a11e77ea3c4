/* test_awserr.c - the AWS error classifier: every code list, statuses, clock skew, fixes tried once. */
#include <stddef.h>

#include "awserr.h"
#include "http.h"
#include "tap.h"

#define DAY	86400.0
#define BOTH	(AWSERR_TRIED_CLOCK | AWSERR_TRIED_CREDS)

static const struct kase {
	const char		*name;
	int			 transport;
	long			 status;
	const char		*code;
	double			 skew;
	int			 tried;
	enum awserr_decision	 want;
} cases[] = {
	/* The transport. */
	{ "connection refused", HTTP_ECONNECT, 0, NULL, 0, 0, AWSERR_RETRY },
	{ "timeout", HTTP_ETIMEOUT, 0, NULL, 0, 0, AWSERR_RETRY },
	{ "reset or truncated", HTTP_EIO, 0, NULL, 0, 0, AWSERR_RETRY },
	{ "TLS or bad URL", HTTP_EOTHER, 0, NULL, 0, 0, AWSERR_GIVE_UP },
	{ "not sent (no credentials)", AWSERR_NOT_SENT, 0, NULL, 0, 0, AWSERR_GIVE_UP },
	{ "reset after both fixes", HTTP_EIO, 0, NULL, DAY, BOTH, AWSERR_RETRY },

	/* Answers without an error code, and codes the agent makes up from the status. */
	{ "Query 200", HTTP_OK, 200, NULL, 0, 0, AWSERR_OK },
	{ "S3 200, clocks a day apart", HTTP_OK, 200, NULL, DAY, 0, AWSERR_OK },
	{ "S3 206 to a Range request", HTTP_OK, 206, NULL, 0, 0, AWSERR_OK },
	{ "204", HTTP_OK, 204, NULL, 0, 0, AWSERR_OK },
	{ "500 without a code", HTTP_OK, 500, NULL, 0, 0, AWSERR_RETRY },
	{ "404 without a code", HTTP_OK, 404, NULL, 0, 0, AWSERR_FATAL },
	{ "Query 500 without an AWS body", HTTP_OK, 500, "HTTP500", 0, 0, AWSERR_RETRY },
	{ "Query 502 without an AWS body", HTTP_OK, 502, "HTTP502", 0, 0, AWSERR_RETRY },
	{ "Query 504 without an AWS body", HTTP_OK, 504, "HTTP504", 0, 0, AWSERR_RETRY },
	{ "Query 400 without an AWS body", HTTP_OK, 400, "HTTP400", 0, 0, AWSERR_FATAL },
	{ "S3 503 from a load balancer", HTTP_OK, 503, "HTTPError", 0, 0, AWSERR_RETRY },
	{ "S3 404 NoSuchKey", HTTP_OK, 404, "NoSuchKey", 0, 0, AWSERR_FATAL },
	{ "S3 404 NoSuchBucket", HTTP_OK, 404, "NoSuchBucket", 0, 0, AWSERR_FATAL },
	{ "S3 403 AccessDenied", HTTP_OK, 403, "AccessDenied", 0, 0, AWSERR_FATAL },
	{ "S3 403 AccessDenied, clocks a day apart", HTTP_OK, 403, "AccessDenied", DAY, 0,
	    AWSERR_FATAL },
	{ "S3 416 InvalidRange", HTTP_OK, 416, "InvalidRange", 0, 0, AWSERR_FATAL },
	{ "S3 301 PermanentRedirect", HTTP_OK, 301, "PermanentRedirect", 0, 0, AWSERR_FATAL },
	{ "S3 400 InvalidToken", HTTP_OK, 400, "InvalidToken", 0, 0, AWSERR_FATAL },
	{ "Query 400 ValidationError", HTTP_OK, 400, "ValidationError", 0, 0, AWSERR_FATAL },
	{ "EC2 403 UnauthorizedOperation", HTTP_OK, 403, "UnauthorizedOperation", 0, 0,
	    AWSERR_FATAL },
	{ "unknown code at 503", HTTP_OK, 503, "SomethingNew", 0, 0, AWSERR_RETRY },
	{ "S3 501 NotImplemented", HTTP_OK, 501, "NotImplemented", 0, 0, AWSERR_RETRY },

	/* Throttling: every code, at the status its service uses or at 400. */
	{ "Auto Scaling 400 Throttling", HTTP_OK, 400, "Throttling", 0, 0, AWSERR_THROTTLED },
	{ "400 ThrottlingException", HTTP_OK, 400, "ThrottlingException", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 ThrottledException", HTTP_OK, 400, "ThrottledException", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 RequestThrottled", HTTP_OK, 400, "RequestThrottled", 0, 0, AWSERR_THROTTLED },
	{ "EC2 503 RequestLimitExceeded", HTTP_OK, 503, "RequestLimitExceeded", 0, 0,
	    AWSERR_THROTTLED },
	{ "S3 503 SlowDown", HTTP_OK, 503, "SlowDown", 0, 0, AWSERR_THROTTLED },
	{ "429 TooManyRequestsException", HTTP_OK, 429, "TooManyRequestsException", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 RequestThrottledException", HTTP_OK, 400, "RequestThrottledException", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 ProvisionedThroughputExceededException", HTTP_OK, 400,
	    "ProvisionedThroughputExceededException", 0, 0, AWSERR_THROTTLED },
	{ "400 EC2ThrottledException", HTTP_OK, 400, "EC2ThrottledException", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 PriorRequestNotComplete", HTTP_OK, 400, "PriorRequestNotComplete", 0, 0,
	    AWSERR_THROTTLED },
	{ "400 BandwidthLimitExceeded", HTTP_OK, 400, "BandwidthLimitExceeded", 0, 0,
	    AWSERR_THROTTLED },
	{ "S3 SlowDown, clocks a day apart, both fixes done", HTTP_OK, 503, "SlowDown", DAY,
	    BOTH, AWSERR_THROTTLED },

	/* Transient: every code, at 400 so that only the code makes it a retry. */
	{ "Auto Scaling ResourceContention", HTTP_OK, 400, "ResourceContention", 0, 0,
	    AWSERR_RETRY },
	{ "S3 500 InternalError", HTTP_OK, 500, "InternalError", 0, 0, AWSERR_RETRY },
	{ "S3 503 InternalError", HTTP_OK, 503, "InternalError", 0, 0, AWSERR_RETRY },
	{ "InternalError at 400", HTTP_OK, 400, "InternalError", 0, 0, AWSERR_RETRY },
	{ "InternalFailure at 400", HTTP_OK, 400, "InternalFailure", 0, 0, AWSERR_RETRY },
	{ "S3 503 ServiceUnavailable", HTTP_OK, 503, "ServiceUnavailable", 0, 0,
	    AWSERR_RETRY },
	{ "ServiceUnavailable at 400", HTTP_OK, 400, "ServiceUnavailable", 0, 0,
	    AWSERR_RETRY },
	{ "S3 400 RequestTimeout", HTTP_OK, 400, "RequestTimeout", 0, 0, AWSERR_RETRY },
	{ "408 RequestTimeoutException", HTTP_OK, 408, "RequestTimeoutException", 0, 0,
	    AWSERR_RETRY },
	{ "Unavailable at 400", HTTP_OK, 400, "Unavailable", 0, 0, AWSERR_RETRY },

	/* Expired credentials: refreshed once per call. */
	{ "S3 400 ExpiredToken", HTTP_OK, 400, "ExpiredToken", 0, 0, AWSERR_REFRESH_CREDS },
	{ "S3 400 TokenRefreshRequired", HTTP_OK, 400, "TokenRefreshRequired", 0, 0,
	    AWSERR_REFRESH_CREDS },
	{ "403 ExpiredTokenException", HTTP_OK, 403, "ExpiredTokenException", 0, 0,
	    AWSERR_REFRESH_CREDS },
	{ "Query 400 ExpiredToken", HTTP_OK, 400, "ExpiredToken", 0, 0,
	    AWSERR_REFRESH_CREDS },
	{ "ExpiredToken after the clock fix", HTTP_OK, 400, "ExpiredToken", 0,
	    AWSERR_TRIED_CLOCK, AWSERR_REFRESH_CREDS },
	{ "ExpiredToken, clocks a day apart", HTTP_OK, 400, "ExpiredToken", DAY, 0,
	    AWSERR_REFRESH_CREDS },
	{ "second ExpiredToken in one call", HTTP_OK, 400, "ExpiredToken", 0,
	    AWSERR_TRIED_CREDS, AWSERR_FATAL },
	{ "second TokenRefreshRequired in one call", HTTP_OK, 400, "TokenRefreshRequired", 0,
	    AWSERR_TRIED_CREDS, AWSERR_FATAL },
	{ "RequestExpired, clocks agree", HTTP_OK, 400, "RequestExpired", 0, 0,
	    AWSERR_REFRESH_CREDS },
	{ "RequestExpired, clocks a day apart", HTTP_OK, 400, "RequestExpired", DAY, 0,
	    AWSERR_FIX_CLOCK },
	{ "RequestExpired after the clock fix", HTTP_OK, 400, "RequestExpired", DAY,
	    AWSERR_TRIED_CLOCK, AWSERR_REFRESH_CREDS },
	{ "RequestExpired after both fixes", HTTP_OK, 400, "RequestExpired", DAY, BOTH,
	    AWSERR_FATAL },

	/* Clock skew: every code, beyond the limit either way, once per call. */
	{ "S3 403 RequestTimeTooSkewed, server a day ahead", HTTP_OK, 403,
	    "RequestTimeTooSkewed", DAY, 0, AWSERR_FIX_CLOCK },
	{ "S3 403 RequestTimeTooSkewed, server a day behind", HTTP_OK, 403,
	    "RequestTimeTooSkewed", -DAY, 0, AWSERR_FIX_CLOCK },
	{ "InvalidSignatureException, skewed", HTTP_OK, 400, "InvalidSignatureException",
	    3600, 0, AWSERR_FIX_CLOCK },
	{ "SignatureDoesNotMatch, skewed", HTTP_OK, 403, "SignatureDoesNotMatch", 3600, 0,
	    AWSERR_FIX_CLOCK },
	{ "EC2 401 AuthFailure, skewed", HTTP_OK, 401, "AuthFailure", -3600, 0,
	    AWSERR_FIX_CLOCK },
	{ "RequestInTheFuture, skewed", HTTP_OK, 403, "RequestInTheFuture", -3600, 0,
	    AWSERR_FIX_CLOCK },
	{ "skew just beyond the limit", HTTP_OK, 403, "RequestTimeTooSkewed",
	    AWSERR_SKEW_LIMIT + 1, 0, AWSERR_FIX_CLOCK },
	{ "skew just beyond the limit, behind", HTTP_OK, 403, "RequestTimeTooSkewed",
	    -AWSERR_SKEW_LIMIT - 1, 0, AWSERR_FIX_CLOCK },
	{ "skew at the limit", HTTP_OK, 403, "RequestTimeTooSkewed", AWSERR_SKEW_LIMIT, 0,
	    AWSERR_FATAL },
	{ "skew within the limit, behind", HTTP_OK, 403, "RequestTimeTooSkewed",
	    -AWSERR_SKEW_LIMIT + 1, 0, AWSERR_FATAL },
	{ "RequestTimeTooSkewed without a Date", HTTP_OK, 403, "RequestTimeTooSkewed", 0, 0,
	    AWSERR_FATAL },
	{ "second RequestTimeTooSkewed in one call", HTTP_OK, 403, "RequestTimeTooSkewed",
	    DAY, AWSERR_TRIED_CLOCK, AWSERR_FATAL },
	{ "RequestTimeTooSkewed after the credentials fix", HTTP_OK, 403,
	    "RequestTimeTooSkewed", DAY, AWSERR_TRIED_CREDS, AWSERR_FIX_CLOCK },
	{ "wrong secret: SignatureDoesNotMatch, clocks agree", HTTP_OK, 403,
	    "SignatureDoesNotMatch", 2, 0, AWSERR_FATAL },
	{ "wrong secret: EC2 AuthFailure, clocks agree", HTTP_OK, 401, "AuthFailure", 0, 0,
	    AWSERR_FATAL },
};

static void
test_cases(void)
{
	enum awserr_decision	got;
	size_t			i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct kase	*k = &cases[i];
		struct awserr_answer	 ans = { k->transport, k->status, k->code, k->skew,
					     k->tried };

		got = awserr_classify(&ans);
		tap_ok(got == k->want, "%s: got %s, want %s", k->name, awserr_name(got),
		    awserr_name(k->want));
	}
}

static void
test_helpers(void)
{
	tap_ok(awserr_is_throttle("SlowDown"), "SlowDown is throttling");
	tap_ok(!awserr_is_throttle("InternalError"), "InternalError is not throttling");
	tap_ok(!awserr_is_throttle(NULL), "no code is not throttling");
	tap_ok(awserr_echoes_request("SignatureDoesNotMatch"),
	    "SignatureDoesNotMatch's message is withheld");
	tap_ok(awserr_echoes_request("IncompleteSignature"),
	    "IncompleteSignature's message is withheld");
	tap_ok(!awserr_echoes_request("ExpiredToken"), "ExpiredToken's message is kept");
	tap_ok(!awserr_echoes_request(NULL), "no code: nothing to withhold");
	tap_str(awserr_name(AWSERR_REFRESH_CREDS), "REFRESH_CREDS", "a decision's name");
	tap_str(awserr_name((enum awserr_decision)99), "?", "an unknown decision's name");
}

int
main(void)
{
	test_cases();
	test_helpers();
	return tap_done();
}
