/* http.c - the agent's only HTTP client (libcurl): one reused connection pool per process. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "util.h"

#define HTTP_MAX_HEADERS	100
#define HTTP_STREAM_HIGH	(256 * 1024)	/* pause the transfer above this */

static CURL	*http_easy;	/* reused: keeps connections and DNS between calls */
static CURLSH	*http_share;
static int	 http_busy;	/* http_do calls under way on this stack */
static pthread_mutex_t http_share_mtx = PTHREAD_MUTEX_INITIALIZER;
static char	*http_ca_file;	/* the CA bundle HTTPS is verified against, or NULL */
static char	*http_ca_dir;

/* Where distributions keep their CA bundle: a static OpenSSL knows none of them. */
static const char *const http_ca_paths[] = {
	"/etc/ssl/certs/ca-certificates.crt",	/* Debian, Ubuntu */
	"/etc/pki/tls/certs/ca-bundle.crt",	/* Amazon Linux, RHEL, Fedora */
	"/etc/ssl/ca-bundle.pem",		/* SUSE */
	"/etc/ssl/cert.pem",			/* Alpine */
};

struct hdrs {
	struct http_header	*v;
	size_t			 n;
	int			 overflow;
};

struct http_stream {
	CURL			*easy;
	CURLM			*multi;
	struct curl_slist	*slist;
	long			 status;
	struct hdrs		 hdrs;
	struct buf		 pending;	/* received, not yet read */
	size_t			 off;		/* read position in pending */
	int			 paused;
	int			 done;
	int			 follow;	/* redirects are being followed */
	int			 err;
	char			 errbuf[CURL_ERROR_SIZE];
};

struct file_source {
	int		 fd;
	long long	 start;		/* the body's first byte in the file */
	long long	 len;
	long long	 off;
	long long	 left;
	int		 failed;
};

struct body_sink {
	struct buf	*body;
	size_t		 max;
	int		 too_big;
};

/* SSL_CERT_FILE (and SSL_CERT_DIR) as OpenSSL's tools read them, else the first bundle present. */
static void
ca_choose(void)
{
	const char	*env;
	size_t		 i;

	if ((env = getenv("SSL_CERT_DIR")) != NULL && *env != '\0')
		http_ca_dir = xstrdup(env);
	if ((env = getenv("SSL_CERT_FILE")) != NULL && *env != '\0') {
		http_ca_file = xstrdup(env);
		return;
	}
	for (i = 0; i < nitems(http_ca_paths); i++) {
		if (access(http_ca_paths[i], R_OK) == 0) {
			http_ca_file = xstrdup(http_ca_paths[i]);
			return;
		}
	}
}

const char *
http_ca_bundle(void)
{
	return http_ca_file;
}

/* The share is used by streams on several threads at once (a parallel fetch). */
static void
share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *arg)
{
	(void)easy; (void)data; (void)access; (void)arg;
	pthread_mutex_lock(&http_share_mtx);
}

static void
share_unlock(CURL *easy, curl_lock_data data, void *arg)
{
	(void)easy; (void)data; (void)arg;
	pthread_mutex_unlock(&http_share_mtx);
}

int
http_init(char **cause)
{
	CURLcode	rc;

	ca_choose();
	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK)
		return set_cause(cause, "curl: %s", curl_easy_strerror(rc));
	if ((http_share = curl_share_init()) == NULL)
		fatal("out of memory");
	curl_share_setopt(http_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(http_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(http_share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(http_share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	if ((http_easy = curl_easy_init()) == NULL)
		fatal("out of memory");
	return 0;
}

void
http_cleanup(void)
{
	if (http_easy != NULL)
		curl_easy_cleanup(http_easy);
	if (http_share != NULL)
		curl_share_cleanup(http_share);
	http_easy = NULL;
	http_share = NULL;
	free(http_ca_file);
	free(http_ca_dir);
	http_ca_file = http_ca_dir = NULL;
	curl_global_cleanup();
}

const char *
http_library_version(void)
{
	return curl_version();
}

static void
hdrs_free(struct hdrs *h)
{
	size_t	i;

	for (i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

/* Keep the headers of the last response only (redirects and 100-continue come first). */
static size_t
header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct hdrs	*h = arg;
	size_t		 len = size * n, nlen;
	char		*colon, *v, *end;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		hdrs_free(h);
		return len;
	}
	if ((colon = memchr(data, ':', len)) == NULL)
		return len;
	if (h->n >= HTTP_MAX_HEADERS) {
		h->overflow = 1;
		return len;
	}
	nlen = (size_t)(colon - data);
	v = colon + 1;
	end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	h->v = xrealloc(h->v, (h->n + 1) * sizeof *h->v);
	h->v[h->n].name = xstrndup(data, nlen);
	h->v[h->n].value = xstrndup(v, (size_t)(end - v));
	h->n++;
	return len;
}

static size_t
body_cb(char *data, size_t size, size_t n, void *arg)
{
	struct body_sink	*s = arg;
	size_t			 len = size * n;

	if (s->body->len + len > s->max) {
		s->too_big = 1;
		return 0;
	}
	buf_add(s->body, data, len);
	return len;
}

/* Feed an upload from its file, with pread so a retry reads the same bytes again. */
static size_t
file_read_cb(char *p, size_t size, size_t n, void *arg)
{
	struct file_source	*f = arg;
	size_t			 len = size * n;
	ssize_t			 r;

	if ((long long)len > f->left)
		len = (size_t)f->left;
	if (len == 0)
		return 0;
	if ((r = pread(f->fd, p, len, (off_t)f->off)) <= 0) {
		f->failed = 1;
		return CURL_READFUNC_ABORT;
	}
	f->off += r;
	f->left -= r;
	return (size_t)r;
}

/* curl sends a body again (a reused connection that was closed) from where it says. */
static int
file_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct file_source	*f = arg;

	if (origin != SEEK_SET || offset < 0 || offset > f->len)
		return CURL_SEEKFUNC_CANTSEEK;
	f->off = f->start + offset;
	f->left = f->len - offset;
	return CURL_SEEKFUNC_OK;
}

const char *
http_header(const struct http_header *h, size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	}
	return NULL;
}

long long
http_date(const struct http_header *h, size_t n)
{
	const char	*v;
	time_t		 t;

	if ((v = http_header(h, n, "Date")) == NULL)
		return -1;
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	return (long long)t;
}

int
http_retryable(int err)
{
	return err == HTTP_ECONNECT || err == HTTP_ETIMEOUT || err == HTTP_EIO;
}

/* Request headers carry Authorization and tokens: wipe them before they are freed. */
static void
slist_free(struct curl_slist *l)
{
	struct curl_slist	*p;

	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int
classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return HTTP_OK;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return HTTP_ECONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_ETIMEOUT;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return HTTP_EIO;
	default:
		return HTTP_EOTHER;
	}
}

/* Options shared by buffered and streamed requests; the header list is returned for freeing. */
static struct curl_slist *
setup(CURL *easy, const struct http_request *req, struct hdrs *h, char *errbuf)
{
	struct curl_slist	*slist = NULL;
	const char *const	*hp;
	char			 range[64];
	double			 timeout, ctimeout;

	timeout = req->timeout > 0 ? req->timeout : 30;
	ctimeout = req->connect_timeout > 0 ? req->connect_timeout : 5;
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_SHARE, http_share);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	if (http_ca_file != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, http_ca_file);
	if (http_ca_dir != NULL)
		curl_easy_setopt(easy, CURLOPT_CAPATH, http_ca_dir);
	/* We sign the path we send: curl must not squash "." or ".." in it. */
	curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
	if (req->follow) {
		curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
	}
	if (req->body_file != NULL) {
		curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, file_read_cb);
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (req->body != NULL || strcmp(req->method, "GET") != 0) {
		if (strcmp(req->method, "HEAD") == 0)
			curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
		else {
			curl_easy_setopt(easy, CURLOPT_POST, 1L);
			curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
			    req->body != NULL ? req->body : "");
			curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)req->body_len);
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
		}
	}
	/* No "Expect: 100-continue" round trip, and no default content type. */
	slist = curl_slist_append(slist, "Expect:");
	if (req->headers != NULL) {
		for (hp = req->headers; *hp != NULL; hp++)
			slist = curl_slist_append(slist, *hp);
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, slist);
	if (req->range_to > 0) {
		snprintf(range, sizeof range, "%lld-%lld", req->range_from, req->range_to);
		curl_easy_setopt(easy, CURLOPT_RANGE, range);
	} else if (req->range_from > 0) {
		snprintf(range, sizeof range, "%lld-", req->range_from);
		curl_easy_setopt(easy, CURLOPT_RANGE, range);
	}
	return slist;
}

/* Why a transfer failed; when the CA bundle could not vouch for the peer, which bundle. */
static char *
describe(CURLcode rc, const char *errbuf)
{
	const char	*why = *errbuf != '\0' ? errbuf : curl_easy_strerror(rc);

	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
		return xasprintf("%s (CA bundle: %s; SSL_CERT_FILE names another)", why,
		    http_ca_file != NULL ? http_ca_file : "none found");
	return xstrdup(why);
}

/*
 * A URL as a log or a cause may show it: a presigned query carries a signature and
 * userinfo a password, so both are withheld.
 */
char *
http_url_shown(const char *url)
{
	const char	*host, *at, *rest;
	size_t		 restlen;

	host = strstr(url, "://");
	host = host != NULL ? host + 3 : url;
	at = memchr(host, '@', strcspn(host, "/?#"));
	rest = at != NULL ? at + 1 : host;
	restlen = strcspn(rest, "?#");
	return xasprintf("%.*s%s%.*s%s", (int)(host - url), url,
	    at != NULL ? "(user withheld)@" : "", (int)restlen, rest,
	    rest[restlen] != '\0' ? "?(query withheld)" : "");
}

/* A request's failure as a cause: its URL without secrets. */
static void
req_cause(char **cause, const struct http_request *req, const char *why)
{
	char	*shown = http_url_shown(req->url);

	set_cause(cause, "%s %s: %s", req->method, shown, why);
	free(shown);
}

static int
fail(CURLcode rc, const char *errbuf, const struct http_request *req, char **cause)
{
	char	*why = describe(rc, errbuf);

	req_cause(cause, req, why);
	free(why);
	return classify(rc);
}

int
http_do(const struct http_request *req, struct http_response *resp, char **cause)
{
	struct curl_slist	*slist;
	struct body_sink	 sink;
	struct file_source	 src;
	CURL			*easy = http_easy;
	struct hdrs		 h = { NULL, 0, 0 };
	char			 errbuf[CURL_ERROR_SIZE] = "", *why;
	CURLcode		 rc;
	int			 ret = HTTP_OK;

	memset(resp, 0, sizeof *resp);
	sink.body = &resp->body;
	sink.max = req->max_body > 0 ? req->max_body : 16 << 20;
	sink.too_big = 0;
	/* A request from inside another's callback (the fatal path's ABANDON) gets its own handle. */
	if (http_busy) {
		if ((easy = curl_easy_init()) == NULL)
			fatal("out of memory");
	} else
		curl_easy_reset(easy);
	http_busy++;
	slist = setup(easy, req, &h, errbuf);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
	if (req->body_file != NULL) {
		src = (struct file_source){ req->body_file->fd, req->body_file->offset,
		    (long long)req->body_len, req->body_file->offset, (long long)req->body_len,
		    0 };
		curl_easy_setopt(easy, CURLOPT_READDATA, &src);
		curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, file_seek_cb);
		curl_easy_setopt(easy, CURLOPT_SEEKDATA, &src);
	}
	rc = curl_easy_perform(easy);
	if (req->body_file != NULL && src.failed) {
		why = xasprintf("reading the body: %s", strerror(errno));
		req_cause(cause, req, why);
		free(why);
		ret = HTTP_EOTHER;
		goto out;
	}
	if (sink.too_big) {
		why = xasprintf("response larger than %zu bytes", sink.max);
		req_cause(cause, req, why);
		free(why);
		ret = HTTP_EOTHER;
		goto out;
	}
	if (rc != CURLE_OK) {
		ret = fail(rc, errbuf, req, cause);
		goto out;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->headers = h.v;
	resp->nheaders = h.n;
	h.v = NULL;
	h.n = 0;
out:
	http_busy--;
	if (easy != http_easy)
		curl_easy_cleanup(easy);
	hdrs_free(&h);
	slist_free(slist);
	if (ret != HTTP_OK)
		buf_free(&resp->body);
	return ret;
}

void
http_response_free(struct http_response *resp)
{
	struct hdrs	h;

	if (resp == NULL)
		return;
	h.v = resp->headers;
	h.n = resp->nheaders;
	hdrs_free(&h);
	buf_free(&resp->body);
	memset(resp, 0, sizeof *resp);
}

/* Buffer what curl hands over; pause above the high mark so memory stays bounded. */
static size_t
stream_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_stream	*s = arg;
	size_t			 len = size * n;

	if (s->pending.len - s->off >= HTTP_STREAM_HIGH) {
		s->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (s->off > 0) {
		memmove(s->pending.data, s->pending.data + s->off, s->pending.len - s->off);
		s->pending.len -= s->off;
		s->off = 0;
	}
	buf_add(&s->pending, data, len);
	return len;
}

/* The status of the final response, or 0 while none (or only a redirect being followed) is in. */
static long
final_status(struct http_stream *s)
{
	char	*redirect = NULL;
	long	 code = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200)
		return 0;
	if (code >= 300 && code < 400 &&
	    curl_easy_getinfo(s->easy, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK &&
	    redirect != NULL && s->follow)
		return 0;
	return code;
}

/* Drive the transfer until data is pending, it ends, or (headers_only) headers are in. */
static int
stream_pump(struct http_stream *s, int headers_only, char **cause)
{
	CURLMsg		*msg;
	CURLMcode	 mc;
	char		*why;
	int		 running, left;
	long		 code;

	for (;;) {
		/* Headers first: the first body bytes may arrive with them. */
		if (headers_only && (code = final_status(s)) != 0) {
			s->status = code;
			return 0;
		}
		if (s->pending.len > s->off || s->done)
			return 0;
		if (s->paused) {
			s->paused = 0;
			curl_easy_pause(s->easy, CURLPAUSE_CONT);
		}
		if ((mc = curl_multi_perform(s->multi, &running)) != CURLM_OK)
			return set_cause(cause, "curl: %s", curl_multi_strerror(mc));
		while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			s->done = 1;
			curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
			if (msg->data.result != CURLE_OK) {
				s->err = classify(msg->data.result);
				why = describe(msg->data.result, s->errbuf);
				set_cause(cause, "%s", why);
				free(why);
				return -1;
			}
		}
		if (s->pending.len > s->off || s->done)
			continue;
		if (!running)
			s->done = 1;
		else if ((mc = curl_multi_poll(s->multi, NULL, 0, 1000, NULL)) != CURLM_OK)
			return set_cause(cause, "curl: %s", curl_multi_strerror(mc));
	}
}

int
http_stream_open(const struct http_request *req, struct http_stream **sp, char **cause)
{
	struct http_stream	*s;
	int			 ret = -1;

	s = xcalloc(1, sizeof *s);
	if ((s->easy = curl_easy_init()) == NULL || (s->multi = curl_multi_init()) == NULL)
		fatal("out of memory");
	s->slist = setup(s->easy, req, &s->hdrs, s->errbuf);
	s->follow = req->follow;
	/* A stream has no total time limit; it fails when it stalls for the timeout. */
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_TIME,
	    (long)(req->timeout > 0 ? req->timeout : 30));
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, stream_cb);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_multi_add_handle(s->multi, s->easy);
	if (stream_pump(s, 1, cause) != 0) {
		if (s->err == HTTP_OK)
			s->err = HTTP_EOTHER;
		ret = s->err;
		req_cause(cause, req, *cause);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0) {
		http_stream_close(s);
		s = NULL;
	}
	*sp = s;
	return ret;
}

long
http_stream_status(const struct http_stream *s)
{
	return s->status;
}

const char *
http_stream_header(const struct http_stream *s, const char *name)
{
	return http_header(s->hdrs.v, s->hdrs.n, name);
}

int
http_stream_error(const struct http_stream *s)
{
	return s->err;
}

ssize_t
http_stream_read(struct http_stream *s, void *p, size_t len, char **cause)
{
	size_t	avail;

	if (s->err != HTTP_OK)
		return set_cause(cause, "stream already failed");
	if (stream_pump(s, 0, cause) != 0) {
		if (s->err == HTTP_OK)
			s->err = HTTP_EOTHER;
		return -1;
	}
	avail = s->pending.len - s->off;
	if (avail == 0)
		return 0;
	if (len > avail)
		len = avail;
	memcpy(p, s->pending.data + s->off, len);
	s->off += len;
	return (ssize_t)len;
}

void
http_stream_close(struct http_stream *s)
{
	if (s == NULL)
		return;
	if (s->multi != NULL) {
		curl_multi_remove_handle(s->multi, s->easy);
		curl_multi_cleanup(s->multi);
	}
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	slist_free(s->slist);
	hdrs_free(&s->hdrs);
	buf_free(&s->pending);
	free(s);
}
