/* artifact.h - fetch, verify and unpack a release: nothing is parsed before it is verified. */
#ifndef ASG_ARTIFACT_H
#define ASG_ARTIFACT_H

#include <stddef.h>
#include <sys/types.h>

#include "reader.h"

struct halt;
struct aws;

struct artifact_spec {
	const char	*url;		/* s3://, https:// (http:// for tests) */
	const char	*sha256;	/* expected digest (hex), or NULL */
	const char	*signature_url;	/* detached signature, or NULL */
	const char	*public_key;	/* PEM file, or NULL */
	long long	 max_size;	/* unpacked bytes at most */
	long long	 max_entries;	/* archive entries at most (0: 100000) */
	double		 stall_timeout;	/* seconds without progress (0: 30) */
	int		 connections;	/* with a manifest: chunks fetched at once (0, 1: one) */
	const struct halt *halt;	/* stopped: the fetch ends (NULL: never) */
	void		(*tick)(void *);	/* called as bytes arrive: heartbeats */
	void		*tick_arg;
};

struct artifact_result {
	char		 sha256[65];	/* of the bytes as downloaded */
	long long	 bytes;		/* downloaded */
	long long	 unpacked;	/* written to disk */
	long		 entries;
	int		 digest_ok;	/* sha256 given and matched */
	int		 signature_ok;	/* signature given and verified */
	int		 resumes;	/* Range requests after a broken transfer */
	char		*format;	/* "tar.gz", "tar" or "tar.zst" */
};

/* Bytes of an artifact as they arrive: >0 read, 0 at the end, -1 with a cause. */
typedef reader_fn artifact_read_fn;

/*
 * Download spec->url and unpack the tar (.tar, .tar.gz, .tar.zst) into dest,
 * which must not exist; no byte reaches decompression or the tar reader
 * before it is verified. spec->sha256 "manifest:HEX" pins {url}.manifest:
 * it is checked (and {url}.manifest.sig with a public key) before it is
 * parsed, then every chunk as it arrives, streamed in one pass (over
 * spec->connections connections). Otherwise the artifact is staged in a file
 * beside dest while hashed (and signature-checked), verified, then unpacked.
 * Unsafe entries (absolute paths, "..", links leaving dest, devices, fifos)
 * fail the whole artifact; setuid/setgid, sticky and group/other write bits
 * are dropped. On any failure dest is removed.
 */
int	artifact_fetch(struct aws *, const struct artifact_spec *, const char *dest,
	    struct artifact_result *, char **);
/* The same pipeline, writing the verified bytes to a file instead of unpacking. */
int	artifact_fetch_file(struct aws *, const struct artifact_spec *, const char *path,
	    struct artifact_result *, char **);
/* The unpacking half alone, fed by a reader (tests, fuzzing, local files). */
int	artifact_unpack(artifact_read_fn, void *, const struct artifact_spec *,
	    const char *dest, struct artifact_result *, char **);
void	artifact_result_free(struct artifact_result *);

#endif
