/* imds.c - IMDSv2 client: session tokens, retries while the service is not up yet. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "halt.h"
#include "http.h"
#include "imds.h"
#include "log.h"
#include "retry.h"
#include "util.h"

#define IMDS_DEFAULT		"http://169.254.169.254"
#define IMDS_TOKEN_TTL		21600
#define IMDS_TOKEN_MARGIN	120	/* refresh this long before the token ends */
#define IMDS_MAX_ANSWER		(1 << 20)

void
imds_init(struct imds *m, const char *endpoint, double timeout)
{
	const char	*env;
	size_t		 len;

	memset(m, 0, sizeof *m);
	if ((env = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) != NULL && *env != '\0')
		endpoint = env;
	else if (endpoint == NULL || *endpoint == '\0')
		endpoint = IMDS_DEFAULT;
	m->endpoint = xstrdup(endpoint);
	len = strlen(m->endpoint);
	while (len > 0 && m->endpoint[len - 1] == '/')
		m->endpoint[--len] = '\0';
	m->timeout = timeout;
	env = getenv("AWS_EC2_METADATA_DISABLED");
	m->disabled = env != NULL && strcasecmp(env, "true") == 0;
}

void
imds_free(struct imds *m)
{
	if (m == NULL)
		return;
	free(m->endpoint);
	freezero_str(m->token);
	m->endpoint = m->token = NULL;
}

static void
drop_token(struct imds *m)
{
	freezero_str(m->token);
	m->token = NULL;
}

/* Why a token is fetched now, for the debug line (never the token itself). */
static const char *
token_reason(const struct imds *m)
{
	if (m->token != NULL)
		return "refresh: the token is about to expire";
	return m->requests == 0 ? "first request" : "none held: refused or not fetched yet";
}

static enum outcome
fetch_token(struct imds *m, const char *why, char **cause)
{
	struct http_response	 resp;
	struct http_request	 req;
	const char		*hdrs[] = {
		"X-aws-ec2-metadata-token-ttl-seconds: " "21600", NULL
	};
	const char		*ttl;
	char			*url;
	enum outcome		 ret = OUTCOME_RETRY;
	int			 err;
	long			 secs;

	url = xasprintf("%s/latest/api/token", m->endpoint);
	memset(&req, 0, sizeof req);
	req.method = "PUT";
	req.url = url;
	req.headers = hdrs;
	req.timeout = 2;
	req.connect_timeout = 1;
	req.max_body = 4096;
	m->requests++;
	if ((err = http_do(&req, &resp, cause)) != HTTP_OK) {
		ret = http_retryable(err) ? OUTCOME_RETRY : OUTCOME_FATAL;
		goto out;
	}
	if (resp.status == 403) {
		set_cause(cause, "IMDS is disabled for this instance (403 on token request)");
		ret = OUTCOME_FATAL;
		goto out;
	}
	if (resp.status == 400 || resp.status == 405) {
		set_cause(cause, "IMDS refused the token request (HTTP %ld)", resp.status);
		ret = OUTCOME_FATAL;
		goto out;
	}
	if (resp.status != 200 || resp.body.len == 0) {
		set_cause(cause, "IMDS token request: HTTP %ld", resp.status);
		goto out;
	}
	secs = IMDS_TOKEN_TTL;
	ttl = http_header(resp.headers, resp.nheaders, "X-aws-ec2-metadata-token-ttl-seconds");
	if (ttl != NULL && atol(ttl) > 0)
		secs = atol(ttl);
	drop_token(m);
	m->token = buf_take(&resp.body);
	m->token_expiry = mono_now() + (double)secs -
	    (secs > 2 * IMDS_TOKEN_MARGIN ? IMDS_TOKEN_MARGIN : secs / 2.0);
	log_debug("imds: session token fetched (%s): TTL %ld s, refreshed in %.0f s", why,
	    secs, m->token_expiry - mono_now());
	ret = OUTCOME_OK;
out:
	if (ret != OUTCOME_OK)
		log_debug("imds: session token request failed (%s): %s", why,
		    *cause != NULL ? *cause : "unknown error");
	if (resp.body.data != NULL)
		explicit_bzero(resp.body.data, resp.body.len);
	http_response_free(&resp);
	free(url);
	return ret;
}

/* IMDS's clock against ours: Date has whole seconds, so its middle is the best guess. */
static void
note_clock(struct imds *m, const struct http_response *resp)
{
	long long	date = http_date(resp->headers, resp->nheaders);

	if (date < 0)
		return;
	m->clock_offset = (double)date + 0.5 - wall_now();
	m->clock_known = 1;
}

static enum outcome
try_get(struct imds *m, const char *path, char **out, int *status, char **cause)
{
	struct http_response	 resp;
	struct http_request	 req;
	const char		*hdrs[2];
	char			*url = NULL, *tokhdr = NULL;
	enum outcome		 ret = OUTCOME_RETRY;
	int			 err;

	memset(&resp, 0, sizeof resp);
	if (m->token == NULL || mono_now() >= m->token_expiry) {
		if ((ret = fetch_token(m, token_reason(m), cause)) != OUTCOME_OK)
			goto out;
		ret = OUTCOME_RETRY;
	}
	url = xasprintf("%s/latest/%s", m->endpoint, path);
	tokhdr = xasprintf("X-aws-ec2-metadata-token: %s", m->token);
	hdrs[0] = tokhdr;
	hdrs[1] = NULL;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.timeout = 2;
	req.connect_timeout = 1;
	req.max_body = IMDS_MAX_ANSWER;
	m->requests++;
	if ((err = http_do(&req, &resp, cause)) != HTTP_OK) {
		ret = http_retryable(err) ? OUTCOME_RETRY : OUTCOME_FATAL;
		goto out;
	}
	*status = (int)resp.status;
	note_clock(m, &resp);
	switch (resp.status) {
	case 200:
		*out = buf_take(&resp.body);
		ret = OUTCOME_OK;
		break;
	case 404:
		ret = OUTCOME_OK;
		break;
	case 401:
		/* Expired or revoked token: a new one on the next attempt. */
		drop_token(m);
		set_cause(cause, "IMDS %s: 401 (token refused)", path);
		break;
	case 403:
		set_cause(cause, "IMDS is disabled for this instance (403 on %s)", path);
		ret = OUTCOME_FATAL;
		break;
	default:
		set_cause(cause, "IMDS %s: HTTP %ld", path, resp.status);
		ret = resp.status >= 500 || resp.status == 429 ? OUTCOME_RETRY : OUTCOME_FATAL;
		break;
	}
out:
	freezero_str(tokhdr);
	free(url);
	http_response_free(&resp);
	return ret;
}

enum outcome
imds_get(struct imds *m, const char *path, char **out, char **cause)
{
	struct retry	r;
	enum outcome	a;
	int		status = 0, token_retried = 0;

	*out = NULL;
	if (m->disabled) {
		set_cause(cause, "IMDS is disabled by AWS_EC2_METADATA_DISABLED");
		return OUTCOME_FATAL;
	}
	retry_init(&r, 0.05, 2.0, mono_now() + m->timeout);
	r.halt = m->halt;
	for (;;) {
		status = 0;
		a = try_get(m, path, out, &status, cause);
		if (a == OUTCOME_OK)
			return status == 404 ? OUTCOME_NOT_FOUND : OUTCOME_OK;
		if (a == OUTCOME_FATAL)
			return OUTCOME_FATAL;
		/* A refused token is retried at once, a single time. */
		if (status == 401 && !token_retried) {
			log_debug("imds: GET %s: token refused (401): fetching a new one, "
			    "retrying at once", path);
			token_retried = 1;
			continue;
		}
		log_debug("imds: no answer for %s (%s): will retry", path,
		    *cause != NULL ? *cause : "unknown error");
		if (retry_pause(&r, a, 1) != 0) {
			if (halt_stopped(m->halt))
				set_cause(cause, "%s (stopped)", *cause);
			else
				set_cause(cause, "%s (gave up after %.0f s)", *cause,
				    m->timeout);
			return OUTCOME_FATAL;
		}
		m->retries++;
	}
}
