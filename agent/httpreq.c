/* httpreq.c - the health endpoint's HTTP/1.1 request parser: bytes in, the answer's status out. */
#include <string.h>
#include <strings.h>

#include "httpreq.h"

#define HTTPREQ_MAX_METHOD	32
#define HTTPREQ_ELB_AGENT	"ELB-HealthChecker/"

static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Judge the first bytes alone, so non-HTTP clients are turned away at once. */
static int
bad_method(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len && p[i] != ' '; i++) {
		if (i >= HTTPREQ_MAX_METHOD || !is_tchar((unsigned char)p[i]))
			return 1;
	}
	return i == 0 && len > 0;
}

/* Offset just past the blank line ending the headers, or 0; *scan saves rescanning slow clients. */
static size_t
head_end(const char *p, size_t len, size_t *scan)
{
	size_t	i;

	for (i = *scan; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
		if (i + 2 >= len) {
			*scan = i;
			return 0;
		}
	}
	*scan = len;
	return 0;
}

/* Does a comma-separated header value hold token (case-insensitive)? */
static int
has_token(const char *v, size_t len, const char *token)
{
	size_t	tlen = strlen(token), i = 0, start, end;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return 1;
	}
	return 0;
}

/* The path of an origin-form or absolute-form target, without its query; NULL if neither. */
static const char *
target_path(const char *t, size_t tlen, size_t *plen)
{
	const char	*end = t + tlen, *p;

	if (tlen > 7 && strncasecmp(t, "http://", 7) == 0)
		t += 7;
	else if (tlen > 8 && strncasecmp(t, "https://", 8) == 0)
		t += 8;
	else if (*t != '/')
		return NULL;
	if (*t != '/') {
		if ((t = memchr(t, '/', (size_t)(end - t))) == NULL) {
			*plen = 1;
			return "/";
		}
	}
	for (p = t; p < end && *p != '?' && *p != '#'; p++)
		;
	*plen = (size_t)(p - t);
	return t;
}

/* Is t[0..tlen) exactly path? */
static int
same_path(const char *t, size_t tlen, const char *path)
{
	return path != NULL && *path != '\0' && tlen == strlen(path) &&
	    memcmp(t, path, tlen) == 0;
}

/* Read the request head p[0..len) (complete, up to its blank line) into *rq. */
static void
parse_request(const char *path, const char *metrics, const char *p, size_t len,
    struct httpreq *rq)
{
	const char	*end = p + len, *line, *le, *eol, *sp1, *sp2, *colon, *v, *ve;
	const char	*target, *tpath, *c;
	size_t		 mlen, tlen, plen;
	int		 keepalive = 0, close_token = 0, body = 0, clen_seen = 0;
	unsigned long	 clen = 0, n;

	memset(rq, 0, sizeof *rq);
	rq->status = 400;
	rq->close = 1;

	/* The request line: method SP target SP version. */
	eol = memchr(p, '\n', len);
	le = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
	if ((sp1 = memchr(p, ' ', (size_t)(le - p))) == NULL)
		return;
	mlen = (size_t)(sp1 - p);
	target = sp1 + 1;
	if ((sp2 = memchr(target, ' ', (size_t)(le - target))) == NULL || sp2 == target)
		return;
	tlen = (size_t)(sp2 - target);
	for (c = target; c < sp2; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return;
	}
	if (le - (sp2 + 1) != 8 || strncmp(sp2 + 1, "HTTP/", 5) != 0)
		return;
	if (sp2[6] < '0' || sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return;
	if (sp2[6] != '1') {
		rq->status = 505;
		return;
	}
	rq->http10 = sp2[8] == '0';

	/* Headers: only the framing and Connection matter here. */
	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		le = (eol > line && eol[-1] == '\r') ? eol - 1 : eol;
		if (le == line)
			break;
		if ((colon = memchr(line, ':', (size_t)(le - line))) == NULL || colon == line)
			return;
		for (c = line; c < colon; c++) {
			if (!is_tchar((unsigned char)*c))
				return;
		}
		for (v = colon + 1; v < le && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = le; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (c = v; c < ve; c++) {
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				return;
		}
		if (colon - line == 10 && strncasecmp(line, "connection", 10) == 0) {
			if (has_token(v, (size_t)(ve - v), "close"))
				close_token = 1;
			if (has_token(v, (size_t)(ve - v), "keep-alive"))
				keepalive = 1;
		} else if (colon - line == 14 && strncasecmp(line, "content-length", 14) == 0) {
			if (v == ve || ve - v > 15)
				return;
			for (n = 0, c = v; c < ve; c++) {
				if (*c < '0' || *c > '9')
					return;
				n = n * 10 + (unsigned long)(*c - '0');
			}
			if (clen_seen && n != clen)
				return;
			clen_seen = 1;
			clen = n;
			if (clen > 0)
				body = 1;
		} else if (colon - line == 17 &&
		    strncasecmp(line, "transfer-encoding", 17) == 0)
			body = 1;
		else if (colon - line == 10 && strncasecmp(line, "user-agent", 10) == 0)
			rq->elb = (size_t)(ve - v) >= strlen(HTTPREQ_ELB_AGENT) &&
			    strncmp(v, HTTPREQ_ELB_AGENT, strlen(HTTPREQ_ELB_AGENT)) == 0;
	}

	if ((tpath = target_path(target, tlen, &plen)) == NULL)
		return;
	/* A body is not read: answer, then close rather than lose the framing. */
	rq->close = close_token || body || (rq->http10 && !keepalive);
	rq->metrics = same_path(tpath, plen, metrics);
	if (!rq->metrics && !same_path(tpath, plen, path))
		rq->status = 404;
	else if (mlen == 3 && memcmp(p, "GET", 3) == 0)
		rq->status = 200;
	else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
		rq->status = 200;
	else
		rq->status = 405;
	rq->head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
}

size_t
httpreq_parse(const char *path, const char *metrics, const char *in, size_t len,
    size_t *scan, struct httpreq *rq)
{
	size_t	end;

	if (bad_method(in, len)) {
		memset(rq, 0, sizeof *rq);
		rq->status = 400;
		rq->close = 1;
		return len;
	}
	if ((end = head_end(in, len, scan)) == 0) {
		if (len < HTTPREQ_MAX_HEAD)
			return 0;
		memset(rq, 0, sizeof *rq);
		rq->status = 431;
		rq->close = 1;
		return len;
	}
	parse_request(path, metrics, in, end, rq);
	return end;
}
