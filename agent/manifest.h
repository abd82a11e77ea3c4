/* manifest.h - the chunk manifest beside an artifact: its size, chunk size and digests. */
#ifndef ASG_MANIFEST_H
#define ASG_MANIFEST_H

#include <stddef.h>

#define MANIFEST_MAX		(1024 * 1024)	/* bytes of manifest at most */
#define MANIFEST_CHUNK_MIN	(64LL * 1024)
#define MANIFEST_CHUNK_MAX	(64LL * 1024 * 1024)

/* A parsed manifest (README: "Chunk manifests"); digests are raw SHA-256. */
struct manifest {
	long long	 size;		/* of the whole artifact */
	long long	 chunk_size;	/* every chunk's but the last */
	unsigned char	 sha256[32];	/* of the whole artifact */
	size_t		 nchunks;
	unsigned char	*chunks;	/* nchunks digests of 32 bytes */
};

#define MANIFEST_PIN		"manifest:"	/* a digest tag pinning a manifest */

/* The hex digest of a tag value "manifest:HEX" (checked later), or NULL for any other. */
const char	*manifest_pin(const char *);
/*
 * Parse a manifest's bytes: anything but the exact format (first line and
 * version, keys in order, lower-case 64-hex digests, the right chunk count,
 * LF line ends, nothing after) is refused as a whole.
 */
int		 manifest_parse(const char *, size_t, struct manifest *, char **);
/* The length of chunk i (the last one may be short). */
long long	 manifest_chunk_len(const struct manifest *, size_t);
/* The digest of chunk i. */
const unsigned char *manifest_chunk(const struct manifest *, size_t);
void		 manifest_free(struct manifest *);

#endif
