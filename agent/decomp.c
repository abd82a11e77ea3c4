/* decomp.c - inflate a gzip artifact on its way to the tar reader; anything else passes as it is. */
#include <sys/types.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "decomp.h"
#include "util.h"

#define READ_SIZE	(128 * 1024)	/* one pull from the source, one inflate */
#define MAX_TRAILING	(64LL << 20)	/* bytes after the end of the archive */

/*
 * Between the verify stage and libarchive. A gzip artifact is inflated here
 * rather than by libarchive, which (3.6) never checks a member's CRC-32 or
 * length: zlib does, so corrupt data fails even with no digest to compare.
 * z.next_in and z.avail_in are the unread input in in[] in every mode.
 */
enum decomp_mode {
	DECOMP_DETECT,
	DECOMP_RAW,		/* tar or tar.zst: libarchive has it as it is */
	DECOMP_GZIP,
	DECOMP_GZIP_END,	/* past the last member: the rest is trailing bytes */
};

struct decomp {
	reader_fn	 read;
	void		*arg;
	z_stream	 z;
	enum decomp_mode mode;
	int		 zinit;
	unsigned char	*in;
	unsigned char	*out;
	int		 eof;
	int		 failed;
	char		*cause;		/* why the source or the stage failed */
};

static int	decomp_fail(struct decomp *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* Mark the stage failed with a cause; always -1. */
static int
decomp_fail(struct decomp *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	free(s->cause);
	s->cause = xvasprintf(fmt, ap);
	va_end(ap);
	s->failed = 1;
	return -1;
}

/* Read from the source into in[] at offset at: >0 bytes read, 0 at the end, -1 with s->cause. */
static ssize_t
decomp_fill(struct decomp *s, size_t at)
{
	ssize_t	n;

	if (s->failed)
		return -1;
	if (s->eof)
		return 0;
	if (at >= READ_SIZE)
		return decomp_fail(s, "feed buffer full");
	if ((n = s->read(s->arg, s->in + at, READ_SIZE - at, &s->cause)) < 0) {
		if (s->cause == NULL)
			s->cause = xstrdup("read failed");
		s->failed = 1;
		return -1;
	}
	if (n == 0)
		s->eof = 1;
	return n;
}

struct decomp *
decomp_new(reader_fn read, void *arg)
{
	struct decomp	*s;

	s = xcalloc(1, sizeof *s);
	s->read = read;
	s->arg = arg;
	s->in = xmalloc(READ_SIZE);
	return s;
}

/* Read more input once the unread bytes are used up: >0, 0 at the end, -1. */
static ssize_t
decomp_more(struct decomp *s)
{
	ssize_t	n;

	if ((n = decomp_fill(s, 0)) < 0)
		return -1;
	s->z.next_in = s->in;
	s->z.avail_in = (uInt)n;
	return n;
}

/* Make at least want bytes unread (fewer only at the end) by reading behind them. */
static int
decomp_lookahead(struct decomp *s, size_t want)
{
	ssize_t	n;

	while (s->z.avail_in < want && !s->eof) {
		if (s->z.avail_in > 0)
			memmove(s->in, s->z.next_in, s->z.avail_in);
		if ((n = decomp_fill(s, s->z.avail_in)) < 0)
			return -1;
		s->z.next_in = s->in;
		s->z.avail_in += (uInt)n;
	}
	return 0;
}

static int
decomp_at_gzip(const struct decomp *s)
{
	return s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b;
}

static int
decomp_detect(struct decomp *s)
{
	if (decomp_lookahead(s, 2) != 0)
		return -1;
	if (!decomp_at_gzip(s)) {
		s->mode = DECOMP_RAW;
		return 0;
	}
	if (inflateInit2(&s->z, 15 + 16) != Z_OK)
		return decomp_fail(s, "zlib: %s", s->z.msg != NULL ? s->z.msg : "init");
	s->zinit = 1;
	s->out = xmalloc(READ_SIZE);
	s->mode = DECOMP_GZIP;
	return 0;
}

/* Inflate the next bytes: >0, 0 after the last member, -1 on corrupt or truncated data. */
static ssize_t
decomp_inflate(struct decomp *s, const void **bufp)
{
	size_t	produced;
	ssize_t	n;
	int	r;

	for (;;) {
		if (s->mode == DECOMP_GZIP_END)
			return 0;
		if (s->z.avail_in == 0) {
			if ((n = decomp_more(s)) < 0)
				return -1;
			if (n == 0)
				return decomp_fail(s, "gzip data is truncated");
		}
		s->z.next_out = s->out;
		s->z.avail_out = READ_SIZE;
		r = inflate(&s->z, Z_NO_FLUSH);
		produced = READ_SIZE - s->z.avail_out;
		if (r == Z_STREAM_END) {
			/* Another member may follow, as gzip -d allows. */
			if (decomp_lookahead(s, 2) != 0)
				return -1;
			if (!decomp_at_gzip(s))
				s->mode = DECOMP_GZIP_END;
			else if (inflateReset(&s->z) != Z_OK)
				return decomp_fail(s, "zlib: inflateReset failed");
		} else if (r != Z_OK && (r != Z_BUF_ERROR || s->z.avail_in != 0)) {
			return decomp_fail(s, "bad gzip data: %s",
			    s->z.msg != NULL ? s->z.msg : zError(r));
		}
		if (produced > 0) {
			*bufp = s->out;
			return (ssize_t)produced;
		}
	}
}

/* The next bytes of the tar for libarchive: >0, 0 at the end, -1 with a cause. */
ssize_t
decomp_read(void *arg, const void **bufp, char **cause)
{
	struct decomp	*s = arg;
	ssize_t		 n;

	if (s->mode == DECOMP_DETECT && decomp_detect(s) != 0)
		goto fail;
	if (s->mode == DECOMP_GZIP || s->mode == DECOMP_GZIP_END) {
		if ((n = decomp_inflate(s, bufp)) < 0)
			goto fail;
		return n;
	}
	if (s->z.avail_in == 0 && decomp_more(s) < 0)
		goto fail;
	*bufp = s->z.next_in;
	n = (ssize_t)s->z.avail_in;
	s->z.avail_in = 0;
	return n;
fail:
	return set_cause(cause, "%s", s->cause);
}

/*
 * After the end of the tar: inflate the rest of the gzip stream (so its CRC
 * is checked) and read the source to its real end (so the digest covers every
 * byte), refusing more than MAX_TRAILING bytes of either.
 */
int
decomp_drain(struct decomp *s, char **cause)
{
	const void	*p;
	long long	 after = 0;
	ssize_t		 n;

	if (s->mode == DECOMP_GZIP) {
		while ((n = decomp_inflate(s, &p)) > 0) {
			if ((after += n) > MAX_TRAILING)
				goto toomuch;
		}
		if (n < 0)
			return set_cause(cause, "%s", s->cause);
	}
	after = s->z.avail_in;
	s->z.avail_in = 0;
	while ((n = decomp_fill(s, 0)) > 0) {
		if ((after += n) > MAX_TRAILING)
			goto toomuch;
	}
	if (n < 0)
		return set_cause(cause, "%s", s->cause);
	return 0;
toomuch:
	return set_cause(cause, "more than %lld bytes after the end of the archive",
	    MAX_TRAILING);
}

int
decomp_gzip(const struct decomp *s)
{
	return s->mode == DECOMP_GZIP || s->mode == DECOMP_GZIP_END;
}

void
decomp_free(struct decomp *s)
{
	if (s == NULL)
		return;
	if (s->zinit)
		inflateEnd(&s->z);
	free(s->in);
	free(s->out);
	free(s->cause);
	free(s);
}
