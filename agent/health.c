/* health.c - the load balancer's health endpoint: listener, connection queues, its own thread. */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "httpreq.h"
#include "queue.h"
#include "util.h"

#define HEALTH_MAX_REASON	256	/* bytes of the 503 body kept */
#define HEALTH_MAX_CONNS	4096
#define HEALTH_OUT_HIGH		2048	/* answer no more pipelined requests above this */
#define HEALTH_CONN_COST	(16 * 1024)	/* a client's head, answers and bookkeeping, at most */
#define HEALTH_MEM_SHARE	16	/* the clients' part of the memory cap: 1/16 */
#define HEALTH_MIN_CONNS	64
#define HEALTH_IDLE_TIMEOUT	60	/* seconds between requests: well above a probe interval */
#define HEALTH_REQUEST_TIMEOUT	5	/* seconds for a request to arrive or its answer to leave */
#define HEALTH_LINGER_TIMEOUT	2	/* seconds to drain a client after the last answer */
#define HEALTH_BACKLOG		1024
#define HEALTH_NOFILE_WANT	8192
#define HEALTH_FD_RESERVE	128	/* descriptors left to the rest of the agent */
#define HEALTH_ACCEPT_BURST	64
#define HEALTH_ACCEPT_PAUSE	0.1	/* seconds, when out of descriptors with none to evict */
#define HEALTH_EVENTS		64
#define HEALTH_DRAIN_READS	16
#define HEALTH_DEFAULT_REASON	"starting"
#define HEALTH_UNSET_REASON	"unavailable"
#define HEALTH_LB_NODES		16	/* load-balancer nodes told apart by address */
#define HEALTH_METRICS_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/* Where a connection waits; each queue has one timeout, so it stays sorted by deadline. */
enum {
	Q_REQUEST,	/* a request awaited or arriving, or an answer leaving */
	Q_KEEPALIVE,	/* answered, idle until the next request */
	Q_LINGER,	/* answered and shut down: draining what the client still sends */
	Q_COUNT
};

static const double health_timeouts[Q_COUNT] = {
	HEALTH_REQUEST_TIMEOUT, HEALTH_IDLE_TIMEOUT, HEALTH_LINGER_TIMEOUT
};

/* One load-balancer node, as its checks reach us: each counts its checks in a row. */
struct lb_node {
	unsigned char		 addr[16];
	int			 used;
	int			 run;		/* 200s in a row */
	double			 last;		/* wall clock */
};

struct conn {
	int			 fd;
	unsigned char		 peer[16];	/* the client's address, as a key */
	int			 q;
	double			 deadline;
	uint32_t		 events;	/* epoll interest */
	char			*in;		/* unanswered bytes, NULL when none */
	size_t			 inlen;
	size_t			 scan;		/* in holds no end of headers before this */
	struct buf		 out;		/* answers not sent yet */
	size_t			 outoff;
	int			 eof;		/* the client will send no more */
	int			 closing;	/* close once out is sent */
	TAILQ_ENTRY(conn)	 entry;
};
TAILQ_HEAD(conn_queue, conn);

struct health_server {
	char			*addr;
	char			*path;
	char			*metrics_path;	/* NULL: no metrics page */
	int			 port;
	int			 lfd;
	int			 epfd;
	int			 wake[2];
	pthread_t		 thread;
	int			 running;

	/* Shared with the agent's main thread. */
	pthread_mutex_t		 lock;
	int			 ok;
	char			 reason[HEALTH_MAX_REASON];
	atomic_ulong		 requests;
	char			*metrics;	/* the page, rendered by the main thread */
	int			 lb_threshold;
	struct health_lb	 lb;
	struct lb_node		 nodes[HEALTH_LB_NODES];

	/* The network thread's own. */
	struct conn_queue	 queues[Q_COUNT];
	size_t			 nconns;
	size_t			 maxconns;
	int			 accept_paused;
	double			 accept_resume;
	time_t			 date_time;
	char			 date[64];
	char			 scratch[HTTPREQ_MAX_HEAD];
};

/* Copy a reason into a fixed buffer: control bytes become spaces, no UTF-8 sequence is cut. */
static void
copy_reason(char *dst, size_t size, const char *src)
{
	size_t		n, i;
	unsigned char	c;

	if (src == NULL || *src == '\0')
		src = HEALTH_UNSET_REASON;
	n = strlen(src);
	if (n > size - 1) {
		n = size - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[n] = '\0';
}

/*
 * At most conns clients, and no more than a share of the memory cap holds:
 * half-sent heads from a client on the network must not end the agent.
 */
static size_t
conns_for_memory(size_t conns)
{
	long long	cap = mem_limit_now();
	size_t		most;

	if (cap <= 0)
		return conns;
	most = (size_t)(cap / HEALTH_MEM_SHARE / HEALTH_CONN_COST);
	if (most < HEALTH_MIN_CONNS)
		most = HEALTH_MIN_CONNS;
	return conns < most ? conns : most;
}

/* Parse "ip:port", "[ipv6]:port" or ":port"; numeric only, so no DNS lookup happens at boot. */
static int	parse_listen(const char *, struct sockaddr_storage *, socklen_t *, int *,
		    char **);

int
health_listen_check(const char *addr, char **cause)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen;
	int			any;

	return parse_listen(addr, &ss, &sslen, &any, cause);
}


static int
parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen, int *any,
    char **cause)
{
	struct addrinfo	 hints, *ai = NULL;
	const char	*colon, *p;
	char		*host = NULL;
	unsigned long	 port = 0;
	int		 v6 = 0, rc, ret = -1;

	*any = 0;
	if (addr[0] == '[') {
		if ((p = strchr(addr, ']')) == NULL || p[1] != ':') {
			set_cause(cause, "health endpoint %s: expected [address]:port", addr);
			goto out;
		}
		host = xstrndup(addr + 1, (size_t)(p - addr - 1));
		colon = p + 1;
		v6 = 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL) {
			set_cause(cause, "health endpoint %s: expected address:port, like "
			    "0.0.0.0:8081 or [::]:8081", addr);
			goto out;
		}
		host = xstrndup(addr, (size_t)(colon - addr));
		if (strchr(host, ':') != NULL) {
			set_cause(cause, "health endpoint %s: put an IPv6 address in "
			    "brackets, like [::1]:8081", addr);
			goto out;
		}
	}
	if (colon[1] == '\0' || strlen(colon + 1) > 5) {
		set_cause(cause, "health endpoint %s: bad port", addr);
		goto out;
	}
	for (p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			set_cause(cause, "health endpoint %s: bad port", addr);
			goto out;
		}
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535) {
		set_cause(cause, "health endpoint %s: bad port", addr);
		goto out;
	}
	memset(ss, 0, sizeof *ss);
	if (!v6 && (*host == '\0' || strcmp(host, "*") == 0)) {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof *sin6;
		*any = 1;
		ret = 0;
		goto out;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = v6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0 || ai == NULL ||
	    ai->ai_addrlen > sizeof *ss) {
		set_cause(cause, "health endpoint %s: %s is not a numeric IPv%d address",
		    addr, host, v6 ? 6 : 4);
		goto out;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	ret = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	free(host);
	return ret;
}

/* Every client costs a descriptor: lift a low soft limit so a thousand idle ones fit. */
static size_t
raise_nofile(void)
{
	long long	cur = nofile_raise(HEALTH_NOFILE_WANT);

	if (cur == -1 || cur >= HEALTH_MAX_CONNS + HEALTH_FD_RESERVE)
		return HEALTH_MAX_CONNS;
	if (cur > 2 * HEALTH_FD_RESERVE)
		return (size_t)cur - HEALTH_FD_RESERVE;
	return cur > 2 ? (size_t)cur / 2 : 1;
}

static int
open_listener(struct health_server *srv, const struct sockaddr_storage *ss, socklen_t sslen,
    int any, char **cause)
{
	struct sockaddr_storage	 bound;
	socklen_t		 blen = sizeof bound;
	int			 fd, on = 1, off = 0;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return set_cause(cause, "health endpoint %s: %s", srv->addr, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
		goto fail;
	if (any && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, sslen) != 0)
		goto fail;
	if (listen(fd, HEALTH_BACKLOG) != 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0)
		goto fail;
	if (bound.ss_family == AF_INET6)
		srv->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	else
		srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	srv->lfd = fd;
	return 0;
fail:
	set_cause(cause, "health endpoint %s: %s", srv->addr, strerror(errno));
	close(fd);
	return -1;
}

/* The Date header, formatted once a second and without the locale. */
static const char *
health_date(struct health_server *srv)
{
	static const char	*days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char	*months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm		 tm;
	time_t			 now;

	now = time(NULL);
	if (now != srv->date_time && gmtime_r(&now, &tm) != NULL) {
		snprintf(srv->date, sizeof srv->date, "%s, %02d %s %d %02d:%02d:%02d GMT",
		    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		srv->date_time = now;
	}
	return srv->date;
}

/* The address of a peer as a 16-byte key (IPv4 as IPv4-mapped IPv6). */
static void
peer_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
}

/*
 * A load-balancer check answered (srv->lock held): each node counts the
 * checks in a row we pass, and the first to reach the threshold counts us
 * healthy. Only checks after serving began count.
 */
static void
lb_note(struct health_server *srv, const unsigned char peer[16], int ok)
{
	struct lb_node	*n = NULL;
	double		 now = wall_now();
	int		 i;

	for (i = 0; i < HEALTH_LB_NODES; i++) {
		if (srv->nodes[i].used && memcmp(srv->nodes[i].addr, peer, 16) == 0) {
			n = &srv->nodes[i];
			break;
		}
		if (!srv->nodes[i].used && n == NULL)
			n = &srv->nodes[i];
	}
	if (n == NULL)
		n = &srv->nodes[0];	/* more nodes than slots: share one */
	if (!n->used || memcmp(n->addr, peer, 16) != 0) {
		memset(n, 0, sizeof *n);
		memcpy(n->addr, peer, 16);
		n->used = 1;
	}
	if (n->last > 0)
		srv->lb.interval = now - n->last;
	n->last = now;
	if (!ok) {
		n->run = 0;
		return;
	}
	srv->lb.checks++;
	if (srv->lb.first == 0)
		srv->lb.first = now;
	if (++n->run >= srv->lb_threshold && srv->lb.healthy == 0)
		srv->lb.healthy = now;
}

/* Queue the answer to one request. */
static void
conn_answer(struct health_server *srv, struct conn *c, const struct httpreq *rq)
{
	char		 reason[HEALTH_MAX_REASON], *page = NULL;
	const char	*text, *body, *allow = "", *connection = "", *nl = "\n";
	const char	*type = "text/plain";
	int		 status = rq->status, ok;

	switch (status) {
	case 200:
		pthread_mutex_lock(&srv->lock);
		ok = srv->ok;
		memcpy(reason, srv->reason, sizeof reason);
		if (rq->metrics && srv->metrics != NULL)
			page = xstrdup(srv->metrics);
		else if (rq->elb && !rq->metrics)
			lb_note(srv, c->peer, ok);
		pthread_mutex_unlock(&srv->lock);
		if (rq->metrics) {
			text = "OK";
			body = page != NULL ? page : "";
			nl = "";
			type = HEALTH_METRICS_TYPE;
		} else if (ok) {
			text = "OK";
			body = "ok";
		} else {
			status = 503;
			text = "Service Unavailable";
			body = reason;
		}
		break;
	case 404:
		text = "Not Found";
		body = "not found";
		break;
	case 405:
		text = "Method Not Allowed";
		body = "method not allowed";
		allow = "Allow: GET, HEAD\r\n";
		break;
	case 431:
		text = "Request Header Fields Too Large";
		body = "request too large";
		break;
	case 505:
		text = "HTTP Version Not Supported";
		body = "HTTP version not supported";
		break;
	default:
		status = 400;
		text = "Bad Request";
		body = "bad request";
		break;
	}
	if (rq->close)
		connection = "Connection: close\r\n";
	else if (rq->http10)
		connection = "Connection: keep-alive\r\n";
	buf_addf(&c->out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "Date: %s\r\n"
	    "%s%s"
	    "\r\n"
	    "%s%s",
	    status, text, type, strlen(body) + strlen(nl), health_date(srv), allow,
	    connection, rq->head ? "" : body, rq->head ? "" : nl);
	free(page);
}

/* Move c to the tail of queue q; a new deadline when it changes queue or reset is set. */
static void
conn_queue(struct health_server *srv, struct conn *c, int q, int reset)
{
	if (c->q == q && !reset)
		return;
	if (c->q != -1)
		TAILQ_REMOVE(&srv->queues[c->q], c, entry);
	c->q = q;
	c->deadline = mono_now() + health_timeouts[q];
	TAILQ_INSERT_TAIL(&srv->queues[q], c, entry);
}

static int
conn_watch(struct health_server *srv, struct conn *c, uint32_t events)
{
	struct epoll_event	ev;

	if (c->events == events)
		return 0;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		return -1;
	c->events = events;
	return 0;
}

static void
conn_close(struct health_server *srv, struct conn *c)
{
	if (c->q != -1)
		TAILQ_REMOVE(&srv->queues[c->q], c, entry);
	/* epoll watches the socket, which a forked child not yet exec'd may still hold. */
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	buf_free(&c->out);
	free(c);
	srv->nconns--;
}

static void
conn_consume(struct conn *c, size_t n)
{
	if (n == 0)
		return;
	if (n >= c->inlen) {
		free(c->in);
		c->in = NULL;
		c->inlen = 0;
	} else {
		memmove(c->in, c->in + n, c->inlen - n);
		c->inlen -= n;
	}
	c->scan = 0;
}

/* Answer the complete requests held, in order, while the unsent answers stay small. */
static int
conn_process(struct health_server *srv, struct conn *c)
{
	struct httpreq	rq;
	size_t		end, skip;
	int		answered = 0;

	while (!c->closing && c->out.len - c->outoff < HEALTH_OUT_HIGH) {
		/* Blank lines before a request line are allowed (RFC 9112 2.2). */
		for (skip = 0; skip < c->inlen; skip++) {
			if (c->in[skip] != '\r' && c->in[skip] != '\n')
				break;
		}
		conn_consume(c, skip);
		if (c->inlen == 0)
			break;
		if ((end = httpreq_parse(srv->path, srv->metrics_path, c->in, c->inlen,
		    &c->scan, &rq)) == 0)
			break;
		conn_answer(srv, c, &rq);
		conn_consume(c, end);
		atomic_fetch_add(&srv->requests, 1);
		answered++;
		if (rq.close) {
			c->closing = 1;
			conn_consume(c, c->inlen);
		}
	}
	/* After the client's FIN nothing can complete what is left. */
	if (c->eof && !c->closing && c->out.len - c->outoff < HEALTH_OUT_HIGH)
		c->closing = 1;
	return answered;
}

/* Send what is pending without blocking; -1 when the connection is dead. */
static int
conn_flush(struct conn *c)
{
	ssize_t	n;

	while (c->outoff < c->out.len) {
		n = send(c->fd, c->out.data + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->outoff += (size_t)n;
	}
	buf_free(&c->out);
	c->outoff = 0;
	return 0;
}

/* Read once (epoll is level-triggered); -1 when the connection is dead. */
static int
conn_read(struct health_server *srv, struct conn *c)
{
	size_t	room = HTTPREQ_MAX_HEAD - c->inlen;
	ssize_t	n;

	if (room == 0)
		return -1;
	n = recv(c->fd, srv->scratch, room, 0);
	if (n == -1)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	if (n == 0) {
		c->eof = 1;
		return 0;
	}
	c->in = xrealloc(c->in, c->inlen + (size_t)n);
	memcpy(c->in + c->inlen, srv->scratch, (size_t)n);
	c->inlen += (size_t)n;
	return 0;
}

/* After the last answer: discard what the client still sends so closing does not reset it. */
static void
conn_drain(struct health_server *srv, struct conn *c)
{
	ssize_t	n;
	int	i;

	for (i = 0; i < HEALTH_DRAIN_READS; i++) {
		n = recv(c->fd, srv->scratch, sizeof srv->scratch, 0);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_close(srv, c);
		return;
	}
}

/* Answer, send, and file the connection under the queue and interest that fit its state. */
static void
conn_step(struct health_server *srv, struct conn *c)
{
	int	answered = 0, n;

	for (;;) {
		n = conn_process(srv, c);
		answered += n;
		if (conn_flush(c) != 0) {
			conn_close(srv, c);
			return;
		}
		if (n == 0 || c->out.len != 0 || c->closing)
			break;
	}
	if (c->closing && c->out.len == 0) {
		if (c->eof || shutdown(c->fd, SHUT_WR) != 0) {
			conn_close(srv, c);
			return;
		}
		conn_queue(srv, c, Q_LINGER, 0);
		if (conn_watch(srv, c, EPOLLIN) != 0)
			conn_close(srv, c);
		return;
	}
	if (c->out.len != 0) {
		conn_queue(srv, c, Q_REQUEST, answered > 0);
		if (conn_watch(srv, c, EPOLLOUT) != 0)
			conn_close(srv, c);
		return;
	}
	if (c->inlen != 0)
		conn_queue(srv, c, Q_REQUEST, answered > 0);
	else if (answered > 0)
		conn_queue(srv, c, Q_KEEPALIVE, 1);
	if (conn_watch(srv, c, EPOLLIN) != 0)
		conn_close(srv, c);
}

static void
conn_event(struct health_server *srv, struct conn *c, uint32_t events)
{
	if (c->q == Q_LINGER) {
		conn_drain(srv, c);
		return;
	}
	if (events & EPOLLERR) {
		conn_close(srv, c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && c->out.len == 0 && !c->closing && !c->eof) {
		if (conn_read(srv, c) != 0) {
			conn_close(srv, c);
			return;
		}
	}
	conn_step(srv, c);
}

/* Make room: lingering clients first, then any yet to finish a request; kept-alive ones last. */
static int
conn_evict(struct health_server *srv)
{
	static const int	 order[] = { Q_LINGER, Q_REQUEST, Q_KEEPALIVE };
	struct conn		*c;
	size_t			 i;

	for (i = 0; i < nitems(order); i++) {
		if ((c = TAILQ_FIRST(&srv->queues[order[i]])) != NULL) {
			conn_close(srv, c);
			return 1;
		}
	}
	return 0;
}

static void
accept_pause(struct health_server *srv, int pause)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof ev);
	ev.events = pause ? 0 : EPOLLIN;
	ev.data.ptr = &srv->lfd;
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
	srv->accept_paused = pause;
	srv->accept_resume = mono_now() + HEALTH_ACCEPT_PAUSE;
}

/* Accept a burst; a full table evicts rather than stops accepting, so a probe always gets in. */
static void
health_accept(struct health_server *srv)
{
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	struct epoll_event	 ev;
	struct conn		*c;
	int			 i, fd, on = 1;

	for (i = 0; i < HEALTH_ACCEPT_BURST; i++) {
		peerlen = sizeof peer;
		memset(&peer, 0, sizeof peer);
		fd = accept4(srv->lfd, (struct sockaddr *)&peer, &peerlen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				if (conn_evict(srv))
					continue;
				accept_pause(srv, 1);
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
				continue;
			default:
				accept_pause(srv, 1);
				return;
			}
		}
		if (srv->nconns >= srv->maxconns)
			conn_evict(srv);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
		c = xcalloc(1, sizeof *c);
		c->fd = fd;
		c->q = -1;
		peer_key(&peer, c->peer);
		c->events = EPOLLIN;
		memset(&ev, 0, sizeof ev);
		ev.events = c->events;
		ev.data.ptr = c;
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(c);
			continue;
		}
		srv->nconns++;
		conn_queue(srv, c, Q_REQUEST, 1);
	}
}

/* Milliseconds until the nearest deadline, or -1 for none. */
static int
health_wait_ms(struct health_server *srv)
{
	struct conn	*c;
	double		 next = -1, ms;
	int		 q;

	for (q = 0; q < Q_COUNT; q++) {
		c = TAILQ_FIRST(&srv->queues[q]);
		if (c != NULL && (next < 0 || c->deadline < next))
			next = c->deadline;
	}
	if (srv->accept_paused && (next < 0 || srv->accept_resume < next))
		next = srv->accept_resume;
	if (next < 0)
		return -1;
	ms = (next - mono_now()) * 1000;
	if (ms <= 0)
		return 0;
	return ms > INT_MAX - 1 ? INT_MAX : (int)ms + 1;
}

static void
health_expire(struct health_server *srv)
{
	struct conn	*c;
	double		 now = mono_now();
	int		 q;

	for (q = 0; q < Q_COUNT; q++) {
		while ((c = TAILQ_FIRST(&srv->queues[q])) != NULL && c->deadline <= now)
			conn_close(srv, c);
	}
	if (srv->accept_paused && srv->accept_resume <= now)
		accept_pause(srv, 0);
}

static void *
health_loop(void *arg)
{
	struct health_server	*srv = arg;
	struct epoll_event	 evs[HEALTH_EVENTS];
	int			 i, n, accept_ready;

	for (;;) {
		n = epoll_wait(srv->epfd, evs, HEALTH_EVENTS, health_wait_ms(srv));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("health endpoint: epoll_wait: %s", strerror(errno));
		}
		/* Connections first: accepting may evict one whose event is in this batch. */
		accept_ready = 0;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == srv->wake)
				return NULL;
			if (evs[i].data.ptr == &srv->lfd)
				accept_ready = 1;
			else
				conn_event(srv, evs[i].data.ptr, evs[i].events);
		}
		if (accept_ready)
			health_accept(srv);
		health_expire(srv);
	}
}

int
health_start(const char *addr, const char *path, const char *metrics,
    struct health_server **sp, char **cause)
{
	struct health_server	*srv;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin;
	struct epoll_event	 ev;
	sigset_t		 all, old;
	socklen_t		 sslen = 0;
	in_port_t		 port;
	int			 q, any, fd = -1, rc, ret = -1;

	*sp = NULL;
	if (addr == NULL)
		addr = "";
	if (path == NULL || *path != '/')
		return set_cause(cause, "health endpoint %s: the path must start with '/'", addr);
	if (metrics != NULL && *metrics != '\0' && (*metrics != '/' || strcmp(metrics, path) == 0))
		return set_cause(cause, "health endpoint %s: the metrics path must start with "
		    "'/' and differ from the health path", addr);
	if (parse_listen(addr, &ss, &sslen, &any, cause) != 0)
		return -1;

	srv = xcalloc(1, sizeof *srv);
	srv->addr = xstrdup(addr);
	srv->path = xstrdup(path);
	if (metrics != NULL && *metrics != '\0')
		srv->metrics_path = xstrdup(metrics);
	srv->lfd = srv->epfd = srv->wake[0] = srv->wake[1] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	copy_reason(srv->reason, sizeof srv->reason, HEALTH_DEFAULT_REASON);
	srv->lb_threshold = 1;
	atomic_init(&srv->requests, 0);
	for (q = 0; q < Q_COUNT; q++)
		TAILQ_INIT(&srv->queues[q]);
	srv->maxconns = conns_for_memory(raise_nofile());

	if (any && (fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 &&
	    errno == EAFNOSUPPORT) {
		/* ":port" on a kernel without IPv6: every IPv4 address. */
		port = ((struct sockaddr_in6 *)&ss)->sin6_port;
		memset(&ss, 0, sizeof ss);
		sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = port;
		sslen = sizeof *sin;
		any = 0;
	} else if (any && fd != -1)
		close(fd);
	if (open_listener(srv, &ss, sslen, any, cause) != 0)
		goto out;
	if ((srv->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    pipe2(srv->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		set_cause(cause, "health endpoint %s: %s", addr, strerror(errno));
		goto out;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = srv->wake;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wake[0], &ev) != 0) {
		set_cause(cause, "health endpoint %s: %s", addr, strerror(errno));
		goto out;
	}
	ev.data.ptr = &srv->lfd;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lfd, &ev) != 0) {
		set_cause(cause, "health endpoint %s: %s", addr, strerror(errno));
		goto out;
	}

	/* Signals stay with the main thread, where the agent handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv->thread, NULL, health_loop, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		set_cause(cause, "health endpoint %s: thread: %s", addr, strerror(rc));
		goto out;
	}
	srv->running = 1;
	*sp = srv;
	ret = 0;
out:
	if (ret != 0)
		health_stop(srv);
	return ret;
}

void
health_set(struct health_server *srv, int ok, const char *reason)
{
	int	i;

	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->ok = ok != 0;
	if (!ok) {
		copy_reason(srv->reason, sizeof srv->reason, reason);
		/* Checks answered 503 break every node's run. */
		for (i = 0; i < HEALTH_LB_NODES; i++)
			srv->nodes[i].run = 0;
	}
	pthread_mutex_unlock(&srv->lock);
}

void
health_set_metrics(struct health_server *srv, const char *page)
{
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	free(srv->metrics);
	srv->metrics = xstrdup(page);
	pthread_mutex_unlock(&srv->lock);
}

void
health_lb_threshold(struct health_server *srv, int threshold)
{
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->lb_threshold = threshold > 0 ? threshold : 1;
	pthread_mutex_unlock(&srv->lock);
}

void
health_lb(struct health_server *srv, struct health_lb *lb)
{
	memset(lb, 0, sizeof *lb);
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	*lb = srv->lb;
	pthread_mutex_unlock(&srv->lock);
}

int
health_get(struct health_server *srv)
{
	int	ok;

	if (srv == NULL)
		return 0;
	pthread_mutex_lock(&srv->lock);
	ok = srv->ok;
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

int
health_port(const struct health_server *srv)
{
	return srv != NULL ? srv->port : -1;
}

unsigned long
health_requests(const struct health_server *srv)
{
	return srv != NULL ? atomic_load(&srv->requests) : 0;
}

void
health_stop(struct health_server *srv)
{
	struct conn	*c;
	ssize_t		 n;
	int		 q;

	if (srv == NULL)
		return;
	if (srv->running) {
		do
			n = write(srv->wake[1], "x", 1);
		while (n == -1 && errno == EINTR);
		pthread_join(srv->thread, NULL);
	}
	for (q = 0; q < Q_COUNT; q++) {
		while ((c = TAILQ_FIRST(&srv->queues[q])) != NULL)
			conn_close(srv, c);
	}
	if (srv->lfd != -1)
		close(srv->lfd);
	if (srv->epfd != -1)
		close(srv->epfd);
	if (srv->wake[0] != -1)
		close(srv->wake[0]);
	if (srv->wake[1] != -1)
		close(srv->wake[1]);
	pthread_mutex_destroy(&srv->lock);
	free(srv->addr);
	free(srv->path);
	free(srv->metrics_path);
	free(srv->metrics);
	free(srv);
}
