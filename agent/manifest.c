/* manifest.c - the chunk manifest beside an artifact: its size, chunk size and digests. */
#include <string.h>
#include <stdlib.h>

#include "manifest.h"
#include "util.h"

#define MAGIC	"asg-agent-manifest 1"

/* The manifest's bytes, taken a line at a time. */
struct lines {
	const char	*p;
	const char	*end;
	int		 lineno;
};

/* The next line (without its LF) in *line, *len; -1 at the end or without an LF. */
static int
next_line(struct lines *l, const char **line, size_t *len, char **cause)
{
	const char	*nl;

	if (l->p == l->end)
		return set_cause(cause, "manifest: ends after line %d", l->lineno);
	l->lineno++;
	if ((nl = memchr(l->p, '\n', (size_t)(l->end - l->p))) == NULL)
		return set_cause(cause, "manifest: line %d does not end with LF", l->lineno);
	*line = l->p;
	*len = (size_t)(nl - l->p);
	l->p = nl + 1;
	return 0;
}

/* The value after "key " on the next line, which must be that key. */
static int
keyed(struct lines *l, const char *key, const char **val, size_t *len, char **cause)
{
	const char	*line;
	size_t		 n, klen = strlen(key);

	if (next_line(l, &line, &n, cause) != 0)
		return -1;
	if (n <= klen || memcmp(line, key, klen) != 0 || line[klen] != ' ')
		return set_cause(cause, "manifest: line %d: expected '%s'", l->lineno, key);
	*val = line + klen + 1;
	*len = n - klen - 1;
	return 0;
}

/* A decimal number without sign or leading zeros, at most 18 digits. */
static int
number(const char *s, size_t len, long long *out)
{
	size_t	i;

	if (len == 0 || len > 18 || (s[0] == '0' && len > 1))
		return -1;
	*out = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (s[i] - '0');
	}
	return 0;
}

/* 64 lower-case hex digits into 32 bytes. */
static int
digest(const char *s, size_t len, unsigned char *out)
{
	size_t	i;
	int	hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = s[2 * i];
		lo = s[2 * i + 1];
		hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
		lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The header: first line, size, chunk-size, sha256. */
static int
parse_head(struct lines *l, struct manifest *m, char **cause)
{
	const char	*v;
	size_t		 n;
	long long	 cs;

	if (next_line(l, &v, &n, cause) != 0)
		return -1;
	if (n != strlen(MAGIC) || memcmp(v, MAGIC, n) != 0)
		return set_cause(cause, "manifest: not an asg-agent-manifest 1");
	if (keyed(l, "size", &v, &n, cause) != 0)
		return -1;
	if (number(v, n, &m->size) != 0)
		return set_cause(cause, "manifest: line %d: bad size", l->lineno);
	if (keyed(l, "chunk-size", &v, &n, cause) != 0)
		return -1;
	if (number(v, n, &cs) != 0 || cs < MANIFEST_CHUNK_MIN || cs > MANIFEST_CHUNK_MAX ||
	    (cs & (cs - 1)) != 0)
		return set_cause(cause, "manifest: line %d: chunk-size is not a power of two "
		    "from 64 KiB to 64 MiB", l->lineno);
	m->chunk_size = cs;
	if (keyed(l, "sha256", &v, &n, cause) != 0)
		return -1;
	if (digest(v, n, m->sha256) != 0)
		return set_cause(cause, "manifest: line %d: sha256 is not 64 lower-case hex "
		    "digits", l->lineno);
	return 0;
}

const char *
manifest_pin(const char *tag)
{
	size_t	n = strlen(MANIFEST_PIN);

	if (tag == NULL || strncmp(tag, MANIFEST_PIN, n) != 0)
		return NULL;
	return tag + n;
}

int
manifest_parse(const char *buf, size_t len, struct manifest *m, char **cause)
{
	struct lines	 l;
	const char	*v;
	size_t		 i, n;
	long long	 want;

	memset(m, 0, sizeof *m);
	if (len > MANIFEST_MAX)
		return set_cause(cause, "manifest: larger than %d bytes", MANIFEST_MAX);
	l.p = buf;
	l.end = buf + len;
	l.lineno = 0;
	if (parse_head(&l, m, cause) != 0)
		goto fail;
	want = m->size / m->chunk_size + (m->size % m->chunk_size != 0);
	/* Each chunk line takes 71 bytes: a count beyond what fits is a lie. */
	if (want > (long long)(len / 71)) {
		set_cause(cause, "manifest: size %lld needs %lld chunks, more than %zu bytes "
		    "can list", m->size, want, len);
		goto fail;
	}
	m->nchunks = (size_t)want;
	m->chunks = xcalloc(m->nchunks > 0 ? m->nchunks : 1, 32);
	for (i = 0; i < m->nchunks; i++) {
		if (l.p == l.end) {
			set_cause(cause, "manifest: %zu chunks listed, %zu expected", i,
			    m->nchunks);
			goto fail;
		}
		if (keyed(&l, "chunk", &v, &n, cause) != 0)
			goto fail;
		if (digest(v, n, m->chunks + 32 * i) != 0) {
			set_cause(cause, "manifest: line %d: chunk digest is not 64 lower-case "
			    "hex digits", l.lineno);
			goto fail;
		}
	}
	if (l.p != l.end) {
		set_cause(cause, "manifest: more than the %zu chunks expected, or trailing "
		    "bytes, after line %d", m->nchunks, l.lineno);
		goto fail;
	}
	return 0;
fail:
	manifest_free(m);
	return -1;
}

long long
manifest_chunk_len(const struct manifest *m, size_t i)
{
	long long	off = (long long)i * m->chunk_size;

	return m->size - off < m->chunk_size ? m->size - off : m->chunk_size;
}

const unsigned char *
manifest_chunk(const struct manifest *m, size_t i)
{
	return m->chunks + 32 * i;
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	free(m->chunks);
	memset(m, 0, sizeof *m);
}
