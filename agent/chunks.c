/* chunks.c - an artifact's bytes checked chunk by chunk against its manifest before they pass. */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "chunks.h"
#include "halt.h"
#include "manifest.h"
#include "util.h"

/* The artifact as it arrives, one verified chunk at a time. */
struct chunks {
	const struct manifest	*m;
	reader_fn		 read;
	void			*arg;
	const struct halt	*halt;
	EVP_MD_CTX		*whole;		/* of every verified byte */
	unsigned char		*buf;		/* the current chunk */
	size_t			 len;		/* its length */
	size_t			 pos;		/* bytes of it handed on */
	size_t			 next;		/* the chunk to read next */
	long long		 bytes;		/* verified so far */
	int			 checked;	/* the source checks every chunk itself */
	char			 whole_tail[16384];	/* what the reader left unread */
};

int
chunks_check(const struct manifest *m, size_t idx, const void *p, size_t len, char **cause)
{
	unsigned char	d[EVP_MAX_MD_SIZE];
	unsigned int	dlen = 0;
	long long	from = (long long)idx * m->chunk_size;

	if (EVP_Digest(p, len, d, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
		return set_cause(cause, "sha256 of chunk %zu failed", idx);
	if (memcmp(d, manifest_chunk(m, idx), 32) != 0)
		return set_cause(cause, "chunk %zu (bytes %lld-%lld) does not match the "
		    "manifest", idx, from, from + manifest_chunk_len(m, idx) - 1);
	return 0;
}

struct chunks *
chunks_new(const struct manifest *m, reader_fn read, void *arg, int checked,
    const struct halt *halt)
{
	struct chunks	*c;

	c = xcalloc(1, sizeof *c);
	c->m = m;
	c->read = read;
	c->arg = arg;
	c->halt = halt;
	c->checked = checked;
	if (!checked)
		c->buf = xmalloc((size_t)m->chunk_size);
	if ((c->whole = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->whole, EVP_sha256(), NULL) != 1)
		fatal("out of memory");
	return c;
}

/* Read exactly want bytes of the source into c->buf, or say where it ended. */
static int
fill(struct chunks *c, size_t want, char **cause)
{
	ssize_t	n;

	c->len = c->pos = 0;
	while (c->len < want) {
		if (halt_stopped(c->halt))
			return set_cause(cause, "stopped");
		n = c->read(c->arg, c->buf + c->len, want - c->len, cause);
		if (n < 0)
			return -1;
		if (n == 0)
			return set_cause(cause, "the artifact ends at byte %lld, the manifest "
			    "says %lld", c->bytes + (long long)c->len, c->m->size);
		c->len += (size_t)n;
	}
	return 0;
}

/* Read the next chunk and compare its digest with the manifest's. */
static int
next_chunk(struct chunks *c, char **cause)
{
	if (fill(c, (size_t)manifest_chunk_len(c->m, c->next), cause) != 0)
		return -1;
	if (chunks_check(c->m, c->next, c->buf, c->len, cause) != 0) {
		c->len = 0;
		return -1;
	}
	if (EVP_DigestUpdate(c->whole, c->buf, c->len) != 1)
		return set_cause(cause, "sha256 failed");
	c->next++;
	c->bytes += (long long)c->len;
	return 0;
}

/* A source that checks every chunk itself: pass its bytes on, hashing the whole. */
static ssize_t
read_checked(struct chunks *c, void *p, size_t len, char **cause)
{
	ssize_t	n;

	if (halt_stopped(c->halt))
		return set_cause(cause, "stopped");
	if ((n = c->read(c->arg, p, len, cause)) <= 0)
		return n;
	if (c->bytes + n > c->m->size)
		return set_cause(cause, "the artifact is longer than the manifest's %lld "
		    "bytes", c->m->size);
	if (EVP_DigestUpdate(c->whole, p, (size_t)n) != 1)
		return set_cause(cause, "sha256 failed");
	c->bytes += n;
	return n;
}

ssize_t
chunks_read(void *arg, void *p, size_t len, char **cause)
{
	struct chunks	*c = arg;

	if (c->checked)
		return read_checked(c, p, len, cause);
	if (c->pos == c->len) {
		if (c->next == c->m->nchunks)
			return 0;
		if (next_chunk(c, cause) != 0)
			return -1;
	}
	if (len > c->len - c->pos)
		len = c->len - c->pos;
	memcpy(p, c->buf + c->pos, len);
	c->pos += len;
	return (ssize_t)len;
}

int
chunks_finish(struct chunks *c, char sha256[65], char **cause)
{
	unsigned char	d[EVP_MAX_MD_SIZE];
	unsigned int	dlen = 0;
	char		extra;
	ssize_t		n;

	while (c->checked && c->bytes < c->m->size) {
		if ((n = read_checked(c, c->whole_tail, sizeof c->whole_tail, cause)) < 0)
			return -1;
		if (n == 0)
			return set_cause(cause, "the artifact ends at byte %lld, the manifest "
			    "says %lld", c->bytes, c->m->size);
	}
	while (!c->checked && c->next < c->m->nchunks) {
		if (next_chunk(c, cause) != 0)
			return -1;
	}
	if ((n = c->read(c->arg, &extra, 1, cause)) < 0)
		return -1;
	if (n > 0)
		return set_cause(cause, "the artifact is longer than the manifest's %lld "
		    "bytes", c->m->size);
	if (EVP_DigestFinal_ex(c->whole, d, &dlen) != 1 || dlen != 32)
		return set_cause(cause, "sha256 failed");
	hex_encode(d, dlen, sha256);
	if (memcmp(d, c->m->sha256, 32) != 0)
		return set_cause(cause, "the artifact's sha256 %s is not the manifest's",
		    sha256);
	return 0;
}

long long
chunks_bytes(const struct chunks *c)
{
	return c->bytes;
}

void
chunks_free(struct chunks *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->whole);
	free(c->buf);
	free(c);
}
