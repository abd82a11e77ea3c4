/* chunks.h - an artifact's bytes checked chunk by chunk against its manifest before they pass. */
#ifndef ASG_CHUNKS_H
#define ASG_CHUNKS_H

#include <stddef.h>
#include <sys/types.h>

#include "reader.h"

struct halt;
struct manifest;
struct chunks;

/*
 * A stage reading the artifact from read(arg), checked against m (which it
 * borrows); checked: the source has compared every chunk with m already
 * (pfetch), so the stage only counts and hashes the whole.
 */
struct chunks	*chunks_new(const struct manifest *, reader_fn, void *, int checked,
		    const struct halt *);
/* Compare chunk idx's bytes with its digest in m. */
int		 chunks_check(const struct manifest *, size_t idx, const void *, size_t,
		    char **);
/*
 * A reader (reader.h), arg the chunks: a whole chunk is read and its digest
 * compared with the manifest's before any of its bytes is handed on, so only
 * verified bytes ever pass; memory is one chunk.
 */
ssize_t		 chunks_read(void *, void *, size_t, char **);
/*
 * All bytes are handed on: check that the source ended at the manifest's
 * size and that the whole artifact has the manifest's sha256 (written, hex, to sha256).
 */
int		 chunks_finish(struct chunks *, char sha256[65], char **);
/* Verified bytes read from the source so far. */
long long	 chunks_bytes(const struct chunks *);
void		 chunks_free(struct chunks *);

#endif
