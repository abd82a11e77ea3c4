/*
 * fuzz_manifest.c - the chunk manifest's parser: manifest_parse.
 *
 * Input: the bytes of a manifest (README: Chunk manifests).
 *
 * Checks: a failure has a cause and keeps nothing; a success has a chunk-size
 * that is a power of two from 64 KiB to 64 MiB, exactly ceil(size / chunk-size)
 * chunks whose lengths add up to size, and the input is exactly what the
 * parsed manifest prints back (the format has one spelling per manifest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "util.h"

#include "fuzz.h"

/* The manifest m printed in the format, allocated. */
static char *
print(const struct manifest *m, size_t *len)
{
	struct buf	 b = { NULL, 0, 0 };
	char		 hex[65];
	size_t		 i;

	buf_addf(&b, "asg-agent-manifest 1\nsize %lld\nchunk-size %lld\n", m->size,
	    m->chunk_size);
	hex_encode(m->sha256, 32, hex);
	buf_addf(&b, "sha256 %s\n", hex);
	for (i = 0; i < m->nchunks; i++) {
		hex_encode(manifest_chunk(m, i), 32, hex);
		buf_addf(&b, "chunk %s\n", hex);
	}
	*len = b.len;
	return buf_take(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct manifest	 m;
	long long	 total = 0;
	char		*cause = NULL, *again;
	size_t		 i, alen;

	if (manifest_parse((const char *)data, len, &m, &cause) != 0) {
		FUZZ_CHECK(cause != NULL, "a refusal without a cause");
		FUZZ_CHECK(m.chunks == NULL && m.nchunks == 0, "a refusal kept chunks");
		free(cause);
		return 0;
	}
	FUZZ_CHECK(m.chunk_size >= MANIFEST_CHUNK_MIN && m.chunk_size <= MANIFEST_CHUNK_MAX &&
	    (m.chunk_size & (m.chunk_size - 1)) == 0, "chunk-size %lld", m.chunk_size);
	FUZZ_CHECK((long long)m.nchunks == m.size / m.chunk_size +
	    (m.size % m.chunk_size != 0), "%zu chunks for %lld bytes", m.nchunks, m.size);
	for (i = 0; i < m.nchunks; i++) {
		FUZZ_CHECK(manifest_chunk_len(&m, i) > 0, "chunk %zu is empty", i);
		total += manifest_chunk_len(&m, i);
	}
	FUZZ_CHECK(total == m.size, "chunks add up to %lld of %lld", total, m.size);
	again = print(&m, &alen);
	FUZZ_CHECK(alen == len && memcmp(again, data, len) == 0,
	    "the input is not the manifest's one spelling");
	free(again);
	manifest_free(&m);
	return 0;
}
