/* aws.c - signed AWS calls: the Query APIs (EC2, Auto Scaling, ELBv2) and S3 reads and writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws.h"
#include "awserr.h"
#include "halt.h"
#include "http.h"
#include "log.h"
#include "retry.h"
#include "sigv4.h"
#include "util.h"

#define AWS_RETRY_BASE	0.1	/* first retry ceiling, seconds, times the slowdown */
#define AWS_RETRY_CAP	4.0	/* largest retry ceiling, seconds */
#define AWS_THROTTLE_BASE 0.5	/* least ceiling once throttled, times the slowdown */

static const struct {
	const char	*name;		/* as on the command line */
	const char	*signing;	/* in the credential scope and hostname */
	const char	*env;		/* AWS_ENDPOINT_URL_... */
	const char	*version;	/* Query API version */
} services[AWS_NSERVICES] = {
	[AWS_EC2] = { "ec2", "ec2", "AWS_ENDPOINT_URL_EC2", "2016-11-15" },
	[AWS_AUTOSCALING] = { "autoscaling", "autoscaling", "AWS_ENDPOINT_URL_AUTO_SCALING",
	    "2011-01-01" },
	[AWS_ELBV2] = { "elbv2", "elasticloadbalancing",
	    "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "2015-12-01" },
	[AWS_S3] = { "s3", "s3", "AWS_ENDPOINT_URL_S3", NULL },
	[AWS_CLOUDWATCH] = { "cloudwatch", "monitoring", "AWS_ENDPOINT_URL_CLOUDWATCH",
	    "2010-08-01" },
	[AWS_STS] = { "sts", "sts", "AWS_ENDPOINT_URL_STS", "2011-06-15" },
	[AWS_ELB] = { "elb", "elasticloadbalancing", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING",
	    "2012-06-01" },
};

int
aws_is_throttle(const char *code)
{
	return awserr_is_throttle(code);
}

void
aws_init(struct aws *a, struct imds *imds, struct creds_provider *creds,
    const char *region, const char *endpoint_url, double api_timeout)
{
	int	i;

	memset(a, 0, sizeof *a);
	a->imds = imds;
	a->creds = creds;
	a->region = region != NULL && *region != '\0' ? xstrdup(region) : NULL;
	a->endpoint_url = endpoint_url != NULL && *endpoint_url != '\0' ?
	    xstrdup(endpoint_url) : NULL;
	a->api_timeout = api_timeout;
	a->slowdown = 1;
	a->tokens = 1e9;	/* a full bucket: trimmed to the burst on first use */
	a->refilled = mono_now();
	for (i = 0; i < AWS_NSERVICES; i++)
		pace_init(&a->pace[i]);
}

double
aws_slowdown(const struct aws *a)
{
	return a->slowdown < 1 ? 1 : a->slowdown;
}

/* A per-process ceiling on the request rate, so one agent never floods a shared bucket. */
void
aws_rate_wait(struct aws *a)
{
	double	now, burst;

	if (a->max_rate <= 0)
		return;
	burst = a->max_rate < 1 ? 1 : a->max_rate;
	for (;;) {
		now = mono_now();
		a->tokens += (now - a->refilled) * a->max_rate;
		a->refilled = now;
		if (a->tokens > burst)
			a->tokens = burst;
		if (a->tokens >= 1) {
			a->tokens -= 1;
			return;
		}
		sleep_for((1 - a->tokens) / a->max_rate, a->halt);
		if (halt_stopped(a->halt))
			return;
	}
}

void
aws_adapt(struct aws *a, int throttled)
{
	if (throttled)
		a->slowdown = a->slowdown * 2 > 32 ? 32 : a->slowdown * 2;
	else
		a->slowdown = a->slowdown / 2 < 1 ? 1 : a->slowdown / 2;
}

void
aws_free(struct aws *a)
{
	size_t	i;

	if (a == NULL)
		return;
	free(a->region);
	free(a->endpoint_url);
	for (i = 0; i < a->ncounters; i++)
		free(a->counters[i].action);
	memset(a, 0, sizeof *a);
}

int
aws_resolve_region(struct aws *a, const char *configured, char **cause)
{
	const char	*env;
	char		*r = NULL, *nl;

	if ((env = getenv("AWS_REGION")) != NULL && *env != '\0')
		r = xstrdup(env);
	else if ((env = getenv("AWS_DEFAULT_REGION")) != NULL && *env != '\0')
		r = xstrdup(env);
	else if (configured != NULL && *configured != '\0')
		r = xstrdup(configured);
	else {
		if (imds_get(a->imds, "meta-data/placement/region", &r, cause) != OUTCOME_OK) {
			free(r);
			return set_cause(cause, "cannot learn the region: %s",
			    *cause != NULL ? *cause : "IMDS has no region");
		}
		if ((nl = strpbrk(r, "\r\n")) != NULL)
			*nl = '\0';
	}
	free(a->region);
	a->region = r;
	return 0;
}

int
aws_service_parse(const char *name)
{
	int	i;

	for (i = 0; i < AWS_NSERVICES; i++) {
		if (strcmp(services[i].name, name) == 0)
			return i;
	}
	return -1;
}

const char *
aws_service_name(int svc)
{
	return services[svc].name;
}

char *
aws_endpoint(const struct aws *a, int svc)
{
	const char	*env;
	char		*url;
	size_t		 len;

	if ((env = getenv(services[svc].env)) != NULL && *env != '\0')
		url = xstrdup(env);
	else if ((env = getenv("AWS_ENDPOINT_URL")) != NULL && *env != '\0')
		url = xstrdup(env);
	else if (a->endpoint_url != NULL)
		url = xstrdup(a->endpoint_url);
	else
		return xasprintf("https://%s.%s.amazonaws.com", services[svc].signing,
		    a->region != NULL ? a->region : "us-east-1");
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
	return url;
}

/* The authority (host[:port]) of a URL: what curl sends as Host and what we sign. */
static char *
url_host(const char *url)
{
	const char	*p, *end;

	if ((p = strstr(url, "://")) == NULL)
		return xstrdup("");
	p += 3;
	end = p + strcspn(p, "/?#");
	return xstrndup(p, (size_t)(end - p));
}

static struct aws_counter *
counter(struct aws *a, const char *action)
{
	size_t	i;

	for (i = 0; i < a->ncounters; i++) {
		if (strcmp(a->counters[i].action, action) == 0)
			return &a->counters[i];
	}
	if (a->ncounters == AWS_MAX_ACTIONS)
		return &a->counters[AWS_MAX_ACTIONS - 1];
	a->counters[a->ncounters].action = xstrdup(action);
	return &a->counters[a->ncounters++];
}

void
aws_result_free(struct aws_result *r)
{
	struct http_response	hr;

	if (r == NULL)
		return;
	free(r->body);
	xml_free(r->xml);
	free(r->code);
	free(r->message);
	free(r->request_id);
	memset(&hr, 0, sizeof hr);
	hr.headers = r->headers;
	hr.nheaders = r->nheaders;
	http_response_free(&hr);
	memset(r, 0, sizeof *r);
}

int
aws_parse_error(const struct xml_node *root, char **code, char **message, char **rid)
{
	const char	*c, *m, *r;
	struct xml_node	*err;

	if (root == NULL)
		return -1;
	/* EC2: Response/Errors/Error, Query APIs: ErrorResponse/Error, S3: Error. */
	err = strcmp(root->name, "Error") == 0 ? (struct xml_node *)root :
	    xml_find(root, "Error");
	if (err == NULL || (c = xml_child_text(err, "Code")) == NULL)
		return -1;
	m = xml_child_text(err, "Message");
	if ((r = xml_find_text(root, "RequestId")) == NULL &&
	    (r = xml_find_text(root, "RequestID")) == NULL)
		r = xml_child_text(err, "RequestId");
	*code = xstrdup(c);
	*message = xstrdup(m != NULL ? m : "");
	*rid = r != NULL ? xstrdup(r) : NULL;
	return 0;
}

/* Form encoding: RFC 3986, but a space is '+' as botocore sends it (moto's checker insists). */
static void
form_encode(struct buf *b, const char *s)
{
	struct buf	enc = { NULL, 0, 0 };
	size_t		i;

	sigv4_uri_encode(&enc, s, strlen(s), 0);
	for (i = 0; i < enc.len; i++) {
		/* "%20" can only come from a space: '%' itself is "%25". */
		if (enc.len - i >= 3 && memcmp(enc.data + i, "%20", 3) == 0) {
			buf_addc(b, '+');
			i += 2;
		} else
			buf_addc(b, enc.data[i]);
	}
	buf_free(&enc);
}

/* Build the Query form body: Action, Version, then the parameters as given. */
static void
form_body(struct buf *b, int svc, const char *action, const struct aws_param *p, size_t n)
{
	size_t	i;

	buf_adds(b, "Action=");
	form_encode(b, action);
	buf_adds(b, "&Version=");
	buf_adds(b, services[svc].version);
	for (i = 0; i < n; i++) {
		buf_addc(b, '&');
		form_encode(b, p[i].name);
		buf_addc(b, '=');
		form_encode(b, p[i].value);
	}
}

/*
 * Signature errors echo the canonical request, which holds the session token:
 * keep such messages out of causes, logs and the state file.
 */
static void
withhold_message(struct aws_result *res)
{
	if (!awserr_echoes_request(res->code))
		return;
	freezero_str(res->message);
	res->message = xasprintf("request signature rejected (request id %s; AWS's "
	    "message is withheld because it echoes the signed request)",
	    res->request_id != NULL ? res->request_id : "unknown");
}

#define SIGN_MAX_EXTRA	4

/* Headers of one signed request, owned here so secrets are wiped in one place. */
struct signed_req {
	char		*host;
	char		*h_date;
	char		*h_auth;
	char		*h_tok;
	char		*h_sha;
	char		*h_ctype;
	char		*h_extra[SIGN_MAX_EXTRA];
	const char	*hdrs[8 + SIGN_MAX_EXTRA];
};

/* What an S3 write signs besides the usual: its query, its body's hash, its own headers. */
struct sign_extra {
	const char		*query;
	const char		*payload_sha;	/* hex, or NULL: the hash of body */
	const struct aws_param	*headers;
	size_t			 nheaders;
};

static void
signed_req_free(struct signed_req *s)
{
	size_t	i;

	free(s->host);
	free(s->h_date);
	freezero_str(s->h_auth);
	freezero_str(s->h_tok);
	free(s->h_sha);
	free(s->h_ctype);
	for (i = 0; i < SIGN_MAX_EXTRA; i++)
		free(s->h_extra[i]);
	memset(s, 0, sizeof *s);
}

/*
 * Sign a request with the current credentials; the result's hdrs are what to
 * send besides Host (curl derives Host from the URL, which is what we sign).
 * The extra query, payload hash and headers are for S3 writes.
 */
static int
sign_request_extra(struct aws *a, int svc, const char *method, const char *url,
    const char *path, const char *body, const char *content_type,
    const struct sign_extra *x, struct signed_req *out, char **cause)
{
	struct sigv4_header	 sh[5 + SIGN_MAX_EXTRA];
	struct sigv4_request	 sr;
	const struct creds	*c;
	struct buf		 authz = { NULL, 0, 0 };
	char			 amzdate[17], sha[65];
	size_t			 nh = 0, nhdr = 0, i;
	int			 ret = -1;

	memset(out, 0, sizeof *out);
	if (x->nheaders > SIGN_MAX_EXTRA)
		return set_cause(cause, "too many headers to sign");
	if (creds_get(a->creds, &c, cause) != 0)
		return -1;
	out->host = url_host(url);
	sigv4_amz_date((time_t)(wall_now() + a->clock_offset), amzdate);
	if (x->payload_sha != NULL)
		snprintf(sha, sizeof sha, "%s", x->payload_sha);
	else
		sigv4_sha256_hex(body != NULL ? body : "", body != NULL ? strlen(body) : 0, sha);
	sh[nh++] = (struct sigv4_header){ "Host", out->host };
	if (content_type != NULL)
		sh[nh++] = (struct sigv4_header){ "Content-Type", content_type };
	sh[nh++] = (struct sigv4_header){ "X-Amz-Date", amzdate };
	if (svc == AWS_S3)
		sh[nh++] = (struct sigv4_header){ "X-Amz-Content-Sha256", sha };
	if (c->session_token != NULL)
		sh[nh++] = (struct sigv4_header){ "X-Amz-Security-Token", c->session_token };
	for (i = 0; i < x->nheaders; i++) {
		sh[nh++] = (struct sigv4_header){ x->headers[i].name, x->headers[i].value };
		out->h_extra[i] = xasprintf("%s: %s", x->headers[i].name, x->headers[i].value);
	}
	memset(&sr, 0, sizeof sr);
	sr.method = method;
	sr.path = path;
	sr.query = x->query;
	sr.headers = sh;
	sr.nheaders = nh;
	sr.payload_hash = sha;
	sr.region = a->region;
	sr.service = services[svc].signing;
	sr.amz_date = amzdate;
	sr.s3 = svc == AWS_S3;
	if (sigv4_authorization(&sr, c->access_key_id, c->secret_access_key, &authz,
	    cause) != 0)
		goto out;
	out->h_date = xasprintf("X-Amz-Date: %s", amzdate);
	out->h_auth = xasprintf("Authorization: %s", authz.data);
	if (content_type != NULL) {
		out->h_ctype = xasprintf("Content-Type: %s", content_type);
		out->hdrs[nhdr++] = out->h_ctype;
	}
	out->hdrs[nhdr++] = out->h_date;
	out->hdrs[nhdr++] = out->h_auth;
	if (svc == AWS_S3) {
		out->h_sha = xasprintf("X-Amz-Content-Sha256: %s", sha);
		out->hdrs[nhdr++] = out->h_sha;
	}
	if (c->session_token != NULL) {
		out->h_tok = xasprintf("X-Amz-Security-Token: %s", c->session_token);
		out->hdrs[nhdr++] = out->h_tok;
	}
	for (i = 0; i < x->nheaders; i++)
		out->hdrs[nhdr++] = out->h_extra[i];
	out->hdrs[nhdr] = NULL;
	ret = 0;
out:
	buf_free(&authz);
	if (ret != 0)
		signed_req_free(out);
	return ret;
}

static int
sign_request(struct aws *a, int svc, const char *method, const char *url,
    const char *path, const char *body, const char *content_type, struct signed_req *out,
    char **cause)
{
	struct sign_extra	none = { NULL, NULL, NULL, 0 };

	return sign_request_extra(a, svc, method, url, path, body, content_type, &none, out,
	    cause);
}

/* A signed request's common part; timeout in seconds, for the whole request or a stall. */
static void
request_init(struct http_request *req, const char *method, const char *url,
    const struct signed_req *sreq, double timeout)
{
	memset(req, 0, sizeof *req);
	req->method = method;
	req->url = url;
	req->headers = sreq->hdrs;
	req->timeout = timeout;
	req->connect_timeout = 3;
}

#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

/* The server's clock minus ours, from its Date (seconds since the epoch, or -1): 0 if unknown. */
static double
clock_skew(long long server_date)
{
	return server_date > 0 ? (double)server_date - wall_now() : 0;
}

/* Sign and send one Query attempt; fills the result, returns the http_do error. */
static int
attempt(struct aws *a, int svc, const char *url, const char *body,
    struct aws_result *res, double *skew, char **cause)
{
	struct signed_req	 sreq;
	struct http_request	 req;
	struct http_response	 resp;
	int			 err = HTTP_EOTHER;

	*skew = 0;
	memset(&resp, 0, sizeof resp);
	if (sign_request(a, svc, "POST", url, "/", body, FORM_TYPE, &sreq, cause) != 0)
		return AWSERR_NOT_SENT;
	/* A call's budget bounds one attempt too (the serving loop's is short), 5 s at least. */
	request_init(&req, "POST", url, &sreq, a->api_timeout > 20 ? 20 :
	    a->api_timeout < 5 ? 5 : a->api_timeout);
	req.body = body;
	req.body_len = strlen(body);
	if ((err = http_do(&req, &resp, cause)) != HTTP_OK)
		goto out;
	*skew = clock_skew(http_date(resp.headers, resp.nheaders));
	res->status = resp.status;
	res->body = buf_take(&resp.body);
	if (xml_parse(res->body, strlen(res->body), &res->xml, NULL) != 0)
		res->xml = NULL;
	if (resp.status < 200 || resp.status > 299) {
		if (aws_parse_error(res->xml, &res->code, &res->message,
		    &res->request_id) != 0) {
			res->code = xasprintf("HTTP%ld", resp.status);
			res->message = xstrdup(resp.status >= 500 ?
			    "server error without an AWS error body" :
			    "answer without an AWS error body");
		}
		withhold_message(res);
	}
out:
	signed_req_free(&sreq);
	http_response_free(&resp);
	return err;
}

/* One call through its attempts: what the Query and the S3 loops share. */
struct call {
	const char		*what;		/* names the call in -v logs */
	int			 svc;		/* its bucket, for the pacing */
	struct aws_counter	*ctr;
	struct retry		 r;
	int			 tries;
	int			 tried;		/* AWSERR_TRIED_*: fixes done in this call */
};

/* A call's retry schedule: from the base, stretched by the slowdown, for api_timeout. */
static void
call_init(struct aws *a, struct call *c, int svc, const char *what, const char *action)
{
	memset(c, 0, sizeof *c);
	c->what = what;
	c->svc = svc;
	c->ctr = counter(a, action);
	retry_init(&c->r, AWS_RETRY_BASE * aws_slowdown(a), AWS_RETRY_CAP,
	    mono_now() + a->api_timeout);
	c->r.halt = a->halt;
}

/*
 * Adaptive mode: hold the request while its bucket's pacing says so. A
 * request sure to be throttled takes quota from every other client of the
 * account and tells us nothing new.
 */
static void
pace_wait(struct aws *a, struct call *c)
{
	struct pace	*p = &a->pace[c->svc];
	double		 d, t0;

	if (!a->adaptive || (d = pace_delay(p, mono_now())) <= 0 || halt_stopped(a->halt))
		return;
	log_debug("aws: %s: holding %.2f s (learned rate %.3g/s)", c->what, d, p->rate);
	t0 = mono_now();
	sleep_for(d, a->halt);
	pace_held(p, mono_now() - t0);
}

double
aws_held(const struct aws *a, int svc)
{
	double	d;

	if (!a->adaptive || svc < 0 || svc >= AWS_NSERVICES)
		return 0;
	d = pace_delay(&a->pace[svc], mono_now());
	return d > 0 ? d : 0;
}

/*
 * Before each attempt: the bucket's pacing, the rate ceiling, and the count.
 * S3 is not under the ceiling: its GETs are an artifact's ranges (5,500 a
 * second per prefix), and 10 a second would cap a download at 40 MiB/s.
 */
static void
call_pace(struct aws *a, struct call *c)
{
	double	first;

	/* An announced scale-out's first call waits its turn: that wait is not the call's retrying. */
	if (a->adaptive && (first = pace_start(&a->pace[c->svc], mono_now(),
	    retry_random())) > 0) {
		log_debug("aws: %s: first call of an announced scale-out, in %.2f s", c->what,
		    first);
		c->r.deadline += first;
	}
	pace_wait(a, c);
	if (c->svc != AWS_S3)
		aws_rate_wait(a);
	c->ctr->calls++;
}

/* Adaptive mode: what an answer teaches about its bucket. */
static void
pace_learn(struct aws *a, const struct call *c, int throttled)
{
	struct pace	*p = &a->pace[c->svc];

	if (!a->adaptive)
		return;
	if (throttled)
		pace_throttled(p, mono_now(), retry_random());
	else
		pace_answered(p, mono_now(), retry_random());
}

/*
 * One debug line per attempt of a call, so -v follows a call through its
 * retries. The code, not AWS's message: some messages echo the signed request.
 */
static void
log_attempt(const struct aws *a, const struct call *c, int err, long status,
    const char *code, enum awserr_decision d, char *const *cause)
{
	const char	*why = *cause != NULL ? *cause : "unknown error";

	if (err == AWSERR_NOT_SENT)
		log_debug("aws: %s attempt %d: not sent: %s", c->what, c->tries, why);
	else if (err != HTTP_OK)
		log_debug("aws: %s attempt %d: transport error: %s", c->what, c->tries, why);
	else if (code == NULL)
		log_debug("aws: %s attempt %d: HTTP %ld", c->what, c->tries, status);
	else if (d == AWSERR_THROTTLED)
		log_debug("aws: %s attempt %d: HTTP %ld %s: throttled, slowdown now %gx",
		    c->what, c->tries, status, code, aws_slowdown(a));
	else
		log_debug("aws: %s attempt %d: HTTP %ld %s", c->what, c->tries, status, code);
}

/*
 * Classify one attempt (err is its transport result) and do at once what the
 * decision needs: sign with the server's time, drop the credentials, count
 * the throttling or the error.
 */
static enum awserr_decision
call_decide(struct aws *a, struct call *c, int err, long status, const char *code,
    double skew, char **cause)
{
	struct awserr_answer	ans;
	enum awserr_decision	d;

	ans = (struct awserr_answer){ err, status, code, skew, c->tried };
	d = awserr_classify(&ans);
	if (err == HTTP_OK) {
		aws_adapt(a, d == AWSERR_THROTTLED);
		pace_learn(a, c, d == AWSERR_THROTTLED);
	}
	c->tries++;
	log_attempt(a, c, err, status, code, d, cause);
	switch (d) {
	case AWSERR_FIX_CLOCK:
		/* Our clock is off: sign with the server's time from now on. */
		a->clock_offset = skew;
		c->tried |= AWSERR_TRIED_CLOCK;
		log_debug("aws: %s: clock off by %.0f s: signing with the server's time, "
		    "retrying at once", c->what, skew);
		break;
	case AWSERR_REFRESH_CREDS:
		log_debug("aws: %s: credentials expired (%s): refreshing them, retrying at once",
		    c->what, code);
		creds_invalidate(a->creds);
		c->tried |= AWSERR_TRIED_CREDS;
		break;
	case AWSERR_THROTTLED:
		c->ctr->throttled++;
		/* A shared bucket is empty: later retries of this call wait longer. */
		retry_throttled(&c->r, AWS_THROTTLE_BASE * aws_slowdown(a));
		break;
	case AWSERR_FATAL:
		c->ctr->errors++;
		break;
	default:
		break;
	}
	return d;
}

/* Whether the call ends, or pauses, on the AWS error it got: that error is the cause then. */
static int
error_is_cause(enum awserr_decision d)
{
	return d == AWSERR_RETRY || d == AWSERR_THROTTLED || d == AWSERR_FATAL;
}

/*
 * Adaptive mode after a throttling answer: the bucket's hold is the pause
 * (call_pace sleeps it); 1 when it would outlast the call's api_timeout.
 */
static int
call_hold(struct aws *a, const struct call *c, char **cause)
{
	double	now = mono_now();

	if (halt_stopped(a->halt))
		return 1;
	if (now + pace_delay(&a->pace[c->svc], now) < c->r.deadline)
		return 0;
	set_cause(cause, "%s (gave up after %.0f s)", *cause, a->api_timeout);
	return 1;
}

/*
 * Go on after a decision: 0 to make the next attempt (at once after a fix,
 * else after the pause), 1 when the call ends with *ret (and the cause).
 */
static int
call_next(struct aws *a, struct call *c, enum awserr_decision d, enum outcome *ret,
    char **cause)
{
	switch (d) {
	case AWSERR_FIX_CLOCK:
	case AWSERR_REFRESH_CREDS:
		return 0;	/* each fix is tried once per call: no loop without a pause */
	case AWSERR_OK:
		*ret = OUTCOME_OK;
		return 1;
	case AWSERR_FATAL:
		*ret = OUTCOME_FATAL;
		return 1;
	case AWSERR_THROTTLED:
		*ret = OUTCOME_THROTTLED;
		if (a->adaptive)
			return call_hold(a, c, cause);
		break;
	case AWSERR_RETRY:
		*ret = OUTCOME_RETRY;
		break;
	case AWSERR_GIVE_UP:
		*ret = OUTCOME_RETRY;
		return 1;
	}
	if (retry_pause(&c->r, *ret, 1) == 0)
		return 0;
	/* Still throttled or 5xx: no answer the caller should treat as final. */
	if (!halt_stopped(a->halt))
		set_cause(cause, "%s (gave up after %.0f s)", *cause, a->api_timeout);
	return 1;
}

enum outcome
aws_call(struct aws *a, int svc, const char *action, const struct aws_param *p,
    size_t n, struct aws_result *res, char **cause)
{
	struct call		 c;
	struct buf		 body = { NULL, 0, 0 };
	char			*endpoint = NULL, *url = NULL, *what = NULL;
	double			 skew;
	enum awserr_decision	 d;
	enum outcome		 ret = OUTCOME_RETRY;
	int			 err;

	memset(res, 0, sizeof *res);
	if (a->region == NULL) {
		set_cause(cause, "no region");
		goto out;
	}
	endpoint = aws_endpoint(a, svc);
	url = xasprintf("%s/", endpoint);
	what = xasprintf("%s %s", services[svc].name, action);
	form_body(&body, svc, action, p, n);
	call_init(a, &c, svc, what, action);
	for (;;) {
		aws_result_free(res);
		call_pace(a, &c);
		err = attempt(a, svc, url, body.data, res, &skew, cause);
		d = call_decide(a, &c, err, res->status, res->code, skew, cause);
		if (res->code != NULL && d == AWSERR_FATAL)
			set_cause(cause, "%s: %s", res->code, res->message);
		else if (res->code != NULL && error_is_cause(d))
			set_cause(cause, "%s %s: %s: %s", services[svc].name, action,
			    res->code, res->message);
		if (call_next(a, &c, d, &ret, cause) != 0)
			goto out;
	}
out:
	if (outcome_retryable(ret) && res->code == NULL)
		aws_result_free(res);
	buf_free(&body);
	free(endpoint);
	free(url);
	free(what);
	return ret;
}

/* aws_call for a caller that only needs the answer OK: any other outcome is an error. */
int
aws_call_ok(struct aws *a, int svc, const char *action, const struct aws_param *p,
    size_t n, struct aws_result *res, char **cause)
{
	if (aws_call(a, svc, action, p, n, res, cause) != OUTCOME_OK)
		return set_cause(cause, "%s: %s", action, *cause);
	return 0;
}

int
aws_s3_parse_url(const char *url, char **bucket, char **key, char **cause)
{
	const char	*p, *slash;

	*bucket = *key = NULL;
	if (strncmp(url, "s3://", 5) != 0)
		return set_cause(cause, "%s: not an s3:// URL", url);
	p = url + 5;
	if ((slash = strchr(p, '/')) == NULL || slash == p || slash[1] == '\0')
		return set_cause(cause, "%s: expected s3://BUCKET/KEY", url);
	*bucket = xstrndup(p, (size_t)(slash - p));
	*key = xstrdup(slash + 1);
	return 0;
}

/* Whether the S3 endpoint was overridden (then path-style addressing is used). */
static int
endpoint_overridden(const struct aws *a, int svc)
{
	const char	*env;

	return ((env = getenv(services[svc].env)) != NULL && *env != '\0') ||
	    ((env = getenv("AWS_ENDPOINT_URL")) != NULL && *env != '\0') ||
	    a->endpoint_url != NULL;
}

/*
 * Read a (small) error body off a failed stream and turn it into code and
 * message. The body is wiped: S3's ExpiredToken echoes the session token.
 */
static void
s3_error(struct http_stream *st, struct aws_result *res)
{
	struct buf	 b = { NULL, 0, 0 };
	char		 chunk[4096];
	ssize_t		 n;

	while (b.len < 65536 && (n = http_stream_read(st, chunk, sizeof chunk, NULL)) > 0)
		buf_add(&b, chunk, (size_t)n);
	explicit_bzero(chunk, sizeof chunk);
	res->status = http_stream_status(st);
	if (b.len > 0 && xml_parse(b.data, b.len, &res->xml, NULL) == 0 &&
	    aws_parse_error(res->xml, &res->code, &res->message, &res->request_id) == 0) {
		withhold_message(res);
		goto out;
	}
	res->code = xstrdup(res->status == 404 ? "NoSuchKey" : res->status == 403 ?
	    "AccessDenied" : "HTTPError");
	res->message = xasprintf("HTTP %ld", res->status);
out:
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
}

/* The stream's Date header as seconds since the epoch, or -1. */
static long long
stream_date(const struct http_stream *st)
{
	struct http_header	h;

	if ((h.value = (char *)http_stream_header(st, "Date")) == NULL)
		return -1;
	h.name = (char *)"Date";
	return http_date(&h, 1);
}

/*
 * Sign and open one S3 GET; returns the transport result. On an answer the
 * result has its status (and code and message unless it is a 2xx), and skew
 * the server's clock against ours.
 */
static int
s3_attempt(struct aws *a, const char *url, const char *path, long long from,
    long long to, struct http_stream **st, struct aws_result *res, double *skew, char **cause)
{
	struct signed_req	 sreq;
	struct http_request	 req;
	int			 err;

	*skew = 0;
	if (sign_request(a, AWS_S3, "GET", url, path, NULL, NULL, &sreq, cause) != 0)
		return AWSERR_NOT_SENT;
	request_init(&req, "GET", url, &sreq, 30);
	req.range_from = from;
	req.range_to = to;
	err = http_stream_open(&req, st, cause);
	signed_req_free(&sreq);
	if (err != HTTP_OK)
		return err;
	*skew = clock_skew(stream_date(*st));
	res->status = http_stream_status(*st);
	if (res->status < 200 || res->status > 299)
		s3_error(*st, res);
	return err;
}

/* The object's URL and its path (what is signed): path-style with a custom endpoint. */
static char *
s3_url(const struct aws *a, const char *bucket, const char *key, struct buf *path)
{
	char	*base, *url;

	if (endpoint_overridden(a, AWS_S3) || strchr(bucket, '.') != NULL) {
		base = aws_endpoint(a, AWS_S3);
		buf_addc(path, '/');
		sigv4_uri_encode(path, bucket, strlen(bucket), 0);
	} else {
		/* Virtual-hosted style: https://BUCKET.s3.REGION.amazonaws.com/KEY */
		base = xasprintf("https://%s.s3.%s.amazonaws.com", bucket, a->region);
	}
	buf_addc(path, '/');
	sigv4_uri_encode(path, key, strlen(key), 1);
	url = xasprintf("%s%s", base, path->data);
	free(base);
	return url;
}

enum outcome
aws_s3_open(struct aws *a, const char *bucket, const char *key, long long from,
    long long to, struct http_stream **out, char **cause)
{
	struct call		 c;
	struct http_stream	*st = NULL;
	struct aws_result	 res;
	struct buf		 path = { NULL, 0, 0 };
	char			*url, *what;
	double			 skew;
	enum awserr_decision	 d;
	enum outcome		 ret = OUTCOME_RETRY;
	int			 err;

	*out = NULL;
	memset(&res, 0, sizeof res);
	url = s3_url(a, bucket, key, &path);
	if (to > 0)
		what = xasprintf("s3 GetObject s3://%s/%s bytes %lld-%lld", bucket, key, from,
		    to);
	else if (from > 0)
		what = xasprintf("s3 GetObject s3://%s/%s from byte %lld", bucket, key, from);
	else
		what = xasprintf("s3 GetObject s3://%s/%s", bucket, key);
	call_init(a, &c, AWS_S3, what, "s3:GetObject");
	for (;;) {
		aws_result_free(&res);
		http_stream_close(st);
		st = NULL;
		call_pace(a, &c);
		err = s3_attempt(a, url, path.data, from, to, &st, &res, &skew, cause);
		d = call_decide(a, &c, err, res.status, res.code, skew, cause);
		if (d == AWSERR_OK) {
			/* A Range request needs 206, a whole object 200. */
			if ((res.status == 200 && from == 0 && to <= 0) ||
			    (res.status == 206 && (from > 0 || to > 0)))
				ret = OUTCOME_OK;
			else
				set_cause(cause, "s3://%s/%s: HTTP %ld to a request from byte %lld",
				    bucket, key, res.status, from);
			goto out;
		}
		if (res.code != NULL && error_is_cause(d))
			set_cause(cause, "s3://%s/%s: %s: %s", bucket, key, res.code,
			    res.message);
		if (call_next(a, &c, d, &ret, cause) != 0)
			goto out;
	}
out:
	if (ret == OUTCOME_OK) {
		*out = st;
		st = NULL;
	}
	http_stream_close(st);
	aws_result_free(&res);
	buf_free(&path);
	free(url);
	free(what);
	return ret;
}

const char *
aws_result_header(const struct aws_result *r, const char *name)
{
	return http_header(r->headers, r->nheaders, name);
}

/* Sign and send one S3 write attempt; fills the result, returns the http_do error. */
static int
s3_write_attempt(struct aws *a, const struct aws_s3_request *rq, const char *url,
    const char *path, struct aws_result *res, double *skew, char **cause)
{
	struct sign_extra	 x = { rq->query, rq->body_sha256, rq->headers, rq->nheaders };
	struct signed_req	 sreq;
	struct http_request	 req;
	struct http_response	 resp;
	char			 sha[65];
	int			 err;

	*skew = 0;
	if (x.payload_sha == NULL && rq->body != NULL) {
		sigv4_sha256_hex(rq->body, rq->body_len, sha);
		x.payload_sha = sha;
	}
	memset(&resp, 0, sizeof resp);
	if (sign_request_extra(a, AWS_S3, rq->method, url, path, NULL, NULL, &x, &sreq,
	    cause) != 0)
		return AWSERR_NOT_SENT;
	request_init(&req, rq->method, url, &sreq, 300);
	req.body = rq->body;
	req.body_len = rq->body_len;
	req.body_file = rq->body_file;
	if ((err = http_do(&req, &resp, cause)) != HTTP_OK)
		goto out;
	*skew = clock_skew(http_date(resp.headers, resp.nheaders));
	res->status = resp.status;
	res->headers = resp.headers;
	res->nheaders = resp.nheaders;
	resp.headers = NULL;
	resp.nheaders = 0;
	res->body = buf_take(&resp.body);
	if (res->body != NULL &&
	    xml_parse(res->body, strlen(res->body), &res->xml, NULL) != 0)
		res->xml = NULL;
	if (resp.status >= 200 && resp.status <= 299)
		goto out;
	if (aws_parse_error(res->xml, &res->code, &res->message, &res->request_id) != 0) {
		/* A HEAD answer has no body to say why. */
		res->code = xstrdup(resp.status == 404 ? "NotFound" : resp.status == 403 ?
		    "AccessDenied" : "HTTPError");
		res->message = xasprintf("HTTP %ld", resp.status);
	}
	withhold_message(res);
out:
	signed_req_free(&sreq);
	http_response_free(&resp);
	return err;
}

enum outcome
aws_s3_call(struct aws *a, const struct aws_s3_request *rq, struct aws_result *res,
    char **cause)
{
	struct call		 c;
	struct buf		 path = { NULL, 0, 0 };
	char			*url, *full, *what, *action;
	double			 skew;
	enum awserr_decision	 d;
	enum outcome		 ret = OUTCOME_RETRY;
	int			 err;

	memset(res, 0, sizeof *res);
	url = s3_url(a, rq->bucket, rq->key, &path);
	full = rq->query != NULL ? xasprintf("%s?%s", url, rq->query) : xstrdup(url);
	what = xasprintf("s3 %s s3://%s/%s", rq->action, rq->bucket, rq->key);
	action = xasprintf("s3:%s", rq->action);
	call_init(a, &c, AWS_S3, what, action);
	for (;;) {
		aws_result_free(res);
		call_pace(a, &c);
		err = s3_write_attempt(a, rq, full, path.data, res, &skew, cause);
		d = call_decide(a, &c, err, res->status, res->code, skew, cause);
		if (res->code != NULL && error_is_cause(d))
			set_cause(cause, "s3://%s/%s: %s %s: %s", rq->bucket, rq->key,
			    rq->action, res->code, res->message);
		if (call_next(a, &c, d, &ret, cause) != 0)
			break;
	}
	buf_free(&path);
	free(url);
	free(full);
	free(what);
	free(action);
	return ret;
}
