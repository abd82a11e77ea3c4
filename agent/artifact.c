/* artifact.c - fetch, verify and unpack a release: nothing is parsed before it is verified. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "chunks.h"
#include "decomp.h"
#include "download.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "manifest.h"
#include "pfetch.h"
#include "unpack.h"
#include "util.h"
#include "verify.h"

#define READ_SIZE	(128 * 1024)	/* one pull from the source */
#define SIG_MAX		(16 * 1024)	/* a detached signature is far smaller */
#define DEF_ENTRIES	100000
#define DEF_SIZE	(4LL << 30)	/* when max_size is 0, as the config's default */
#define PAR_CHUNK	(4LL << 20)	/* without a manifest: the chunks of a parallel fetch */

/*
 * The stages, each reading from the one before: download (or the caller's
 * reader), verify (digest and signature), decomp (gzip), unpack (tar).
 * A source is the first two: all that artifact_fetch_file reads through.
 * With a manifest, chunks takes verify's place and v checked the manifest:
 * then every byte read from the source is verified already.
 */
struct source {
	struct download	*dl;
	struct pfetch	*pf;		/* several connections (manifest only), or NULL */
	struct verify	*v;
	struct manifest	 m;
	struct chunks	*ck;		/* a manifest pins the artifact, or NULL */
	int		 manifest_signed;
	const struct artifact_spec *spec;
	reader_fn	 read;		/* the source's bytes: chunks_read or verify_read */
	void		*arg;
};

/* Check the parts of a spec every entry point relies on, before any work. */
static int
spec_check(const struct artifact_spec *spec, char **cause)
{
	const char	*hex;
	char		*shown;

	hex = manifest_pin(spec->sha256);
	if (hex == NULL)
		hex = spec->sha256;
	if (hex != NULL && !hex64_ok(hex)) {
		shown = str_vis(spec->sha256);
		set_cause(cause, "expected sha256 '%s' is not 64 hex digits (or manifest: and "
		    "64 hex digits)", shown);
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
 * The unpacking half: make dest, read the archive from read(arg), write its
 * entries and read the source to its real end; then check (NULL: nothing
 * left to check) the bytes. Any failure removes dest, provided this call made it.
 */
static int
unpack_stream(reader_fn read, void *arg, int (*check)(void *, struct artifact_result *,
    char **), void *check_arg, const struct artifact_spec *spec, const char *dest,
    struct artifact_result *res, char **cause)
{
	struct decomp	*dc;
	struct unpack	*u;
	char		*rmcause = NULL;
	int		 ret = -1;

	dc = decomp_new(read, arg);
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
	if (check != NULL && check(check_arg, res, cause) != 0)
		goto out;
	res->format = decomp_gzip(dc) ? xstrdup("tar.gz") : unpack_format(u);
	ret = 0;
out:
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

/* What artifact_unpack checks once its reader is at the end. */
struct local_check {
	struct verify			*v;
	const struct artifact_spec	*spec;
};

static int
local_check(void *arg, struct artifact_result *res, char **cause)
{
	struct local_check	*lc = arg;

	return check_bytes(lc->v, lc->spec, res, cause);
}

int
artifact_unpack(artifact_read_fn read, void *arg, const struct artifact_spec *spec,
    const char *dest, struct artifact_result *res, char **cause)
{
	struct verify		*v = NULL;
	struct local_check	 lc;
	char			*nocause = NULL;
	int			 ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	if (spec_check(spec, cause) != 0)
		goto out;
	if (spec->public_key != NULL || manifest_pin(spec->sha256) != NULL) {
		set_cause(cause, "signatures and manifests are checked by artifact_fetch, "
		    "not artifact_unpack");
		goto out;
	}
	if ((v = verify_new(cause)) == NULL)
		goto out;
	verify_source(v, read, arg, spec->halt);
	lc.v = v;
	lc.spec = spec;
	ret = unpack_stream(verify_read, v, local_check, &lc, spec, dest, res, cause);
	res->bytes = verify_bytes(v);
out:
	verify_free(v);
	free(nocause);
	return ret;
}

/* The detached signature is in: from where (query withheld) and how big. */
static void
log_signature(const char *url, size_t len)
{
	char	*u = http_url_shown(url);

	log_debug("artifact: signature %s fetched: %zu bytes", u, len);
	free(u);
}

/* Load the public key and fetch the signature at url, ready to verify as bytes stream. */
static int
source_signature(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    const char *url, char **cause)
{
	struct buf	 sig = { NULL, 0, 0 };
	char		*shown;
	int		 ret = -1;

	if (verify_key(src->v, spec->public_key, cause) != 0)
		goto out;
	if (download_small(aws, spec->halt, url, SIG_MAX, &sig, cause) != 0) {
		set_cause(cause, "signature file: %s", *cause);
		goto out;
	}
	if (sig.len == 0) {
		shown = http_url_shown(url);
		set_cause(cause, "signature file %s is empty", shown);
		free(shown);
		goto out;
	}
	log_signature(url, sig.len);
	if (verify_signature(src->v, sig.data, sig.len, cause) != 0)
		goto out;
	ret = 0;
out:
	buf_free(&sig);
	return ret;
}

/* Bytes in memory as a reader: the manifest on its way through verify. */
struct memsrc {
	const char	*p;
	size_t		 left;
};

static ssize_t
mem_read(void *arg, void *p, size_t len, char **cause)
{
	struct memsrc	*ms = arg;

	(void)cause;
	if (len > ms->left)
		len = ms->left;
	memcpy(p, ms->p, len);
	ms->p += len;
	ms->left -= len;
	return (ssize_t)len;
}

/* Run the manifest's bytes through verify: its digest against hex, its signature. */
static int
manifest_check(struct source *src, const struct buf *mf, const char *hex, char **cause)
{
	struct memsrc	 ms;
	char		 got[65], block[4096];
	int		 digest_ok = 0;
	ssize_t		 n;

	ms.p = mf->data;
	ms.left = mf->len;
	verify_source(src->v, mem_read, &ms, NULL);
	while ((n = verify_read(src->v, block, sizeof block, cause)) > 0)
		;
	if (n < 0)
		return -1;
	if (verify_finish(src->v, hex, got, &digest_ok, &src->manifest_signed, cause) != 0)
		return set_cause(cause, "manifest: %s", *cause);
	return 0;
}

/*
 * Fetch {url}.manifest (and {url}.manifest.sig with a public key), check it
 * against the pinned digest and the signature, and only then parse it.
 */
static int
source_manifest(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    const char *hex, char **cause)
{
	struct buf	 mf = { NULL, 0, 0 };
	char		*url, *sig_url = NULL;
	int		 ret = -1;

	url = xasprintf("%s.manifest", spec->url);
	if (spec->public_key != NULL) {
		sig_url = xasprintf("%s.sig", url);
		if (source_signature(src, aws, spec, sig_url, cause) != 0)
			goto out;
	}
	/* One byte over the limit: a longer manifest is refused by the parser. */
	if (download_small(aws, spec->halt, url, MANIFEST_MAX + 1, &mf, cause) != 0) {
		set_cause(cause, "manifest: %s", *cause);
		goto out;
	}
	if (manifest_check(src, &mf, hex, cause) != 0)
		goto out;
	if (manifest_parse(mf.data, mf.len, &src->m, cause) != 0)
		goto out;
	log_debug("artifact: manifest verified: %lld bytes in %zu chunks of %lld",
	    src->m.size, src->m.nchunks, src->m.chunk_size);
	ret = 0;
out:
	buf_free(&mf);
	free(sig_url);
	free(url);
	return ret;
}

/* Connections for nchunks chunks: as configured, one per chunk at most, as many as fit. */
static int
connections(const struct artifact_spec *spec, long long chunk_size, size_t nchunks)
{
	int	n = spec->connections;

	if ((size_t)n > nchunks)
		n = (int)nchunks;
	return pfetch_fit(chunk_size, n);
}

/* A verified manifest and n connections: ranged GETs of its chunks, in parallel. */
static int
source_parallel(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    int n, const struct download_opts *opts, char **cause)
{
	if ((src->pf = pfetch_new(aws, spec->url, &src->m, n, opts, cause)) == NULL)
		return -1;
	src->ck = chunks_new(&src->m, pfetch_read, src->pf, 1, spec->halt);
	src->read = chunks_read;
	src->arg = src->ck;
	return 0;
}

/* Without a manifest: the chunks of an artifact of size bytes. */
static size_t
sized_chunks(long long size)
{
	return (size_t)((size + PAR_CHUNK - 1) / PAR_CHUNK);
}

/*
 * No manifest, but the first answer gave the size and offered ranges: drop
 * that GET (only its headers were read) and fetch the artifact in chunks over several
 * connections, handed in order to the whole-file digest and signature.
 */
static int
source_sized(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    int n, const struct download_opts *opts, char **cause)
{
	src->m.size = download_total(src->dl);
	src->m.chunk_size = PAR_CHUNK;
	src->m.nchunks = sized_chunks(src->m.size);
	download_free(src->dl);
	src->dl = NULL;
	if ((src->pf = pfetch_new(aws, spec->url, &src->m, n, opts, cause)) == NULL)
		return -1;
	verify_source(src->v, pfetch_read, src->pf, spec->halt);
	src->read = verify_read;
	src->arg = src->v;
	return 0;
}

/* Everything before the first artifact byte: checks, key, signature, the download. */
static int
source_open(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    char **cause)
{
	struct download_opts	 opts;
	const char		*hex;
	int			 n;

	src->spec = spec;
	if (spec->url == NULL || *spec->url == '\0')
		return set_cause(cause, "no artifact URL");
	if (spec_check(spec, cause) != 0)
		return -1;
	if ((src->v = verify_new(cause)) == NULL)
		return -1;
	if ((hex = manifest_pin(spec->sha256)) != NULL) {
		if (source_manifest(src, aws, spec, hex, cause) != 0)
			return -1;
	} else if (spec->public_key != NULL) {
		if (spec->signature_url == NULL)
			return set_cause(cause, "a public key but no signature URL");
		if (source_signature(src, aws, spec, spec->signature_url, cause) != 0)
			return -1;
	}
	memset(&opts, 0, sizeof opts);
	opts.stall_timeout = spec->stall_timeout;
	opts.halt = spec->halt;
	opts.tick = spec->tick;
	opts.tick_arg = spec->tick_arg;
	if (hex != NULL && (n = connections(spec, src->m.chunk_size, src->m.nchunks)) > 1)
		return source_parallel(src, aws, spec, n, &opts, cause);
	if ((src->dl = download_new(aws, spec->url, &opts, cause)) == NULL)
		return -1;
	log_debug("artifact: download of %s starts (%s, %s)", download_log_url(src->dl),
	    hex != NULL ? "manifest pinned" : spec->sha256 != NULL ? "sha256 pinned" :
	    "no sha256 pinned", spec->public_key != NULL ? "signature to check" :
	    "no signature");
	if (download_start(src->dl, cause) != 0)
		return -1;
	if (hex == NULL && spec->connections > 1 && download_ranges(src->dl) &&
	    download_total(src->dl) > 2 * PAR_CHUNK &&
	    (n = connections(spec, PAR_CHUNK, sized_chunks(download_total(src->dl)))) > 1)
		return source_sized(src, aws, spec, n, &opts, cause);
	if (hex != NULL) {
		src->ck = chunks_new(&src->m, download_read, src->dl, 0, spec->halt);
		src->read = chunks_read;
		src->arg = src->ck;
	} else {
		verify_source(src->v, download_read, src->dl, spec->halt);
		src->read = verify_read;
		src->arg = src->v;
	}
	return 0;
}

/* Bytes read from the source so far. */
static long long
source_bytes(const struct source *src)
{
	if (src->ck != NULL)
		return chunks_bytes(src->ck);
	return src->v != NULL ? verify_bytes(src->v) : 0;
}

/* The source is read to its end: check its digest (or the manifest's) and signature. */
static int
source_check(void *arg, struct artifact_result *res, char **cause)
{
	struct source	*src = arg;

	if (src->ck == NULL)
		return check_bytes(src->v, src->spec, res, cause);
	res->bytes = chunks_bytes(src->ck);
	if (chunks_finish(src->ck, res->sha256, cause) != 0)
		return -1;
	res->digest_ok = 1;
	res->signature_ok = src->manifest_signed;
	return 0;
}

/* Range requests made after broken transfers. */
static int
source_resumes(const struct source *src)
{
	if (src->pf != NULL)
		return pfetch_resumes(src->pf);
	return src->dl != NULL ? download_resumes(src->dl) : 0;
}

/* The end of a good download: size, digest and resumes in one line. */
static void
log_done(const struct source *src, const struct artifact_result *res)
{
	char	*u = http_url_shown(src->spec->url);

	log_debug("artifact: %s done: %lld bytes, %d resume(s), sha256 %s (%s), signature %s",
	    u, res->bytes, source_resumes(src), res->sha256,
	    res->digest_ok ? "digest ok" : "no digest to compare",
	    res->signature_ok ? "verified" : "not checked");
	free(u);
}

/* What the source read, whatever happened: the bytes and the resumes. */
static void
source_close(struct source *src, struct artifact_result *res)
{
	res->bytes = source_bytes(src);
	res->resumes = source_resumes(src);
	chunks_free(src->ck);
	pfetch_free(src->pf);
	manifest_free(&src->m);
	verify_free(src->v);
	download_free(src->dl);
}

/* Copy the source's bytes to fd, at most max of them. */
static int
copy_to(struct source *src, const struct artifact_spec *spec, long long max, int fd,
    const char *tmp, char **cause)
{
	char	*buf, *why = NULL;
	ssize_t	 n;
	int	 ret = -1;

	buf = xmalloc(READ_SIZE);
	while ((n = src->read(src->arg, buf, READ_SIZE, &why)) > 0) {
		if (source_bytes(src) > max) {
			free(why);
			why = http_url_shown(spec->url);
			set_cause(cause, "%s: larger than %lld bytes", why, max);
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

/* A reader over a file descriptor: the staged artifact. */
static ssize_t
fd_read(void *arg, void *p, size_t len, char **cause)
{
	int	*fd = arg;
	ssize_t	 n;

	do
		n = read(*fd, p, len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return set_cause(cause, "staged artifact: %s", strerror(errno));
	return n;
}

/*
 * A staging file beside dest, unlinked at once: it vanishes with the
 * descriptor whatever happens, a crash included.
 */
static int
stage_open(const char *dest, char **cause)
{
	char	*tmpl;
	size_t	 len = strlen(dest);
	int	 fd;

	/* "DIR/" is DIR: its staging file is beside it, not in it (it does not exist yet). */
	while (len > 1 && dest[len - 1] == '/')
		len--;
	tmpl = xasprintf("%.*s.download-XXXXXX", (int)len, dest);
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) == -1)
		set_cause(cause, "staging file %s: %s", tmpl, strerror(errno));
	else if (unlink(tmpl) == -1) {
		set_cause(cause, "unlink %s: %s", tmpl, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(tmpl);
	return fd;
}

/*
 * Pinned by a digest or signed over the whole file: download it to a staging
 * file while hashing, check, and only then unpack the staged bytes.
 */
static int
unpack_staged(struct source *src, const struct artifact_spec *spec, const char *dest,
    struct artifact_result *res, char **cause)
{
	long long	 max;
	int		 fd, ret = -1;

	max = spec->max_size > 0 ? spec->max_size : DEF_SIZE;
	if ((fd = stage_open(dest, cause)) == -1)
		return -1;
	if (copy_to(src, spec, max, fd, "staging file", cause) != 0)
		goto out;
	if (source_check(src, res, cause) != 0)
		goto out;
	log_debug("artifact: %lld bytes staged and verified; unpacking", res->bytes);
	if (lseek(fd, 0, SEEK_SET) == -1) {
		set_cause(cause, "staging file: %s", strerror(errno));
		goto out;
	}
	ret = unpack_stream(fd_read, &fd, NULL, NULL, spec, dest, res, cause);
out:
	if (ret != 0)
		res->digest_ok = res->signature_ok = 0;
	close(fd);
	return ret;
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
	/* With a manifest every byte the source gives is verified already: one pass. */
	if (src.ck != NULL)
		ret = unpack_stream(src.read, src.arg, source_check, &src, spec, dest, res,
		    cause);
	else
		ret = unpack_staged(&src, spec, dest, res, cause);
	if (ret == 0)
		log_done(&src, res);
out:
	source_close(&src, res);
	free(nocause);
	return ret;
}

int
artifact_fetch_file(struct aws *aws, const struct artifact_spec *spec, const char *path,
    struct artifact_result *res, char **cause)
{
	struct source	 src;
	long long	 max;
	char		*tmp = NULL, *nocause = NULL;
	int		 fd = -1, r, ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	memset(&src, 0, sizeof src);
	max = spec->max_size > 0 ? spec->max_size : DEF_SIZE;
	if (source_open(&src, aws, spec, cause) != 0)
		goto out;
	/* Made exclusively under an unpredictable name: nobody can have it ready for us. */
	if ((fd = fs_tmpfile(path, &tmp, cause)) == -1)
		goto out;
	if (copy_to(&src, spec, max, fd, tmp, cause) != 0)
		goto out;
	if (source_check(&src, res, cause) != 0)
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
	/* Renamed over a file; written into a FIFO or a device, never renamed over one. */
	if (fs_commit(tmp, path, cause) != 0)
		goto out;
	res->unpacked = res->bytes;
	ret = 0;
	log_done(&src, res);
out:
	if (fd != -1)
		close(fd);
	if (ret != 0) {
		res->digest_ok = res->signature_ok = 0;
		if (tmp != NULL)
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
