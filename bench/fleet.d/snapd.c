/*
 * snapd.c - IMDS and S3 for bench/fleet's agents: the fake's answers for N
 * instances, from a snapshot, in one poll() loop.
 *
 *     snapd SNAPSHOT LOG
 *
 * On AWS every instance has its own IMDS, and S3 serves thousands of GETs a
 * second per prefix.  The fake AWS serves both from one Python process that
 * moto shares, so 200 boots at once queue there for over a second, which no
 * real fleet does.  This server answers the same bytes (bench/fleet fetches
 * them from the fake before a run) in microseconds.  SNAPSHOT holds records
 * "PATH\nLEN\n" + LEN bytes + "\n": IMDS paths with the instance's prefix
 * (/i-0123.../latest/meta-data/...), and S3 objects path-style
 * (/BUCKET/KEY).  A PUT of .../latest/api/token with a TTL header gets a
 * token, and an IMDS GET without it 401; S3 requests are not checked (the
 * fake checks SigV4).  GET and HEAD; a path not in the snapshot is 404.
 * Listens on 127.0.0.1, an ephemeral port printed on stdout; on SIGTERM
 * writes one line per request ("UNIXTIME STATUS METHOD PATH") to LOG and exits.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_CONNS	4096
#define IN_SIZE		8192
#define TOKEN		"snapd-bench-token-0123456789abcdef0123456789abcdef"

struct entry {
	char	*path;
	char	*body;
	size_t	 len;
};

struct conn {
	int	 fd;
	size_t	 have;
	char	 in[IN_SIZE];
	char	*out;		/* unsent response bytes, or NULL */
	size_t	 outlen, outoff;
};

struct logline {
	double	 at;
	int	 status;
	char	 what[128];	/* "METHOD PATH", cut */
};

static struct entry	*table;
static size_t		 table_size;
static struct logline	*lines;
static size_t		 nlines, lines_cap;
static int		 line_open;	/* the last line waits for its status */
static volatile sig_atomic_t stop;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static uint64_t
hash(const char *s, size_t n)
{
	uint64_t	 h = 1469598103934665603ULL;

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct entry *
slot(const char *path, size_t n)
{
	size_t	 i = hash(path, n) & (table_size - 1);

	while (table[i].path != NULL &&
	    (strlen(table[i].path) != n || memcmp(table[i].path, path, n) != 0))
		i = (i + 1) & (table_size - 1);
	return &table[i];
}

static void
load(const char *file)
{
	FILE		*f = fopen(file, "r");
	char		 path[4096];
	size_t		 count = 0, len;
	struct entry	*e;

	if (f == NULL)
		die(file);
	while (fgets(path, sizeof path, f) != NULL)
		count++;		/* an upper bound: every line */
	for (table_size = 64; table_size < 2 * count; table_size *= 2)
		;
	if ((table = calloc(table_size, sizeof *table)) == NULL)
		die("calloc");
	rewind(f);
	while (fgets(path, sizeof path, f) != NULL) {
		path[strcspn(path, "\n")] = '\0';
		if (fscanf(f, "%zu", &len) != 1 || fgetc(f) != '\n') {
			fprintf(stderr, "snapd: %s: bad record for %s\n", file, path);
			exit(1);
		}
		e = slot(path, strlen(path));
		free(e->path);
		free(e->body);
		if ((e->path = strdup(path)) == NULL ||
		    (e->body = malloc(len + 1)) == NULL)
			die("malloc");
		if (fread(e->body, 1, len, f) != len || fgetc(f) != '\n') {
			fprintf(stderr, "snapd: %s: short record for %s\n", file, path);
			exit(1);
		}
		e->len = len;
	}
	fclose(f);
}

static void
note(const char *line, size_t n)
{
	struct timeval	 tv;

	if (nlines == lines_cap) {
		lines_cap = lines_cap ? 2 * lines_cap : 4096;
		if ((lines = realloc(lines, lines_cap * sizeof *lines)) == NULL)
			die("realloc");
	}
	gettimeofday(&tv, NULL);
	lines[nlines].at = tv.tv_sec + tv.tv_usec / 1e6;
	if (n >= sizeof lines[nlines].what)
		n = sizeof lines[nlines].what - 1;
	memcpy(lines[nlines].what, line, n);
	lines[nlines].what[n] = '\0';
	lines[nlines].status = 0;
	nlines++;
	line_open = 1;
}

/* The value of header NAME in HEAD (NUL-terminated), or NULL. */
static const char *
header(const char *head, const char *name, size_t *vlen)
{
	const char	*p = strstr(head, "\r\n"), *v;
	size_t		 n = strlen(name);

	while (p != NULL && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			for (v = p + n + 1; *v == ' ' || *v == '\t'; v++)
				;
			*vlen = strcspn(v, "\r");
			return v;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

static void
respond(struct conn *c, int status, const char *extra, const char *body, size_t len, int head)
{
	const char	*reason = status == 200 ? "OK" : status == 401 ? "Unauthorized" :
			    status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed" :
			    "Bad Request";
	char		 hdr[512];
	int		 hn;
	ssize_t		 w;

	hn = snprintf(hdr, sizeof hdr, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\n%sServer: EC2ws\r\n\r\n", status, reason, len, extra);
	if (line_open) {
		lines[nlines - 1].status = status;
		line_open = 0;
	}
	if (head)
		len = 0;
	if ((c->out = malloc(hn + len)) == NULL)
		die("malloc");
	memcpy(c->out, hdr, hn);
	memcpy(c->out + hn, body, len);
	c->outlen = hn + len;
	c->outoff = 0;
	w = write(c->fd, c->out, c->outlen);
	if (w > 0)
		c->outoff = w;
	if (c->outoff == c->outlen) {
		free(c->out);
		c->out = NULL;
	}
}

/* Answers one whole request at the start of c->in; its length, 0 to wait, -1 to close. */
static ssize_t
serve(struct conn *c)
{
	char		*end, *sp1, *sp2, save;
	const char	*v;
	size_t		 vlen, hlen, body = 0;
	struct entry	*e;
	char		 ttl[96];
	size_t		 plen;
	int		 imds, headonly;

	c->in[c->have] = '\0';
	if ((end = strstr(c->in, "\r\n\r\n")) == NULL)
		return c->have >= IN_SIZE - 1 ? -1 : 0;
	hlen = end + 4 - c->in;
	save = c->in[hlen];
	c->in[hlen] = '\0';
	if ((v = header(c->in, "Content-Length", &vlen)) != NULL)
		body = strtoul(v, NULL, 10);
	if (body >= IN_SIZE || header(c->in, "Transfer-Encoding", &vlen) != NULL) {
		respond(c, 400, "", "", 0, 0);
		return -1;	/* no client of the bench sends a body that big, or chunks */
	}
	if (hlen + body > c->have) {
		c->in[hlen] = save;
		return hlen + body >= IN_SIZE ? -1 : 0;
	}
	sp1 = strchr(c->in, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL) {
		respond(c, 400, "", "", 0, 0);
		return -1;
	}
	note(c->in, sp2 - c->in);
	plen = strcspn(sp1 + 1, "? ");
	imds = memmem(sp1 + 1, plen, "/latest/", 8) != NULL;
	headonly = strncmp(c->in, "HEAD ", 5) == 0;
	if (strncmp(c->in, "PUT ", 4) == 0) {
		v = header(c->in, "X-aws-ec2-metadata-token-ttl-seconds", &vlen);
		if (plen < 17 || memcmp(sp1 + 1 + plen - 17, "/latest/api/token", 17) != 0)
			respond(c, 405, "", "", 0, 0);
		else if (v == NULL || vlen == 0 || vlen > 10)
			respond(c, 400, "", "", 0, 0);
		else {
			snprintf(ttl, sizeof ttl, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: %.*s\r\n",
			    (int)vlen, v);
			respond(c, 200, ttl, TOKEN, strlen(TOKEN), 0);
		}
	} else if (strncmp(c->in, "GET ", 4) != 0 && !headonly)
		respond(c, 405, "", "", 0, 0);
	else if (imds && ((v = header(c->in, "X-aws-ec2-metadata-token", &vlen)) == NULL ||
	    vlen != strlen(TOKEN) || memcmp(v, TOKEN, vlen) != 0))
		respond(c, 401, "", "", 0, headonly);
	else if ((e = slot(sp1 + 1, plen))->path == NULL)
		respond(c, 404, "", "Not Found", 9, headonly);
	else
		respond(c, 200, "", e->body, e->len, headonly);
	c->in[hlen] = save;	/* the next request's first byte, when one follows */
	return hlen + body;
}

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
drop(struct conn *c)
{
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
}

int
main(int argc, char **argv)
{
	static struct conn	 conns[MAX_CONNS];
	struct pollfd		 pfd[MAX_CONNS + 1];
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof sa;
	struct sigaction	 act;
	FILE			*log;
	ssize_t			 r;
	size_t			 i, n;
	int			 ls, fd, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: snapd SNAPSHOT LOG\n");
		return 2;
	}
	load(argv[1]);
	memset(&act, 0, sizeof act);
	act.sa_handler = on_term;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		die("socket");
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) == -1 || listen(ls, 1024) == -1 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) == -1)
		die("listen");
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	while (!stop) {
		pfd[0].fd = ls;
		pfd[0].events = POLLIN;
		for (i = 0; i < MAX_CONNS; i++) {
			pfd[i + 1].fd = conns[i].fd;
			pfd[i + 1].events = conns[i].out ? POLLOUT : POLLIN;
			pfd[i + 1].revents = 0;
		}
		if (poll(pfd, MAX_CONNS + 1, 500) == -1) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		while ((pfd[0].revents & POLLIN) &&
		    (fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) != -1) {
			for (i = 0; i < MAX_CONNS && conns[i].fd != -1; i++)
				;
			if (i == MAX_CONNS) {
				close(fd);
				continue;
			}
			/* Headers and body leave in one write; no Nagle delay on keep-alive. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			conns[i].fd = fd;
			conns[i].have = 0;
		}
		for (i = 0; i < MAX_CONNS; i++) {
			struct conn	*c = &conns[i];

			if (c->fd == -1 || pfd[i + 1].revents == 0 || pfd[i + 1].fd != c->fd)
				continue;
			if (c->out != NULL) {
				r = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
				if (r <= 0 && errno != EAGAIN) {
					drop(c);
					continue;
				}
				if (r > 0 && (c->outoff += r) == c->outlen) {
					free(c->out);
					c->out = NULL;
				}
			} else {
				r = read(c->fd, c->in + c->have, IN_SIZE - 1 - c->have);
				if (r <= 0) {
					if (r == 0 || errno != EAGAIN)
						drop(c);
					continue;
				}
				c->have += r;
			}
			/* Requests already read (pipelined) are answered once the last one is out. */
			while (c->out == NULL && (r = serve(c)) != 0) {
				if (r < 0) {
					drop(c);
					break;
				}
				n = (size_t)r;
				memmove(c->in, c->in + n, c->have - n);
				c->have -= n;
			}
		}
	}

	if ((log = fopen(argv[2], "w")) == NULL)
		die(argv[2]);
	for (i = 0; i < nlines; i++)
		fprintf(log, "%.6f %d %s\n", lines[i].at, lines[i].status, lines[i].what);
	if (fclose(log) != 0)
		die(argv[2]);
	return 0;
}
