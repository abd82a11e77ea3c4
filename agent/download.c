/* download.c - GET an artifact from S3 or HTTP(S), resuming a broken transfer with Range. */
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws.h"
#include "download.h"
#include "halt.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_RESUMES	5
#define DEF_STALL	30

/* A download that resumes with a Range request when the transfer breaks. */
struct download {
	struct aws		*aws;
	char			*url;
	char			*log_url;	/* url without what may be secret */
	char			*bucket;	/* s3:// only */
	char			*key;
	double			 timeout;
	const struct halt	*halt;
	void			(*tick)(void *);
	void			*tick_arg;
	pthread_mutex_t		*aws_lock;
	struct http_stream	*st;
	long long		 offset;	/* where the next byte comes from */
	long long		 end;		/* the last byte wanted, or -1: the object's */
	long long		 total;		/* the object's size, or -1 */
	char			*etag;
	int			 resumes;
	int			 broke;		/* the last open failed mid-transfer */
	int			 ranges;	/* the answer said Accept-Ranges: bytes */
};

/* Parse "bytes START-END/TOTAL" (TOTAL may be "*": -1). */
static int
parse_content_range(const char *s, long long *start, long long *total)
{
	char		*end;
	long long	 last;

	if (s == NULL || strncasecmp(s, "bytes ", 6) != 0)
		return -1;
	s += 6;
	errno = 0;
	*start = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '-' || *start < 0)
		return -1;
	s = end + 1;
	last = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '/' || last < *start)
		return -1;
	s = end + 1;
	if (strcmp(s, "*") == 0) {
		*total = -1;
		return 0;
	}
	*total = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *total <= last)
		return -1;
	return 0;
}

/* Why a transfer broke, in words safe to log (the cause holds the URL). */
static const char *
break_reason(int err, ssize_t n)
{
	if (n == 0)
		return "the connection closed before the end";
	switch (err) {
	case HTTP_ECONNECT:
		return "cannot connect";
	case HTTP_ETIMEOUT:
		return "timed out";
	case HTTP_EIO:
		return "connection reset or truncated";
	default:
		return "transfer error";
	}
}

/* One debug line per plain GET of the artifact: its answer or why there was none. */
static void
log_get(const struct download *d, int err, long status)
{
	if (err != HTTP_OK)
		log_debug("artifact: GET %s from byte %lld: %s", d->log_url, d->offset,
		    break_reason(err, -1));
	else
		log_debug("artifact: GET %s from byte %lld: HTTP %ld", d->log_url, d->offset,
		    status);
}

/* Open the artifact at d->offset; *retry says whether trying again could help. */
static int
dl_open(struct download *d, int *retry, char **cause)
{
	struct http_request	 req;
	const char		*v, *etag;
	char			*end;
	long long		 start, total = -1, to = d->end > 0 ? d->end : 0;
	long			 status;
	int			 err, ranged = d->offset > 0 || to > 0, r;

	*retry = 0;
	if (d->bucket != NULL) {
		if (d->aws == NULL)
			return set_cause(cause, "%s: no AWS context for an S3 URL", d->log_url);
		/* aws_s3_open has already retried what is worth retrying. */
		if (d->aws_lock != NULL)
			pthread_mutex_lock(d->aws_lock);
		r = aws_s3_open(d->aws, d->bucket, d->key, d->offset, to, &d->st, cause);
		if (d->aws_lock != NULL)
			pthread_mutex_unlock(d->aws_lock);
		if (r != AWS_OK)
			return -1;
	} else {
		memset(&req, 0, sizeof req);
		req.method = "GET";
		req.url = d->url;
		req.timeout = d->timeout;
		req.range_from = d->offset;
		req.range_to = to;
		req.follow = 1;
		if ((err = http_stream_open(&req, &d->st, cause)) != HTTP_OK) {
			log_get(d, err, 0);
			*retry = http_retryable(err);
			d->broke = err == HTTP_EIO;
			return -1;
		}
		status = http_stream_status(d->st);
		log_get(d, err, status);
		if (status != (ranged ? 206 : 200)) {
			*retry = status >= 500 || status == 429;
			if (d->offset > 0 && status == 200) {
				set_cause(cause, "GET %s: HTTP 200 to a Range request from byte "
				    "%lld (no resume support)", d->log_url, d->offset);
			} else
				set_cause(cause, "GET %s: HTTP %ld", d->log_url, status);
			goto fail;
		}
	}
	if (ranged) {
		v = http_stream_header(d->st, "Content-Range");
		if (parse_content_range(v, &start, &total) != 0 || start != d->offset) {
			set_cause(cause, "%s: resumed from byte %lld but Content-Range is '%s'",
			    d->log_url, d->offset, v != NULL ? v : "");
			goto fail;
		}
	} else if ((v = http_stream_header(d->st, "Content-Length")) != NULL) {
		errno = 0;
		total = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || total < 0)
			total = -1;
	}
	if (d->offset > 0 && d->total != -1 && total != -1 && total != d->total) {
		set_cause(cause, "%s changed during the download (%lld bytes, now %lld)",
		    d->log_url, d->total, total);
		goto fail;
	}
	if (total != -1)
		d->total = total;
	v = http_stream_header(d->st, "Accept-Ranges");
	d->ranges = v != NULL && strcasecmp(v, "bytes") == 0;
	etag = http_stream_header(d->st, "ETag");
	if (d->offset > 0 && d->etag != NULL && etag != NULL && strcmp(d->etag, etag) != 0) {
		set_cause(cause, "%s changed during the download (ETag %s, now %s)", d->log_url,
		    d->etag, etag);
		goto fail;
	}
	if (d->etag == NULL && etag != NULL)
		d->etag = xstrdup(etag);
	if (d->offset > 0)
		log_debug("artifact: %s resumed at byte %lld of %lld", d->log_url, d->offset,
		    d->total);
	return 0;
fail:
	http_stream_close(d->st);
	d->st = NULL;
	return -1;
}

struct download *
download_new(struct aws *aws, const char *url, const struct download_opts *opts,
    char **cause)
{
	struct download	*d;

	d = xcalloc(1, sizeof *d);
	d->aws = aws;
	d->url = xstrdup(url);
	d->log_url = http_url_shown(url);
	d->timeout = opts->stall_timeout > 0 ? opts->stall_timeout : DEF_STALL;
	d->halt = opts->halt;
	d->tick = opts->tick;
	d->tick_arg = opts->tick_arg;
	d->aws_lock = opts->aws_lock;
	d->total = -1;
	d->end = -1;
	if (strncmp(url, "s3://", 5) == 0) {
		if (aws_s3_parse_url(url, &d->bucket, &d->key, cause) != 0)
			goto fail;
	} else if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		set_cause(cause, "%s: not an s3://, https:// or http:// URL", d->log_url);
		goto fail;
	}
	return d;
fail:
	download_free(d);
	return NULL;
}

void
download_range(struct download *d, long long from, long long to)
{
	d->offset = from;
	d->end = to;
}

/* The pause before the k-th try again (from 0): short, as an origin's hiccup is. */
static double
again_delay(int k)
{
	return k >= 3 ? 2 : 0.25 * (double)(1 << k);
}

/* Open again where the transfer broke, pausing between tries, MAX_RESUMES in all. */
static int
reopen(struct download *d, const char *why, char **cause)
{
	double	delay;
	int	retry = 1;

	while (d->st == NULL) {
		if (!retry || d->resumes >= MAX_RESUMES)
			return set_cause(cause, "%s (after %d resumes)", *cause, d->resumes);
		delay = again_delay(d->resumes);
		log_debug("artifact: %s: resume %d of %d from byte %lld of %lld in %.2f s: %s",
		    d->log_url, d->resumes + 1, MAX_RESUMES, d->offset, d->total, delay, why);
		sleep_for(delay, d->halt);
		if (halt_stopped(d->halt))
			return set_cause(cause, "stopped");
		d->resumes++;
		if (dl_open(d, &retry, cause) != 0)
			d->st = NULL;
		why = "the last resume failed";
	}
	return 0;
}

int
download_start(struct download *d, char **cause)
{
	int	retry;

	if (dl_open(d, &retry, cause) == 0)
		return 0;
	/* Broken before the headers were read: resume as a read would. */
	if (d->broke)
		return reopen(d, break_reason(HTTP_EIO, -1), cause);
	/* An origin shedding load in a scale-out (503, 429, refused): asked again, not ABANDON. */
	if (retry)
		return reopen(d, "a retryable answer", cause);
	return -1;
}

/* The artifact's bytes: a broken transfer resumes where it stopped, up to MAX_RESUMES times. */
ssize_t
download_read(void *arg, void *p, size_t len, char **cause)
{
	struct download	*d = arg;
	ssize_t		 n;
	long long	 limit;
	int		 err;

	for (;;) {
		if (d->st == NULL) {
			set_cause(cause, "%s: not open", d->log_url);
			return -1;
		}
		n = http_stream_read(d->st, p, len, cause);
		if (d->tick != NULL)
			d->tick(d->tick_arg);
		limit = d->end >= 0 ? d->end + 1 : d->total;
		if (n > 0) {
			if (limit != -1 && d->offset + n > limit)
				return set_cause(cause, "%s: more bytes than asked for", d->log_url);
			d->offset += n;
			return n;
		}
		if (n == 0) {
			if (limit == -1 || d->offset >= limit)
				return 0;
			set_cause(cause, "%s: connection closed at byte %lld of %lld", d->log_url,
			    d->offset, limit);
			err = HTTP_EIO;
		} else {
			err = http_stream_error(d->st);
			set_cause(cause, "%s: %s", d->log_url,
			    *cause != NULL ? *cause : "read failed");
		}
		http_stream_close(d->st);
		d->st = NULL;
		if (!http_retryable(err))
			return -1;
		if (reopen(d, break_reason(err, n), cause) != 0)
			return -1;
	}
}

const char *
download_log_url(const struct download *d)
{
	return d->log_url;
}

long long
download_total(const struct download *d)
{
	return d->total;
}

int
download_ranges(const struct download *d)
{
	return d->ranges;
}

int
download_resumes(const struct download *d)
{
	return d->resumes;
}

void
download_free(struct download *d)
{
	if (d == NULL)
		return;
	http_stream_close(d->st);
	free(d->url);
	free(d->log_url);
	free(d->bucket);
	free(d->key);
	free(d->etag);
	free(d);
}

/*
 * One small GET over http(s), asked again (MAX_RESUMES times) for a 5xx, 429
 * or no answer, until a stop.
 */
static int
small_get(const struct halt *halt, const char *url, size_t max, struct http_response *resp,
    char **cause)
{
	struct http_request	req;
	double			delay;
	char			*shown = http_url_shown(url);
	int			err, tries = 0, ret = -1;

	for (;;) {
		http_response_free(resp);
		memset(resp, 0, sizeof *resp);
		memset(&req, 0, sizeof req);
		req.method = "GET";
		req.url = url;
		req.max_body = max;
		req.follow = 1;
		if ((err = http_do(&req, resp, cause)) == HTTP_OK && resp->status == 200) {
			ret = 0;
			break;
		}
		if (err == HTTP_OK)
			set_cause(cause, "%s: HTTP %ld", shown, resp->status);
		if (err == HTTP_OK ? resp->status < 500 && resp->status != 429 :
		    !http_retryable(err))
			break;
		delay = again_delay(tries);
		if (tries++ >= MAX_RESUMES) {
			set_cause(cause, "%s (after %d tries)", *cause, tries);
			break;
		}
		log_debug("artifact: %s: asked again in %.2f s", shown, delay);
		sleep_for(delay, halt);
		if (halt_stopped(halt)) {
			set_cause(cause, "%s (stopped)", *cause);
			break;
		}
	}
	free(shown);
	return ret;
}

/* Fetch a small object (a signature) whole, at most max bytes. */
int
download_small(struct aws *aws, const struct halt *halt, const char *url, size_t max,
    struct buf *out, char **cause)
{
	struct http_response	 resp;
	struct http_stream	*st = NULL;
	char			*bucket = NULL, *key = NULL, *shown, chunk[4096];
	ssize_t			 n;
	int			 ret = -1;

	memset(&resp, 0, sizeof resp);
	if (strncmp(url, "s3://", 5) == 0) {
		if (aws == NULL) {
			set_cause(cause, "%s: no AWS context for an S3 URL", url);
			goto out;
		}
		if (aws_s3_parse_url(url, &bucket, &key, cause) != 0 ||
		    aws_s3_open(aws, bucket, key, 0, 0, &st, cause) != AWS_OK)
			goto out;
		while ((n = http_stream_read(st, chunk, sizeof chunk, cause)) > 0) {
			if (out->len + (size_t)n > max) {
				set_cause(cause, "%s: larger than %zu bytes", url, max);
				goto out;
			}
			buf_add(out, chunk, (size_t)n);
		}
		if (n < 0) {
			set_cause(cause, "%s: %s", url, *cause);
			goto out;
		}
	} else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
		if (small_get(halt, url, max, &resp, cause) != 0)
			goto out;
		buf_add(out, resp.body.data, resp.body.len);
	} else {
		shown = http_url_shown(url);
		set_cause(cause, "%s: not an s3://, https:// or http:// URL", shown);
		free(shown);
		goto out;
	}
	ret = 0;
out:
	http_stream_close(st);
	http_response_free(&resp);
	free(bucket);
	free(key);
	return ret;
}

