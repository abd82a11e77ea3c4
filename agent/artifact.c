/* artifact.c - fetch, verify and unpack a release in one streaming pass. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "decomp.h"
#include "download.h"
#include "fs.h"
#include "log.h"
#include "unpack.h"
#include "util.h"
#include "verify.h"

#define READ_SIZE	(128 * 1024)	/* one pull from the source */
#define SIG_MAX		(16 * 1024)	/* a detached signature is far smaller */
#define DEF_ENTRIES	100000
#define DEF_SIZE	(4LL << 30)	/* when max_size is 0, as the config's default */

/*
 * The stages, each reading from the one before: download (or the caller's
 * reader), verify (digest and signature), decomp (gzip), unpack (tar).
 * A source is the first two: all that artifact_fetch_file reads through.
 */
struct source {
	struct download	*dl;
	struct verify	*v;
};

/* Check the parts of a spec every entry point relies on, before any work. */
static int
spec_check(const struct artifact_spec *spec, char **cause)
{
	char	*shown;

	if (spec->sha256 != NULL && !hex64_ok(spec->sha256)) {
		shown = str_vis(spec->sha256);
		set_cause(cause, "expected sha256 '%s' is not 64 hex digits", shown);
		free(shown);
		return -1;
	}
	if (spec->max_size < 0 || spec->max_entries < 0)
		return set_cause(cause, "negative artifact limits");
	return 0;
}

/* All bytes are in: record the digest, then compare it and check the signature. */
static int
check_bytes(struct verify *v, const struct artifact_spec *spec,
    struct artifact_result *res, char **cause)
{
	res->bytes = verify_bytes(v);
	return verify_finish(v, spec->sha256, res->sha256, &res->digest_ok,
	    &res->signature_ok, cause);
}

/*
 * The unpacking half: make dest, read the archive through the verify stage,
 * write its entries, read the source to its real end and check digest and
 * signature. Any failure removes dest, provided this call made it.
 */
static int
unpack_verified(struct verify *v, const struct artifact_spec *spec, const char *dest,
    struct artifact_result *res, char **cause)
{
	struct decomp	*dc;
	struct unpack	*u;
	char		*rmcause = NULL;
	int		 ret = -1;

	dc = decomp_new(verify_read, v);
	u = unpack_new(dest, spec->max_size > 0 ? spec->max_size : DEF_SIZE,
	    spec->max_entries > 0 ? spec->max_entries : DEF_ENTRIES, spec->halt);
	if (unpack_open(u, cause) != 0)
		goto out;
	if (unpack_entries(u, decomp_read, dc, cause) != 0)
		goto out;
	if (decomp_drain(dc, cause) != 0)
		goto out;
	if (unpack_finish(u, cause) != 0)
		goto out;
	if (check_bytes(v, spec, res, cause) != 0)
		goto out;
	res->format = decomp_gzip(dc) ? xstrdup("tar.gz") : unpack_format(u);
	ret = 0;
out:
	res->bytes = verify_bytes(v);
	res->unpacked = unpack_bytes(u);
	res->entries = unpack_count(u);
	if (ret != 0) {
		res->digest_ok = res->signature_ok = 0;
		if (unpack_remove(u, &rmcause) != 0) {
			set_cause(cause, "%s (and removing it failed: %s)", *cause, rmcause);
			free(rmcause);
		}
	}
	unpack_free(u);
	decomp_free(dc);
	return ret;
}

int
artifact_unpack(artifact_read_fn read, void *arg, const struct artifact_spec *spec,
    const char *dest, struct artifact_result *res, char **cause)
{
	struct verify	*v = NULL;
	char		*nocause = NULL;
	int		 ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	if (spec_check(spec, cause) != 0)
		goto out;
	if (spec->public_key != NULL) {
		set_cause(cause, "signatures are checked by artifact_fetch, not artifact_unpack");
		goto out;
	}
	if ((v = verify_new(cause)) == NULL)
		goto out;
	verify_source(v, read, arg, spec->halt);
	ret = unpack_verified(v, spec, dest, res, cause);
out:
	verify_free(v);
	free(nocause);
	return ret;
}

/* The detached signature is in: from where (query withheld) and how big. */
static void
log_signature(const char *url, size_t len)
{
	char	*u = download_url_for_log(url);

	log_debug("artifact: signature %s fetched: %zu bytes", u, len);
	free(u);
}

/* Load the public key and fetch the signature, ready to verify as bytes stream. */
static int
source_signature(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    char **cause)
{
	struct buf	 sig = { NULL, 0, 0 };
	int		 ret = -1;

	if (verify_key(src->v, spec->public_key, cause) != 0)
		goto out;
	if (download_small(aws, spec->signature_url, SIG_MAX, &sig, cause) != 0) {
		set_cause(cause, "signature file: %s", *cause);
		goto out;
	}
	if (sig.len == 0) {
		set_cause(cause, "signature file %s is empty", spec->signature_url);
		goto out;
	}
	log_signature(spec->signature_url, sig.len);
	if (verify_signature(src->v, sig.data, sig.len, cause) != 0)
		goto out;
	ret = 0;
out:
	buf_free(&sig);
	return ret;
}

/* Everything before the first artifact byte: checks, key, signature, the download. */
static int
source_open(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    char **cause)
{
	struct download_opts	 opts;

	if (spec->url == NULL || *spec->url == '\0')
		return set_cause(cause, "no artifact URL");
	if (spec_check(spec, cause) != 0)
		return -1;
	if ((src->v = verify_new(cause)) == NULL)
		return -1;
	if (spec->public_key != NULL) {
		if (spec->signature_url == NULL)
			return set_cause(cause, "a public key but no signature URL");
		if (source_signature(src, aws, spec, cause) != 0)
			return -1;
	}
	memset(&opts, 0, sizeof opts);
	opts.stall_timeout = spec->stall_timeout;
	opts.halt = spec->halt;
	opts.tick = spec->tick;
	opts.tick_arg = spec->tick_arg;
	if ((src->dl = download_new(aws, spec->url, &opts, cause)) == NULL)
		return -1;
	log_debug("artifact: download of %s starts (%s, %s)", download_log_url(src->dl),
	    spec->sha256 != NULL ? "sha256 pinned" : "no sha256 pinned",
	    spec->public_key != NULL ? "signature to check" : "no signature");
	if (download_start(src->dl, cause) != 0)
		return -1;
	verify_source(src->v, download_read, src->dl, spec->halt);
	return 0;
}

/* The end of a good download: size, digest and resumes in one line. */
static void
log_done(const struct source *src, const struct artifact_result *res)
{
	log_debug("artifact: %s done: %lld bytes, %d resume(s), sha256 %s (%s), signature %s",
	    download_log_url(src->dl), res->bytes, download_resumes(src->dl), res->sha256,
	    res->digest_ok ? "digest ok" : "no digest to compare",
	    res->signature_ok ? "verified" : "not checked");
}

/* What the source read, whatever happened: the bytes and the resumes. */
static void
source_close(struct source *src, struct artifact_result *res)
{
	res->bytes = src->v != NULL ? verify_bytes(src->v) : 0;
	res->resumes = src->dl != NULL ? download_resumes(src->dl) : 0;
	verify_free(src->v);
	download_free(src->dl);
}

int
artifact_fetch(struct aws *aws, const struct artifact_spec *spec, const char *dest,
    struct artifact_result *res, char **cause)
{
	struct source	 src;
	struct stat	 sb;
	char		*nocause = NULL;
	int		 ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	memset(&src, 0, sizeof src);
	if (lstat(dest, &sb) == 0) {
		set_cause(cause, "%s already exists", dest);
		goto out;
	}
	if (source_open(&src, aws, spec, cause) != 0)
		goto out;
	ret = unpack_verified(src.v, spec, dest, res, cause);
	if (ret == 0)
		log_done(&src, res);
out:
	source_close(&src, res);
	free(nocause);
	return ret;
}

/* Copy the verified bytes to fd, at most max of them. */
static int
copy_to(struct source *src, const struct artifact_spec *spec, long long max, int fd,
    const char *tmp, char **cause)
{
	char	*buf, *why = NULL;
	ssize_t	 n;
	int	 ret = -1;

	buf = xmalloc(READ_SIZE);
	while ((n = verify_read(src->v, buf, READ_SIZE, &why)) > 0) {
		if (verify_bytes(src->v) > max) {
			set_cause(cause, "%s: larger than %lld bytes", spec->url, max);
			goto out;
		}
		if (write_all(fd, buf, (size_t)n) != 0) {
			set_cause(cause, "%s: %s", tmp, strerror(errno));
			goto out;
		}
	}
	if (n < 0) {
		set_cause(cause, "%s", why);
		goto out;
	}
	ret = 0;
out:
	free(why);
	free(buf);
	return ret;
}

int
artifact_fetch_file(struct aws *aws, const struct artifact_spec *spec, const char *path,
    struct artifact_result *res, char **cause)
{
	struct source	 src;
	long long	 max;
	char		*tmp, *nocause = NULL;
	int		 fd = -1, r, ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	memset(&src, 0, sizeof src);
	tmp = xasprintf("%s.tmp", path);
	max = spec->max_size > 0 ? spec->max_size : DEF_SIZE;
	if (source_open(&src, aws, spec, cause) != 0)
		goto out;
	fd = open(tmp, O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|O_CLOEXEC, 0644);
	if (fd == -1) {
		set_cause(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (copy_to(&src, spec, max, fd, tmp, cause) != 0)
		goto out;
	if (check_bytes(src.v, spec, res, cause) != 0)
		goto out;
	/* One file: sync it here so the rename never exposes an empty one. */
	if (fsync(fd) == -1) {
		set_cause(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		set_cause(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) == -1) {
		set_cause(cause, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	res->unpacked = res->bytes;
	ret = 0;
	log_done(&src, res);
out:
	if (fd != -1)
		close(fd);
	if (ret != 0) {
		res->digest_ok = res->signature_ok = 0;
		unlink(tmp);
	}
	source_close(&src, res);
	free(tmp);
	free(nocause);
	return ret;
}

void
artifact_result_free(struct artifact_result *res)
{
	if (res == NULL)
		return;
	free(res->format);
	res->format = NULL;
}
