/* test_health.c - the request parser alone; the health endpoint over raw sockets (answers, framing, abuse); the app probe. */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appprobe.h"
#include "health.h"
#include "http.h"
#include "httpreq.h"
#include "util.h"
#include "tap.h"

#ifdef __SANITIZE_ADDRESS__
size_t	__sanitizer_get_current_allocated_bytes(void);
#endif

#define PATH		"/healthz"
#define GET		"GET " PATH " HTTP/1.1\r\nHost: test\r\n\r\n"
#define NIDLE		1000
#define OVERSIZE	(10 << 20)
#define NPIPELINE	2000

struct client {
	int	fd;
	size_t	len;
	char	buf[16384];
};

struct resp {
	int	status;
	char	head[4096];
	char	body[1024];
};

static int	slow_mode;	/* under valgrind: latency bounds are looser */

static int
dial_family(int family, int port)
{
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	int			fd;

	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (family == AF_INET6) {
		memset(&sin6, 0, sizeof sin6);
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sin6.sin6_addr = in6addr_loopback;
		if (connect(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0)
			return fd;
	} else {
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
			return fd;
	}
	close(fd);
	return -1;
}

static int
dial(int port)
{
	return dial_family(AF_INET, port);
}

static int
send_all(int fd, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = send(fd, s, len, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
client_open(struct client *cl, int port)
{
	cl->len = 0;
	return (cl->fd = dial(port)) == -1 ? -1 : 0;
}

static int
client_send(struct client *cl, const char *s)
{
	return send_all(cl->fd, s, strlen(s));
}

static void
client_close(struct client *cl)
{
	if (cl->fd != -1)
		close(cl->fd);
	cl->fd = -1;
}

/* Read one response (no body after HEAD); -1 on timeout, EOF or a malformed answer. */
static int
read_response(struct client *cl, int head, struct resp *r, double timeout)
{
	struct pollfd	 pfd;
	double		 deadline = mono_now() + timeout, left;
	const char	*end, *cl_hdr;
	size_t		 hlen, blen;
	ssize_t		 n;

	memset(r, 0, sizeof *r);
	for (;;) {
		if ((end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)) != NULL) {
			hlen = (size_t)(end + 4 - cl->buf);
			if (hlen >= sizeof r->head || strncmp(cl->buf, "HTTP/1.1 ", 9) != 0)
				return -1;
			memcpy(r->head, cl->buf, hlen);
			r->head[hlen] = '\0';
			r->status = atoi(r->head + 9);
			blen = 0;
			if ((cl_hdr = strcasestr(r->head, "\r\nContent-Length:")) != NULL)
				blen = strtoul(cl_hdr + 17, NULL, 10);
			if (head)
				blen = 0;
			if (blen >= sizeof r->body)
				return -1;
			if (cl->len >= hlen + blen) {
				memcpy(r->body, cl->buf + hlen, blen);
				r->body[blen] = '\0';
				memmove(cl->buf, cl->buf + hlen + blen, cl->len - hlen - blen);
				cl->len -= hlen + blen;
				return 0;
			}
		}
		if (cl->len == sizeof cl->buf)
			return -1;
		if ((left = deadline - mono_now()) <= 0)
			return -1;
		pfd.fd = cl->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			return -1;
		n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
		if (n <= 0)
			return -1;
		cl->len += (size_t)n;
	}
}

/* Wait up to timeout for the server to close fd (data before the end is discarded). */
static int
peer_closed(int fd, double timeout)
{
	struct pollfd	pfd;
	double		deadline = mono_now() + timeout, left;
	char		junk[4096];
	ssize_t		n;

	for (;;) {
		left = deadline - mono_now();
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, left > 0 ? (int)(left * 1000) : 0) <= 0)
			return 0;
		n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}

/* One request on a fresh connection. */
static int
exchange(int port, const char *req, int head, struct resp *r)
{
	struct client	cl;
	int		ret;

	if (client_open(&cl, port) != 0 || client_send(&cl, req) != 0) {
		client_close(&cl);
		memset(r, 0, sizeof *r);
		return -1;
	}
	ret = read_response(&cl, head, r, 3);
	client_close(&cl);
	return ret;
}

static int
has_header(const struct resp *r, const char *line)
{
	char	want[256];

	snprintf(want, sizeof want, "\r\n%s\r\n", line);
	return strcasestr(r->head, want) != NULL;
}

/* Milliseconds for a fresh connection's probe, or -1 when it failed. */
static double
probe_ms(int port, int *status)
{
	struct resp	r;
	double		t0 = mono_now();

	if (exchange(port, GET, 0, &r) != 0)
		return -1;
	*status = r.status;
	return (mono_now() - t0) * 1000;
}

static long
status_kb(const char *field)
{
	FILE	*f;
	char	 line[256];
	long	 kb = -1;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, field, strlen(field)) == 0)
			kb = atol(line + strlen(field) + 1);
	}
	fclose(f);
	return kb;
}

/* Bytes in use on the heap: the allocator's count where there is one, else resident memory. */
static size_t
heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__)
	struct mallinfo2	mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#else
	/* musl has no mallinfo: resident memory bounds the heap from above. */
	long	kb = status_kb("VmRSS:");

	return kb > 0 ? (size_t)kb * 1024 : 0;
#endif
}


static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A slowloris client: a header byte a second, until the server hangs up. */
struct slow {
	int	port;
	double	closed_after;	/* seconds from the first byte, -1 if never */
	int	answered;
};

static void *
slowloris(void *arg)
{
	struct slow	*s = arg;
	struct pollfd	 pfd;
	double		 t0;
	char		 c;
	int		 fd;
	ssize_t		 n;

	s->closed_after = -1;
	if ((fd = dial(s->port)) == -1)
		return NULL;
	t0 = mono_now();
	if (send_all(fd, "GET " PATH " HTTP/1.1\r\nX-Slow: ", 31) != 0)
		goto out;
	while (mono_now() - t0 < 12) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1000) == 1) {
			n = recv(fd, &c, 1, 0);
			if (n > 0) {
				s->answered = 1;
				continue;
			}
			s->closed_after = mono_now() - t0;
			break;
		}
		if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
			s->closed_after = mono_now() - t0;
			break;
		}
	}
out:
	close(fd);
	return NULL;
}

/* A client sending 10 MB of header, then reading what it got. */
struct big {
	int	port;
	size_t	sent;
	int	status;
	int	closed;
	int	done;
};

static void *
oversize(void *arg)
{
	struct big	*b = arg;
	struct client	 cl;
	struct resp	 r;
	static char	 chunk[65536];
	ssize_t		 n;

	memset(chunk, 'a', sizeof chunk);
	if (client_open(&cl, b->port) != 0)
		goto out;
	if (client_send(&cl, "GET " PATH " HTTP/1.1\r\nHost: test\r\nX-Junk: ") != 0)
		goto out;
	while (b->sent < OVERSIZE) {
		if ((n = send(cl.fd, chunk, sizeof chunk, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		b->sent += (size_t)n;
	}
	if (read_response(&cl, 0, &r, 3) == 0)
		b->status = r.status;
	b->closed = peer_closed(cl.fd, 3);
out:
	client_close(&cl);
	__atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A client pipelining many requests without reading; the test reads the answers meanwhile. */
struct pipeline {
	int	fd;
	int	n;
	int	ok;
};

static void *
pipeline_send(void *arg)
{
	struct pipeline	*p = arg;
	struct buf	 b;
	int		 i;

	memset(&b, 0, sizeof b);
	for (i = 0; i < p->n; i++)
		buf_adds(&b, GET);
	p->ok = send_all(p->fd, b.data, b.len) == 0;
	buf_free(&b);
	return NULL;
}

/* The app's side for appprobe_healthy: answers 200, then 500, one connection each. */
static void *
tiny_server(void *arg)
{
	static const char	*answers[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfine\n",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\n"
		    "Connection: close\r\n\r\ndatabase down\n",
	};
	int			*lfd = arg;
	char			 req[4096];
	size_t			 len;
	ssize_t			 n;
	int			 i, fd;

	for (i = 0; i < 2; i++) {
		if ((fd = accept(*lfd, NULL, NULL)) == -1)
			return NULL;
		len = 0;
		while (len < sizeof req - 1 && memmem(req, len, "\r\n\r\n", 4) == NULL) {
			if ((n = recv(fd, req + len, sizeof req - 1 - len, 0)) <= 0)
				break;
			len += (size_t)n;
		}
		send_all(fd, answers[i], strlen(answers[i]));
		close(fd);
	}
	return NULL;
}

static int
listen_any(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* The status of one request on a fresh connection; -1 when there was no answer. */
static int
status_of(int port, const char *req, int head, struct resp *r)
{
	return exchange(port, req, head, r) == 0 ? r->status : -1;
}

/* The status of the next response on cl; -1 when none came. */
static int
next_status(struct client *cl, int head, struct resp *r)
{
	return read_response(cl, head, r, 3) == 0 ? r->status : -1;
}

/* A test point: r has the header line; its whole head is shown when not. */
static int
check_header(const struct resp *r, const char *line, const char *what)
{
	int	ok = tap_true(has_header(r, line), "%s: %s", what, line);

	if (!ok)
		tap_show("head:", r->head, strlen(r->head), 0);
	return ok;
}

/* The endpoint most cases share, and what outlives one case. */
static struct health_server	*server;
static int			 server_port;
static struct slow		 slow;
static pthread_t		 slow_t;
static int			 idle[NIDLE], nidle;

/* One request to the parser alone: what it should give, and how many bytes it should use. */
struct parse_case {
	const char	*name;
	const char	*in;
	int		 status;
	int		 head;
	int		 http10;
	int		 close;
	long		 used;	/* -1: all of in; 0: incomplete; else this many bytes */
};

#define REQ(line, hdrs)	line "\r\n" hdrs "\r\n"
#define GET11(hdrs)	REQ("GET " PATH " HTTP/1.1", hdrs)
#define OK11		GET11("")

static const struct parse_case parse_cases[] = {
	{ "GET of the path: 200, kept open", OK11, 200, 0, 0, 0, -1 },
	{ "HEAD of the path: 200 without a body", REQ("HEAD " PATH " HTTP/1.1", ""),
	  200, 1, 0, 0, -1 },
	{ "bare LF line ends", "GET " PATH " HTTP/1.1\nHost: t\n\n", 200, 0, 0, 0, -1 },
	{ "CRLF header ended by a bare LF", "GET " PATH " HTTP/1.1\r\nHost: t\r\n\nrest",
	  200, 0, 0, 0, (long)sizeof("GET " PATH " HTTP/1.1\r\nHost: t\r\n\n") - 1 },
	{ "a pipelined request after the head is not used", OK11 "GET ",
	  200, 0, 0, 0, (long)sizeof(OK11) - 1 },
	{ "no blank line yet: incomplete", "GET " PATH " HTTP/1.1\r\nHost: t\r\n",
	  0, 0, 0, 0, 0 },
	{ "a TLS hello: 400 on its first bytes", "\x16\x03\x01", 400, 0, 0, 1, -1 },
	{ "a space first: 400 at once", " GET " PATH, 400, 0, 0, 1, -1 },
	{ "a 32-byte method is a method (405)",
	  REQ("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF " PATH " HTTP/1.1", ""), 405, 0, 0, 0, -1 },
	{ "a 33-byte method: 400 unread",
	  "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG " PATH " HTTP/1.1\r\n\r\n", 400, 0, 0, 1, -1 },
	{ "methods are case-sensitive: get is 405", REQ("get " PATH " HTTP/1.1", ""),
	  405, 0, 0, 0, -1 },
	{ "POST: 405", REQ("POST " PATH " HTTP/1.1", ""), 405, 0, 0, 0, -1 },
	{ "another path: 404", REQ("GET /other HTTP/1.1", ""), 404, 0, 0, 0, -1 },
	{ "a prefix of the path: 404", REQ("GET /health HTTP/1.1", ""), 404, 0, 0, 0, -1 },
	{ "query and fragment are ignored", REQ("GET " PATH "?a=1#f HTTP/1.1", ""),
	  200, 0, 0, 0, -1 },
	{ "absolute form with a port", REQ("GET http://10.0.0.1:8081" PATH " HTTP/1.1", ""),
	  200, 0, 0, 0, -1 },
	{ "absolute form, scheme in capitals", REQ("GET HTTPS://h" PATH " HTTP/1.1", ""),
	  200, 0, 0, 0, -1 },
	{ "absolute form without a path is '/': 404", REQ("GET http://h HTTP/1.1", ""),
	  404, 0, 0, 0, -1 },
	{ "asterisk form: 400", REQ("OPTIONS * HTTP/1.1", ""), 400, 0, 0, 1, -1 },
	{ "a control byte in the target: 400", REQ("GET /heal\x01thz HTTP/1.1", ""),
	  400, 0, 0, 1, -1 },
	{ "DEL in the target: 400", REQ("GET " PATH "\x7f HTTP/1.1", ""), 400, 0, 0, 1, -1 },
	{ "two spaces after the method: 400", REQ("GET  " PATH " HTTP/1.1", ""),
	  400, 0, 0, 1, -1 },
	{ "no version: 400", REQ("GET " PATH, ""), 400, 0, 0, 1, -1 },
	{ "a space after the version: 400", REQ("GET " PATH " HTTP/1.1 ", ""),
	  400, 0, 0, 1, -1 },
	{ "lower-case http/1.1: 400", REQ("GET " PATH " http/1.1", ""), 400, 0, 0, 1, -1 },
	{ "HTTP/1.x: 400", REQ("GET " PATH " HTTP/1.x", ""), 400, 0, 0, 1, -1 },
	{ "HTTP/2.0: 505 and close", REQ("GET " PATH " HTTP/2.0", ""), 505, 0, 0, 1, -1 },
	{ "HTTP/0.9: 505 and close", REQ("GET " PATH " HTTP/0.9", ""), 505, 0, 0, 1, -1 },
	{ "HTTP/1.0 closes by default", REQ("GET " PATH " HTTP/1.0", ""), 200, 0, 1, 1, -1 },
	{ "HTTP/1.0 with keep-alive in a token list stays open",
	  REQ("GET " PATH " HTTP/1.0", "Connection: foo, Keep-Alive\r\n"), 200, 0, 1, 0, -1 },
	{ "Connection: close among other tokens",
	  GET11("Connection: upgrade ,\tCLOSE\r\n"), 200, 0, 0, 1, -1 },
	{ "Connection: closed is not close",
	  GET11("Connection: closed\r\n"), 200, 0, 0, 0, -1 },
	{ "Content-Length: 0 keeps the connection",
	  GET11("Content-Length: 0\r\n"), 200, 0, 0, 0, -1 },
	{ "a body (unread) closes after the answer",
	  GET11("Content-Length: 5\r\n"), 200, 0, 0, 1, -1 },
	{ "the same Content-Length twice is one",
	  GET11("Content-Length: 5\r\ncontent-length: 5\r\n"),
	  200, 0, 0, 1, -1 },
	{ "two different Content-Lengths: 400",
	  GET11("Content-Length: 3\r\nContent-Length: 4\r\n"),
	  400, 0, 0, 1, -1 },
	{ "a Content-Length that is no number: 400",
	  GET11("Content-Length: 1e3\r\n"), 400, 0, 0, 1, -1 },
	{ "an empty Content-Length: 400",
	  GET11("Content-Length:  \r\n"), 400, 0, 0, 1, -1 },
	{ "a 15-digit Content-Length is a length",
	  GET11("Content-Length: 999999999999999\r\n"), 200, 0, 0, 1, -1 },
	{ "a 16-digit Content-Length: 400",
	  GET11("Content-Length: 1000000000000000\r\n"), 400, 0, 0, 1, -1 },
	{ "Transfer-Encoding closes after the answer",
	  GET11("Transfer-Encoding: chunked\r\n"), 200, 0, 0, 1, -1 },
	{ "a header without a colon: 400", GET11("No colon\r\n"),
	  400, 0, 0, 1, -1 },
	{ "an empty header name: 400", GET11(": x\r\n"),
	  400, 0, 0, 1, -1 },
	{ "a space before the colon: 400", GET11("Host : t\r\n"),
	  400, 0, 0, 1, -1 },
	{ "a control byte in a value: 400", GET11("X: a\x01z\r\n"),
	  400, 0, 0, 1, -1 },
	{ "a tab inside a value is allowed", GET11("X: a\tz\r\n"),
	  200, 0, 0, 0, -1 },
	{ "a bad request line uses only its head",
	  "GET " PATH "\r\n\r\nGET " PATH " HTTP/1.1\r\n\r\n", 400, 0, 0, 1,
	  (long)sizeof("GET " PATH "\r\n\r\n") - 1 },
};

static int
check_parse(const char *name, const char *in, size_t len, const struct parse_case *want)
{
	struct httpreq	rq, untouched;
	size_t		scan = 0, used, want_used;
	int		ok;

	want_used = want->used < 0 ? len : (size_t)want->used;
	memset(&untouched, 0x5a, sizeof untouched);
	rq = untouched;
	used = httpreq_parse(PATH, NULL, in, len, &scan, &rq);
	if (want->used == 0) {
		ok = used == 0 && memcmp(&rq, &untouched, sizeof rq) == 0 && scan <= len;
		tap_ok(ok, "httpreq: %s", name);
		if (!ok)
			tap_diag("  got: used %zu, status %d, scan %zu; want: used 0, rq "
			    "untouched, scan <= %zu", used, rq.status, scan, len);
		return ok;
	}
	ok = used == want_used && rq.status == want->status && rq.head == want->head &&
	    rq.http10 == want->http10 && rq.close == want->close;
	tap_ok(ok, "httpreq: %s", name);
	if (!ok)
		tap_diag("  got: used %zu status %d head %d http10 %d close %d; "
		    "want: used %zu status %d head %d http10 %d close %d", used, rq.status,
		    rq.head, rq.http10, rq.close, want_used, want->status, want->head,
		    want->http10, want->close);
	return ok;
}

/* The request delivered one byte at a time, as a slow client sends it, with *scan kept. */
/* The load balancer's User-Agent and the metrics path, as flags on the request. */
static void
test_parse_flags(void)
{
	static const struct {
		const char	*name, *in, *metrics;
		int		 status, elb, is_metrics;
	} cases[] = {
		{ "ELB-HealthChecker/2.0 is a load balancer", "GET " PATH " HTTP/1.1\r\n"
		  "User-Agent: ELB-HealthChecker/2.0\r\n\r\n", "/metrics", 200, 1, 0 },
		{ "the header name in any case", "GET " PATH " HTTP/1.1\r\n"
		  "user-agent:  ELB-HealthChecker/1.0\r\n\r\n", NULL, 200, 1, 0 },
		{ "another agent is not", "GET " PATH " HTTP/1.1\r\n"
		  "User-Agent: curl/8.0 ELB-HealthChecker/2.0\r\n\r\n", NULL, 200, 0, 0 },
		{ "the name without a version is not", "GET " PATH " HTTP/1.1\r\n"
		  "User-Agent: ELB-HealthChecker\r\n\r\n", NULL, 200, 0, 0 },
		{ "the metrics path", "GET /metrics HTTP/1.1\r\n\r\n", "/metrics", 200, 0, 1 },
		{ "the metrics path, off", "GET /metrics HTTP/1.1\r\n\r\n", NULL, 404, 0, 0 },
		{ "the metrics path, empty", "GET /metrics HTTP/1.1\r\n\r\n", "", 404, 0, 0 },
		{ "HEAD of the metrics", "HEAD /metrics HTTP/1.1\r\n\r\n", "/metrics", 200, 0, 1 },
		{ "POST to the metrics", "POST /metrics HTTP/1.1\r\n\r\n", "/metrics", 405, 0, 1 },
	};
	struct httpreq	rq;
	size_t		i, scan;

	for (i = 0; i < nitems(cases); i++) {
		scan = 0;
		httpreq_parse(PATH, cases[i].metrics, cases[i].in, strlen(cases[i].in), &scan, &rq);
		tap_ok(rq.status == cases[i].status && rq.elb == cases[i].elb &&
		    rq.metrics == cases[i].is_metrics, "httpreq: %s (got status %d elb %d "
		    "metrics %d; want %d %d %d)", cases[i].name, rq.status, rq.elb, rq.metrics,
		    cases[i].status, cases[i].elb, cases[i].is_metrics);
	}
}

static void
test_parse_bytewise(void)
{
	static const char	 in[] = "GET " PATH " HTTP/1.1\r\nHost: t\r\n\r\n";
	struct httpreq		 rq;
	size_t			 len = sizeof in - 1, n, scan = 0, used = 0, early = 0;
	int			 scan_ok = 1;

	for (n = 1; n <= len; n++) {
		used = httpreq_parse(PATH, NULL, in, n, &scan, &rq);
		if (scan > n)
			scan_ok = 0;
		if (used != 0 && n < len)
			early = n;
		if (used != 0)
			break;
	}
	tap_ok(early == 0 && used == len && rq.status == 200 && scan_ok,
	    "httpreq: byte by byte, complete only at its last byte (got used %zu at %zu of "
	    "%zu bytes, status %d; want %zu at %zu, 200)", used, n, len, rq.status, len, len);
}

/* The size limit: a head that fills HTTPREQ_MAX_HEAD fits; one byte short of its end does not. */
static void
test_parse_limit(void)
{
	static const char	 line[] = "GET " PATH " HTTP/1.1\r\nX-Pad: ";
	struct parse_case	 want;
	char			*in;
	size_t			 pad;

	in = xmalloc(HTTPREQ_MAX_HEAD);
	pad = HTTPREQ_MAX_HEAD - (sizeof line - 1) - 4;
	memcpy(in, line, sizeof line - 1);
	memset(in + sizeof line - 1, 'a', pad);
	memcpy(in + HTTPREQ_MAX_HEAD - 4, "\r\n\r\n", 4);

	memset(&want, 0, sizeof want);
	want.status = 200;
	want.used = -1;
	check_parse("a head of exactly HTTPREQ_MAX_HEAD bytes is answered", in,
	    HTTPREQ_MAX_HEAD, &want);

	in[HTTPREQ_MAX_HEAD - 1] = 'a';
	in[HTTPREQ_MAX_HEAD - 2] = 'a';
	want.used = 0;
	check_parse("HTTPREQ_MAX_HEAD - 1 bytes without an end: still incomplete", in,
	    HTTPREQ_MAX_HEAD - 1, &want);
	want.status = 431;
	want.close = 1;
	want.used = -1;
	check_parse("HTTPREQ_MAX_HEAD bytes without an end: 431, all used", in,
	    HTTPREQ_MAX_HEAD, &want);
	free(in);
}

static void
test_parse(void)
{
	static const char	 nul[] = "G\0T " PATH " HTTP/1.1\r\n\r\n";
	struct parse_case	 want;
	size_t			 i;

	for (i = 0; i < nitems(parse_cases); i++) {
		check_parse(parse_cases[i].name, parse_cases[i].in, strlen(parse_cases[i].in),
		    &parse_cases[i]);
	}
	memset(&want, 0, sizeof want);
	want.status = 400;
	want.close = 1;
	want.used = -1;
	check_parse("a NUL in the method: 400 unread", nul, sizeof nul - 1, &want);
	test_parse_bytewise();
	test_parse_limit();
}

/* A health server in a forked child, under a limit set there first. */
struct child {
	pid_t	pid;
	int	ready[2];
	int	done[2];
};

/*
 * Fork; in the child apply limit (1: set, 0: this build cannot) and start a
 * server: its port, -2 when the limit could not be set, -1 on failure.
 */
static int
child_start(struct child *ch, int (*limit)(void))
{
	struct health_server	*srv = NULL;
	int			 port = -1, set;
	char			 c;

	ch->pid = -1;
	if (pipe(ch->ready) != 0 || pipe(ch->done) != 0)
		return -1;
	fflush(stdout);
	if ((ch->pid = fork()) == 0) {
		close(ch->ready[0]);
		close(ch->done[1]);
		set = limit();
		if (health_start("127.0.0.1:0", PATH, NULL, &srv, NULL) == 0)
			port = set ? health_port(srv) : -2;
		if (write(ch->ready[1], &port, sizeof port) != sizeof port)
			_exit(2);
		if (read(ch->done[0], &c, 1) != 1)
			_exit(3);
		health_stop(srv);
		exit(0);
	}
	close(ch->ready[1]);
	close(ch->done[0]);
	if (read(ch->ready[0], &port, sizeof port) != sizeof port)
		port = -1;
	return port;
}

static void
child_end(struct child *ch)
{
	char	c = 'x';
	int	wst;

	if (ch->pid == -1)
		return;
	if (write(ch->done[1], &c, 1) != 1)
		tap_diag("cannot tell the child to stop");
	close(ch->ready[0]);
	close(ch->done[1]);
	tap_int(waitpid(ch->pid, &wst, 0) == ch->pid && WIFEXITED(wst) ? WEXITSTATUS(wst) : -1, 0,
	    "the child stopped its server cleanly (no leaks under ASan)");
}

/* Valgrind keeps the hard limit: then the table does not fill. */
static int
few_descriptors(void)
{
	struct rlimit	rl = { 256, 256 };

	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* An AddressSanitizer build sets no cap. */
static int
memory_cap(void)
{
	char	*cause = NULL;
	int	 set = mem_limit(32LL << 20, &cause) == 0 && mem_limit_now() > 0;

	free(cause);
	return set;
}

/* In a child with few descriptors: a full table evicts the oldest client; a probe still gets in. */
static void
test_eviction(void)
{
	struct child	 ch;
	struct client	 cl;
	struct resp	 r;
	int		 fds[300], port, status = 0;
	int		 i, first_closed, last_open, nclosed, kept;
	double		 ms;

	if ((port = child_start(&ch, few_descriptors)) == -1) {
		tap_ok(0, "the child's server started");
		goto out;
	}
	if (port == -2) {
		tap_skip("cannot lower RLIMIT_NOFILE here", "a full table evicts");
		goto out;
	}
	/* A client that finished a request is kept over 300 that never send one. */
	kept = client_open(&cl, port) == 0 && client_send(&cl, GET) == 0 &&
	    read_response(&cl, 0, &r, 3) == 0;
	tap_true(kept, "a client finished a request before the flood");
	for (i = 0; i < (int)nitems(fds); i++)
		fds[i] = dial(port);
	usleep(100 * 1000);
	ms = probe_ms(port, &status);
	tap_true(ms >= 0, "a full table (128 slots, 300 idle clients) still answers a new probe "
	    "(%.2f ms)", ms);
	tap_int(status, 503, "... with its 503");
	first_closed = fds[0] != -1 && peer_closed(fds[0], 1);
	last_open = fds[nitems(fds) - 1] != -1 && !peer_closed(fds[nitems(fds) - 1], 0);
	nclosed = 0;
	for (i = 0; i < (int)nitems(fds); i++) {
		if (fds[i] != -1) {
			nclosed += peer_closed(fds[i], 0);
			close(fds[i]);
		}
	}
	tap_true(first_closed, "the oldest idle client was evicted (%d of %zu closed)", nclosed,
	    nitems(fds));
	tap_true(last_open, "the newest idle client was kept");
	tap_int(kept && client_send(&cl, GET) == 0 ? next_status(&cl, 0, &r) : -1, 503,
	    "the kept-alive client was spared");
	client_close(&cl);
out:
	child_end(&ch);
}

/*
 * In a child under a 32 MiB memory cap: clients holding half-sent 8 KiB
 * heads are bounded by memory, not descriptors (4096 of them were 32 MiB,
 * and a failed allocation on the health thread aborted the agent).
 */
static void
test_memory_cap(void)
{
	struct child	 ch;
	int		 fds[300], port, status = 0;
	char		 head[8000];
	int		 i, first_closed, last_open;
	double		 ms;

	memset(head, 'a', sizeof head);
	memcpy(head, "GET / HTTP/1.1\r\nX: ", 18);
	if ((port = child_start(&ch, memory_cap)) == -1) {
		tap_ok(0, "the child's server started under the cap");
		goto out;
	}
	if (port == -2) {
		tap_skip("no memory cap in this build", "clients bounded by memory");
		goto out;
	}
	for (i = 0; i < (int)nitems(fds); i++) {
		if ((fds[i] = dial(port)) != -1 && write(fds[i], head, sizeof head) < 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	usleep(200 * 1000);
	ms = probe_ms(port, &status);
	tap_true(ms >= 0, "300 clients with half-sent heads: a probe is still answered "
	    "(%.2f ms)", ms);
	first_closed = fds[0] != -1 && peer_closed(fds[0], 1);
	last_open = fds[nitems(fds) - 1] != -1 && !peer_closed(fds[nitems(fds) - 1], 0);
	for (i = 0; i < (int)nitems(fds); i++) {
		if (fds[i] != -1)
			close(fds[i]);
	}
	tap_true(first_closed, "at 32 MiB at most 128 are held: the oldest was evicted");
	tap_true(last_open, "the newest was kept");
out:
	child_end(&ch);
}

static void
test_addresses(void)
{
	static const char	*bad[] = {
		"", "8081", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80a",
		"127.0.0.1:-1", "::1:8081", "[::1]8081", "[::1", "[127.0.0.1]:80",
		"300.1.1.1:80", "localhost:8081", "10.0.0.1 :80", "127.0.0.1:123456",
	};
	struct health_server	*srv;
	struct resp		 r;
	char			*cause, addr[64];
	size_t			 i;
	int			 all = 1, fd, rc, lfd, busy_port;

	for (i = 0; i < nitems(bad); i++) {
		cause = NULL;
		srv = (struct health_server *)&all;
		if (health_start(bad[i], PATH, NULL, &srv, &cause) == 0 || srv != NULL ||
		    cause == NULL || *cause == '\0') {
			tap_diag("'%s' was accepted (%s)", bad[i], cause ? cause : "no cause");
			all = 0;
			if (srv != (struct health_server *)&all)
				health_stop(srv);
		}
		if (i == 1)
			tap_diag("e.g. '%s': %s", bad[i], cause ? cause : "(none)");
		free(cause);
	}
	tap_true(all, "%zu bad listen addresses fail with a cause", nitems(bad));

	cause = NULL;
	srv = NULL;
	tap_int(health_start("127.0.0.1:8081", "healthz", NULL, &srv, &cause), -1,
	    "a path without '/' fails");
	tap_null(srv, "a path without '/': no endpoint");
	tap_true(cause != NULL, "a path without '/': a cause (%s)", cause ? cause : "none");
	free(cause);

	/* A port some other listener holds. */
	lfd = listen_any(&busy_port);
	cause = NULL;
	snprintf(addr, sizeof addr, "127.0.0.1:%d", busy_port);
	rc = health_start(addr, PATH, NULL, &srv, &cause);
	tap_int(rc, -1, "a port in use fails (%s)", cause ? cause : "no cause");
	tap_null(srv, "a port in use: no endpoint");
	tap_has(cause, strerror(EADDRINUSE), "a port in use: the cause names the error");
	tap_has(cause, addr, "a port in use: the cause names the address");
	free(cause);
	if (lfd != -1)
		close(lfd);

	cause = NULL;
	if (health_start(":0", PATH, NULL, &srv, &cause) == 0) {
		tap_int(status_of(health_port(srv), GET, 0, &r), 503,
		    "':port' listens on every address (answered on 127.0.0.1:%d)",
		    health_port(srv));
		health_stop(srv);
	} else
		tap_ok(0, "':0' starts: %s", cause);
	free(cause);

	cause = NULL;
	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1) {
		tap_skip("no IPv6", "'[::1]:0' listens on ::1");
		return;
	}
	close(fd);
	if (health_start("[::1]:0", PATH, NULL, &srv, &cause) == 0) {
		tap_true((fd = dial_family(AF_INET6, health_port(srv))) != -1,
		    "'[::1]:0' listens on ::1");
		if (fd != -1)
			close(fd);
		health_stop(srv);
	} else
		tap_skip(cause, "'[::1]:0' listens on ::1");
	free(cause);
}

/* appprobe_healthy against a tiny app, a closed port and an endpoint of our own. */
static void
test_probe(void)
{
	struct health_server	*own = NULL;
	pthread_t		 t;
	char			*cause = NULL, url[128];
	int			 lfd, tport, closed_port, fd, rc, port;

	if (health_start("127.0.0.1:0", PATH, NULL, &own, &cause) != 0) {
		tap_ok(0, "a second endpoint starts: %s", cause);
		free(cause);
		return;
	}
	health_set(own, 0, "probing");
	port = health_port(own);
	if (http_init(&cause) != 0) {
		tap_ok(0, "http_init: %s", cause);
		goto out;
	}
	if ((lfd = listen_any(&tport)) == -1 || pthread_create(&t, NULL, tiny_server, &lfd) != 0) {
		tap_ok(0, "the tiny server starts");
		goto out;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d/health", tport);
	tap_int(appprobe_healthy(url, 2, &cause), 1, "200 is healthy");
	tap_null(cause, "200 has no cause");
	rc = appprobe_healthy(url, 2, &cause);
	tap_int(rc, 0, "500 is not healthy (%s)", cause ? cause : "none");
	tap_true(cause != NULL && strncmp(cause, "HTTP 500", 8) == 0,
	    "500 with a cause that says HTTP 500");
	free(cause);
	cause = NULL;
	pthread_join(t, NULL);
	close(lfd);

	fd = listen_any(&closed_port);
	if (fd != -1)
		close(fd);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/health", closed_port);
	rc = appprobe_healthy(url, 2, &cause);
	tap_int(rc, 0, "a closed port is not healthy (%s)", cause ? cause : "none");
	tap_true(cause != NULL && *cause != '\0', "a closed port, with a cause");
	free(cause);
	cause = NULL;

	/* Our own endpoint, through the agent's HTTP client. */
	snprintf(url, sizeof url, "http://127.0.0.1:%d" PATH, port);
	rc = appprobe_healthy(url, 2, &cause);
	tap_int(rc, 0, "our own 503 is not healthy");
	tap_str(cause, "HTTP 503: probing", "our own 503 gives its reason");
	http_cleanup();
out:
	free(cause);
	health_stop(own);
}

/* Sanity before anything: NULL is a stopped endpoint. */
static void
test_null(void)
{
	health_set(NULL, 1, "x");
	health_stop(NULL);
	tap_int(health_get(NULL), 0, "a NULL endpoint is not healthy");
	tap_int(health_port(NULL), -1, "a NULL endpoint has no port");
	tap_size(health_requests(NULL), 0, "a NULL endpoint has no requests");
}

static void
test_start(void)
{
	char	*cause = NULL;
	int	 rc;

	rc = health_start("127.0.0.1:0", PATH, "/metrics", &server, &cause);
	tap_int(rc, 0, "health_start on 127.0.0.1:0: %s", cause ? cause : "ok");
	tap_true(server != NULL, "health_start returns the endpoint");
	free(cause);
	if (rc != 0 || server == NULL)
		return;
	server_port = health_port(server);
	tap_true(server_port > 0, "bound port %d", server_port);

	/* The slowloris runs in the background while everything else happens. */
	memset(&slow, 0, sizeof slow);
	slow.port = server_port;
	pthread_create(&slow_t, NULL, slowloris, &slow);
}

/* What health_set says is what a probe gets, at once. */
static void
test_answers(void)
{
	struct resp	r;
	char		longreason[1000];
	int		port = server_port;

	tap_int(status_of(port, GET, 0, &r), 503, "first probe: 503");
	tap_str(r.body, "starting\n", "first probe: the default reason");
	tap_int(health_get(server), 0, "first probe: health_get says unhealthy");
	tap_mem(r.head, 34, "HTTP/1.1 503 Service Unavailable\r\n", 34, "503 status line");
	check_header(&r, "Content-Type: text/plain", "503 headers");
	check_header(&r, "Content-Length: 9", "503 headers");
	check_header(&r, "Cache-Control: no-store", "503 headers");
	tap_true(strcasestr(r.head, "\r\nDate: ") != NULL, "503 headers: Date");

	health_set(server, 1, NULL);
	tap_int(status_of(port, GET, 0, &r), 200, "health_set(1): 200 at once");
	tap_str(r.body, "ok\n", "health_set(1): ok");
	tap_mem(r.head, 17, "HTTP/1.1 200 OK\r\n", 17, "health_set(1): the status line");
	check_header(&r, "Content-Length: 3", "health_set(1)");
	tap_int(health_get(server), 1, "health_set(1): health_get says healthy");

	health_set(server, 0, "draining");
	tap_int(status_of(port, GET, 0, &r), 503, "health_set(0, draining): 503 at once");
	tap_str(r.body, "draining\n", "health_set(0, draining): with the reason");
	tap_int(health_get(server), 0, "health_set(0, draining): health_get says unhealthy");

	health_set(server, 0, "two\r\nlines");
	tap_int(status_of(port, GET, 0, &r), 503, "a reason with control bytes: 503");
	tap_str(r.body, "two  lines\n", "control bytes in the reason become spaces");
	memset(longreason, 'x', sizeof longreason - 1);
	longreason[sizeof longreason - 1] = '\0';
	health_set(server, 0, longreason);
	tap_int(status_of(port, GET, 0, &r), 503, "a long reason: 503");
	tap_size(strlen(r.body), 256, "a long reason is cut to 255 bytes");
	check_header(&r, "Content-Length: 256", "a long reason");
	health_set(server, 0, NULL);
	tap_int(status_of(port, GET, 0, &r), 503, "no reason: 503");
	tap_str(r.body, "unavailable\n", "no reason: unavailable");
	health_set(server, 1, "ignored");
}

/* A GET of PATH as a load balancer sends it. */
#define ELB_GET	"GET " PATH " HTTP/1.1\r\nHost: test\r\nUser-Agent: ELB-HealthChecker/2.0\r\n" \
		"Connection: close\r\n\r\n"

static void
check_lb(unsigned long checks, int first, int healthy, const char *what)
{
	struct health_lb	lb;

	health_lb(server, &lb);
	tap_ok(lb.checks == checks && (lb.first > 0) == first && (lb.healthy > 0) == healthy,
	    "load balancer: %s (got checks %lu, first %s, healthy %s; want %lu, %s, %s)",
	    what, lb.checks, lb.first > 0 ? "set" : "unset", lb.healthy > 0 ? "set" : "unset",
	    checks, first ? "set" : "unset", healthy ? "set" : "unset");
}

/* Load-balancer checks: counted once serving, in a row per node, a 503 breaks the run. */
static void
test_lb(void)
{
	struct resp		r;
	struct health_lb	lb;
	int			i;

	health_lb_threshold(server, 3);
	health_set(server, 0, "booting");
	tap_int(status_of(server_port, ELB_GET, 0, &r), 503, "an ELB check while booting: 503");
	check_lb(0, 0, 0, "a check answered 503 does not count");
	health_set(server, 1, NULL);
	for (i = 0; i < 2; i++)
		tap_int(status_of(server_port, ELB_GET, 0, &r), 200, "ELB check %d: 200", i + 1);
	tap_int(status_of(server_port, GET, 0, &r), 200, "a probe that is not the LB's: 200");
	check_lb(2, 1, 0, "two checks in a row, and another client's probe not counted");
	health_set(server, 0, "blip");
	health_set(server, 1, NULL);
	for (i = 0; i < 2; i++)
		status_of(server_port, ELB_GET, 0, &r);
	check_lb(4, 1, 0, "a 503 in between starts the run again");
	tap_int(status_of(server_port, ELB_GET, 0, &r), 200, "the third check in a row: 200");
	check_lb(5, 1, 1, "three in a row: healthy as seen from here");
	health_lb(server, &lb);
	tap_ok(lb.first <= lb.healthy && lb.interval >= 0 && lb.interval < 5,
	    "first %.3f <= healthy %.3f, interval %.3f s between one node's checks",
	    lb.first, lb.healthy, lb.interval);
}

/* The metrics page: what the main thread last rendered, with Prometheus's content type. */
static void
test_metrics(void)
{
	struct resp	r;

	tap_int(status_of(server_port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 0, &r), 200,
	    "GET /metrics before a page is set: 200");
	tap_str(r.body, "", "an empty page before the first one is set");
	health_set_metrics(server, "asg_agent_up 1\n");
	health_set(server, 0, "draining");
	tap_int(status_of(server_port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 0, &r), 200,
	    "GET /metrics while the endpoint says 503: still 200");
	tap_str(r.body, "asg_agent_up 1\n", "the page as set, no newline added");
	check_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8", "metrics");
	tap_int(status_of(server_port, "GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", 0, &r),
	    200, "a query string does not change the path");
	health_set(server, 1, NULL);
}

/* HEAD: the same headers, no body; the connection stays usable. */
static void
test_head(void)
{
	struct client	cl;
	struct resp	r;
	char		c;

	client_open(&cl, server_port);
	client_send(&cl, "HEAD " PATH " HTTP/1.1\r\nHost: test\r\n\r\n");
	tap_int(next_status(&cl, 1, &r), 200, "a HEAD request: 200");
	check_header(&r, "Content-Length: 3", "the head");
	usleep(50 * 1000);
	tap_size(cl.len, 0, "no body came with the head");
	tap_int(recv(cl.fd, &c, 1, MSG_DONTWAIT), -1, "and none after it");
	client_send(&cl, GET);
	tap_int(next_status(&cl, 0, &r), 200, "the next request on the connection: 200");
	tap_str(r.body, "ok\n", "the next request on the connection is framed right");
	client_close(&cl);
}

static void
test_bad_requests(void)
{
	struct client	cl;
	struct resp	r;
	int		port = server_port;

	tap_int(status_of(port, "GET /other HTTP/1.1\r\nHost: test\r\n\r\n", 0, &r), 404,
	    "404 for another path");
	tap_int(status_of(port, "GET /healthz/ HTTP/1.1\r\n\r\n", 0, &r), 404,
	    "404 for a near miss: /healthz/");
	tap_int(status_of(port, "GET /healthzz HTTP/1.1\r\n\r\n", 0, &r), 404,
	    "404 for a near miss: /healthzz");
	tap_int(status_of(port, "HEAD /other HTTP/1.1\r\n\r\n", 1, &r), 404, "404 for HEAD");
	tap_int(status_of(port, "POST " PATH " HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n"
	    "\r\n", 0, &r), 405, "405 for POST");
	check_header(&r, "Allow: GET, HEAD", "405");

	client_open(&cl, port);
	send_all(cl.fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
	tap_int(next_status(&cl, 0, &r), 400, "400 for non-HTTP bytes (a TLS hello)");
	check_header(&r, "Connection: close", "400 for a TLS hello");
	tap_true(peer_closed(cl.fd, 2), "400 for a TLS hello: and close");
	client_close(&cl);
	tap_int(status_of(port, "hello\r\n\r\n", 0, &r), 400, "400 for a bad request line");
	tap_int(status_of(port, "GET " PATH "\r\n\r\n", 0, &r), 400,
	    "400 for a request line without a version");
	tap_int(status_of(port, "GET " PATH " HTTP/1.1\r\nNo colon\r\n\r\n", 0, &r), 400,
	    "400 for a bad header");
	tap_int(status_of(port, "GET " PATH " HTTP/2.0\r\n\r\n", 0, &r), 505,
	    "505 for HTTP/2.0 in a request line");

	tap_int(status_of(port, "GET " PATH "?from=elb&x=1 HTTP/1.1\r\nHost: t\r\n\r\n", 0, &r),
	    200, "a query string is ignored");
	tap_int(status_of(port, "GET http://10.0.0.1:8081" PATH " HTTP/1.1\r\n\r\n", 0, &r), 200,
	    "an absolute-form target is accepted");
	tap_int(status_of(port, "\r\n" GET, 0, &r), 200,
	    "a blank line before the request is skipped");
}

/* Keep-alive, pipelining, requests in pieces, and when a connection closes. */
static void
test_connections(void)
{
	struct client	 cl;
	struct resp	 r;
	unsigned long	 n0;
	int		 port = server_port;

	n0 = health_requests(server);
	client_open(&cl, port);
	client_send(&cl, GET);
	tap_int(next_status(&cl, 0, &r), 200, "keep-alive: the first request");
	tap_true(!has_header(&r, "Connection: close"), "keep-alive: the connection is kept");
	client_send(&cl, GET);
	tap_int(next_status(&cl, 0, &r), 200, "keep-alive: a second request on one connection");
	tap_size(health_requests(server), n0 + 2, "the request counter counts them");

	/* Pipelining: three requests in one write, answered in order. */
	client_send(&cl, GET "HEAD " PATH " HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "pipelining: the GET answered first");
	tap_str(r.body, "ok\n", "pipelining: the GET's body");
	tap_int(next_status(&cl, 1, &r), 200, "pipelining: the HEAD answered second");
	tap_int(next_status(&cl, 0, &r), 404, "pipelining: the 404 answered third");
	tap_size(cl.len, 0, "pipelining: nothing more");

	/* A request in pieces. */
	client_send(&cl, "GET " PATH);
	usleep(20 * 1000);
	client_send(&cl, " HTTP/1.1\r\nHost: te");
	usleep(20 * 1000);
	client_send(&cl, "st\r\n\r");
	usleep(20 * 1000);
	client_send(&cl, "\n");
	tap_int(next_status(&cl, 0, &r), 200, "a request arriving in pieces is answered");

	client_send(&cl, "GET " PATH " HTTP/1.1\r\nConnection: close\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "Connection: close is answered");
	check_header(&r, "Connection: close", "a Connection: close request");
	tap_true(peer_closed(cl.fd, 2), "Connection: close is honoured");
	client_close(&cl);

	client_open(&cl, port);
	client_send(&cl, "GET " PATH " HTTP/1.0\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "HTTP/1.0 is answered");
	check_header(&r, "Connection: close", "HTTP/1.0");
	tap_true(peer_closed(cl.fd, 2), "HTTP/1.0 closes by default");
	client_close(&cl);
	client_open(&cl, port);
	client_send(&cl, "GET " PATH " HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "HTTP/1.0 keep-alive is answered");
	check_header(&r, "Connection: keep-alive", "HTTP/1.0 keep-alive");
	client_send(&cl, "GET " PATH " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "HTTP/1.0 keep-alive is honoured");
	client_close(&cl);
	client_open(&cl, port);
	client_send(&cl, "GET " PATH " HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
	tap_int(next_status(&cl, 0, &r), 200, "a request with a body is answered");
	check_header(&r, "Connection: close", "a request with a body");
	tap_true(peer_closed(cl.fd, 2), "a request with a body: then closed");
	client_close(&cl);
}

/*
 * A child forked while a connection is open (the agent runs systemctl) holds
 * its socket until it execs: epoll watches the socket, so the endpoint must
 * stop watching a connection it closes, or the next wait hands back the freed
 * connection (a double free).
 */
static void
test_fork(void)
{
	struct client	cl;
	struct resp	r;
	pid_t		pid;
	int		hold[2], status, i, ok;
	char		c;

	client_open(&cl, server_port);
	client_send(&cl, GET);
	tap_int(next_status(&cl, 0, &r), 200, "a kept-alive connection is answered");
	if (pipe(hold) == -1 || (pid = fork()) == -1) {
		tap_ok(0, "pipe or fork: %s", strerror(errno));
		client_close(&cl);
		return;
	}
	if (pid == 0) {
		/* The copies of every descriptor stay open until the parent lets go. */
		close(hold[1]);
		while (read(hold[0], &c, 1) == -1 && errno == EINTR)
			;
		_exit(0);
	}
	close(hold[0]);
	client_send(&cl, "GET " PATH " HTTP/1.1\r\nConnection: close\r\n\r\n");
	tap_int(next_status(&cl, 0, &r), 200, "Connection: close is answered");
	tap_true(peer_closed(cl.fd, 2), "the server shuts its side");
	/* Our FIN lets the server close the socket the child still holds: EOF stays readable. */
	shutdown(cl.fd, SHUT_WR);
	usleep(50 * 1000);
	for (i = ok = 0; i < 20; i++)
		ok += status_of(server_port, GET, 0, &r) == 200;
	tap_int(ok, 20, "probes after closing a connection a child shares are answered");
	close(hold[1]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	client_close(&cl);
}

/* 10 MB of header from one client while another probes. */
static void
test_oversize(void)
{
	struct big	big;
	pthread_t	big_t;
	size_t		heap0, heap_peak, h;
	long		hwm0;
	double		ms[50];
	int		answered, ok, status;

	memset(&big, 0, sizeof big);
	big.port = server_port;
	heap0 = heap_peak = heap_bytes();
	hwm0 = status_kb("VmHWM:");
	pthread_create(&big_t, NULL, oversize, &big);
	answered = 0;
	ok = 1;
	while (!__atomic_load_n(&big.done, __ATOMIC_SEQ_CST)) {
		if ((h = heap_bytes()) > heap_peak)
			heap_peak = h;
		if (answered < (int)nitems(ms)) {
			ms[answered] = probe_ms(server_port, &status);
			if (ms[answered] < 0 || status != 200)
				ok = 0;
			answered++;
		} else
			usleep(1000);
	}
	pthread_join(big_t, NULL);
	tap_int(big.status, 431, "a 10 MB request: 431 (%zu bytes sent)", big.sent);
	tap_true(big.closed, "a 10 MB request: closed");
	tap_true(ok && answered > 0, "probes meanwhile are answered 200 (%d)", answered);
	/*
	 * A server blocked on the big request would make every probe wait for it; a
	 * loaded machine delays a few by a time slice: bound the median, not the worst.
	 */
	if (answered > 0) {
		qsort(ms, (size_t)answered, sizeof ms[0], cmp_double);
		tap_true(ms[answered / 2] < (slow_mode ? 100 : 10), "probes meanwhile are "
		    "answered fast (median %.3f ms, worst %.3f ms of %d)", ms[answered / 2],
		    ms[answered - 1], answered);
	} else
		tap_true(0, "probes meanwhile are answered fast (none answered)");
	tap_true(heap_peak - heap0 < (1 << 20), "the heap did not grow with it (peak +%zu bytes)",
	    heap_peak - heap0);
	tap_diag("peak RSS grew by %ld kB", status_kb("VmHWM:") - hwm0);
}

/* Many pipelined requests from a client that sends them all before reading. */
static void
test_flood(void)
{
	struct client	cl;
	struct resp	r;
	struct pipeline	pl;
	pthread_t	pl_t;
	int		i;

	client_open(&cl, server_port);
	pl.fd = cl.fd;
	pl.n = NPIPELINE;
	pl.ok = 0;
	pthread_create(&pl_t, NULL, pipeline_send, &pl);
	for (i = 0; i < NPIPELINE; i++) {
		if (read_response(&cl, 0, &r, 5) != 0 || r.status != 200)
			break;
	}
	pthread_join(pl_t, NULL);
	tap_true(pl.ok, "%d pipelined requests sent", NPIPELINE);
	tap_int(i, NPIPELINE, "%d pipelined requests, all answered in order", NPIPELINE);
	client_close(&cl);
}

static void
test_slowloris(void)
{
	pthread_join(slow_t, NULL);
	tap_true(!slow.answered, "slowloris got no answer");
	tap_true(slow.closed_after >= 4.5 && slow.closed_after < 7,
	    "slowloris dropped after the request timeout (%.2f s)", slow.closed_after);
}

/* A thousand idle clients, then fresh probes. */
static void
test_idle(void)
{
	struct client	cl2;
	struct resp	r;
	double		lat[21];
	int		i, ok, status, closed;

	nidle = 0;
	for (i = 0; i < NIDLE; i++) {
		if ((idle[i] = dial(server_port)) != -1)
			nidle++;
	}
	tap_int(nidle, NIDLE, "idle connections open");
	usleep(100 * 1000);
	ok = 1;
	for (i = 0; i < (int)nitems(lat); i++) {
		lat[i] = probe_ms(server_port, &status);
		if (lat[i] < 0 || status != 200)
			ok = 0;
	}
	qsort(lat, nitems(lat), sizeof lat[0], cmp_double);
	tap_diag("probe latency with %d idle connections: min %.3f ms, median %.3f ms, "
	    "max %.3f ms", nidle, lat[0], lat[nitems(lat) / 2], lat[nitems(lat) - 1]);
	tap_true(ok, "fresh probes beside %d idle connections are answered 200", nidle);
	/*
	 * A server stuck on an idle client waits for its request timeout (5 s): the
	 * median within 10 ms and none near that; a loaded machine delays a few by a
	 * time slice.
	 */
	tap_true(lat[nitems(lat) / 2] < (slow_mode ? 100 : 10) && lat[nitems(lat) - 1] < 1000,
	    "fresh probes answered within 10 ms (median %.3f ms, worst %.3f ms) beside %d "
	    "idle connections", lat[nitems(lat) / 2], lat[nitems(lat) - 1], nidle);
	closed = 0;
	for (i = 0; i < NIDLE; i++) {
		if (idle[i] != -1 && peer_closed(idle[i], 0))
			closed++;
	}
	tap_int(closed, 0, "no idle connection was dropped");
	memset(&cl2, 0, sizeof cl2);
	cl2.fd = idle[0];
	client_send(&cl2, GET);
	tap_int(next_status(&cl2, 0, &r), 200, "the oldest idle connection still answers");
}

/* Stop with a thousand connections and a half-sent request open. */
static void
test_stop(void)
{
	struct client	cl;
	double		t0, stop_ms;
	int		i, closed;

	client_open(&cl, server_port);
	client_send(&cl, "GET " PATH " HTTP/1.1\r\nHost:");
	usleep(20 * 1000);
	t0 = mono_now();
	health_stop(server);
	stop_ms = (mono_now() - t0) * 1000;
	tap_true(stop_ms < 500, "health_stop with %d connections open returns promptly "
	    "(%.2f ms)", nidle + 1, stop_ms);
	t0 = mono_now() + 2;
	closed = peer_closed(cl.fd, 1);
	for (i = 0; i < NIDLE; i++) {
		if (idle[i] != -1) {
			closed += peer_closed(idle[i], t0 - mono_now());
			close(idle[i]);
		}
	}
	tap_int(closed, nidle + 1, "every client saw its connection close");
	client_close(&cl);
}

int
main(void)
{
	const char	*preload;

	setvbuf(stdout, NULL, _IOLBF, 0);
	preload = getenv("LD_PRELOAD");
	slow_mode = preload != NULL && strstr(preload, "vgpreload") != NULL;
	if (slow_mode)
		tap_diag("under valgrind: latency bounds are 10x looser");

	tap_run("parser", test_parse);
	tap_run("parser flags", test_parse_flags);
	tap_run("eviction", test_eviction);
	tap_run("memory cap", test_memory_cap);
	tap_run("NULL endpoint", test_null);
	tap_run("start", test_start);
	if (server == NULL)
		return tap_done();
	tap_run("answers", test_answers);
	tap_run("load balancer checks", test_lb);
	tap_run("metrics page", test_metrics);
	tap_run("HEAD", test_head);
	tap_run("bad requests", test_bad_requests);
	tap_run("connections", test_connections);
	tap_run("fork", test_fork);
	tap_run("oversize request", test_oversize);
	tap_run("pipelined flood", test_flood);
	tap_run("slowloris", test_slowloris);
	tap_run("idle clients", test_idle);
	tap_run("stop", test_stop);
	tap_run("addresses", test_addresses);
	tap_run("probe", test_probe);
	return tap_done();
}
