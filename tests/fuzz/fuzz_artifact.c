/*
 * fuzz_artifact.c - the release unpacker: artifact_unpack (gzip stage, libarchive's
 * tar reader, the extraction policy, limits, digest, cleanup on failure).
 *
 * Each input is unpacked into a fresh directory under $FUZZ_TMPDIR (else /tmp),
 * removed again before the next input:
 *
 *	TMP/asg-fuzz-artifact.XXXXXX/	scratch, made and removed per input
 *	    canary			a file the archive must never touch
 *	    w/				holds dest only
 *	        dest/			artifact_unpack's destination (must not exist)
 *
 * How the bytes are delivered depends on a hash of the input length, so that
 * length mutations of one archive reach every path (h = len * 2654435761):
 *	wrap		h >> 30: 0 the bytes as they are (always, for input that
 *			starts like gzip or zstd); 1 gzip-compressed here, one
 *			member; 2 two members (split in the middle); 3 one member
 *			followed by trailing garbage
 *	reads		h >> 28 & 3: all at once, 1 byte then the rest, 512, 7
 *	sha256		(h >> 20 & 255) % 3: none expected, the right one, a wrong one
 *	reader fails	(h >> 16 & 15) == 0: -1 instead of 0 at the end
 *
 * Checks (the documented contract, artifact.h and README "Install"):
 *	- failure: a cause, and dest does not exist any more
 *	- success: only regular files, directories and symlinks below dest; no
 *	  setuid/setgid bit; no symlink resolving outside dest; at most max_size
 *	  bytes (counted and on disk) and max_entries entries; res.bytes and
 *	  res.sha256 cover every input byte; a wrong expected digest or a
 *	  failing reader never succeeds
 *	- nothing appears beside dest, the canary is untouched, no descriptor leaks
 *
 * FUZZ_VERBOSE=1 in the environment prints each input's outcome.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "artifact.h"
#include "fs.h"
#include "util.h"

#include "fuzz.h"

#define MAX_SIZE	(256 * 1024)	/* small: the size limit is part of what is fuzzed */
#define MAX_ENTRIES	200
#define CANARY		"canary: the archive must not reach this file\n"

struct feeder {
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	int		 chunking;
	int		 fail_at_end;
	int		 calls;
};

static ssize_t
feeder_read(void *arg, void *p, size_t room, char **cause)
{
	struct feeder	*f = arg;
	size_t		 n;

	f->calls++;
	if (f->off == f->len) {
		if (f->fail_at_end)
			return set_cause(cause, "fuzz: reader failed at the end");
		return 0;
	}
	n = f->len - f->off;
	switch (f->chunking) {
	case 1:
		if (f->calls == 1)
			n = 1;
		break;
	case 2:
		if (n > 512)
			n = 512;
		break;
	case 3:
		if (n > 7)
			n = 7;
		break;
	}
	if (n > room)
		n = room;
	memcpy(p, f->data + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

/* gzip data[0..len) as one member onto out. */
static void
gzip_member(struct buf *out, const uint8_t *data, size_t len)
{
	z_stream	z;
	unsigned char	chunk[16384];
	int		r;

	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof chunk;
		r = deflate(&z, Z_FINISH);
		if (r != Z_OK && r != Z_STREAM_END)
			abort();
		buf_add(out, chunk, sizeof chunk - z.avail_out);
	} while (r != Z_STREAM_END);
	deflateEnd(&z);
}

static void
sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;

	if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		abort();
	hex_encode(md, mdlen, out);
}

struct walk {
	char		 root[PATH_MAX];	/* realpath of dest */
	long long	 bytes;
};

/* Everything below dest, without following symlinks. */
static void
check_tree(struct walk *w, const char *path, int depth)
{
	struct stat	 sb;
	struct dirent	*de;
	DIR		*d;
	char		*sub, resolved[PATH_MAX];
	size_t		 rl;

	FUZZ_CHECK(depth < 300, "tree deeper than the path limit: %s", path);
	FUZZ_CHECK(lstat(path, &sb) == 0, "lstat %s: %s", path, strerror(errno));
	FUZZ_CHECK((sb.st_mode & (S_ISUID | S_ISGID)) == 0, "setuid/setgid kept: %s (%o)",
	    path, (unsigned)sb.st_mode);
	/* A symlink's mode is always 0777 and means nothing. */
	FUZZ_CHECK(S_ISLNK(sb.st_mode) || (sb.st_mode & (S_ISVTX | S_IWGRP | S_IWOTH)) == 0,
	    "sticky or group/other write kept: %s (%o)", path, (unsigned)sb.st_mode);
	if (S_ISREG(sb.st_mode)) {
		/* Hard links share their bytes (and may only link inside dest). */
		w->bytes += sb.st_size / (off_t)sb.st_nlink;
		return;
	}
	if (S_ISLNK(sb.st_mode)) {
		/* Dangling or looping is fine; resolving outside dest is not. */
		if (realpath(path, resolved) != NULL) {
			rl = strlen(w->root);
			FUZZ_CHECK(strncmp(resolved, w->root, rl) == 0 &&
			    (resolved[rl] == '\0' || resolved[rl] == '/'),
			    "symlink %s resolves outside dest, to %s", path, resolved);
		}
		return;
	}
	FUZZ_CHECK(S_ISDIR(sb.st_mode), "%s has type %o", path, (unsigned)(sb.st_mode & S_IFMT));
	FUZZ_CHECK((d = opendir(path)) != NULL, "opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		check_tree(w, sub, depth + 1);
		free(sub);
	}
	closedir(d);
}

/* The names in dir other than "." and ".."; only allowed may be there. */
static void
check_only(const char *dir, const char *allowed1, const char *allowed2)
{
	struct dirent	*de;
	DIR		*d;

	FUZZ_CHECK((d = opendir(dir)) != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		FUZZ_CHECK((allowed1 != NULL && strcmp(de->d_name, allowed1) == 0) ||
		    (allowed2 != NULL && strcmp(de->d_name, allowed2) == 0),
		    "'%s' appeared in %s beside the destination", de->d_name, dir);
	}
	closedir(d);
}

static void
check_canary(const char *path)
{
	char	buf[sizeof CANARY + 16];
	ssize_t	n;
	int	fd;

	FUZZ_CHECK((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) != -1,
	    "canary %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof buf);
	close(fd);
	FUZZ_CHECK(n == (ssize_t)strlen(CANARY) && memcmp(buf, CANARY, (size_t)n) == 0,
	    "canary %s changed", path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	struct feeder		 f;
	struct buf		 wrapped = { NULL, 0, 0 };
	struct walk		 w;
	struct stat		 sb;
	char			 scratch[PATH_MAX], digest[65], *wdir, *dest, *canary;
	char			*cause = NULL;
	const uint8_t		*bytes = data;
	size_t			 nbytes = len, half;
	uint32_t		 h;
	int			 fds, fd, ret, wrap, shamode;

	fds = fuzz_open_fds();
	h = (uint32_t)len * 2654435761u;
	wrap = (int)(h >> 30);
	if ((len >= 2 && data[0] == 0x1f && data[1] == 0x8b) ||
	    (len >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0))
		wrap = 0;
	shamode = (int)((h >> 20 & 255) % 3);
	if (wrap != 0) {
		half = len / 2;
		if (wrap == 2) {
			gzip_member(&wrapped, data, half);
			gzip_member(&wrapped, data + half, len - half);
		} else
			gzip_member(&wrapped, data, len);
		if (wrap == 3)
			buf_add(&wrapped, "trailing garbage", 16);
		bytes = (const uint8_t *)wrapped.data;
		nbytes = wrapped.len;
	}

	snprintf(scratch, sizeof scratch, "%s/asg-fuzz-artifact.XXXXXX", fuzz_tmpdir());
	FUZZ_CHECK(mkdtemp(scratch) != NULL, "mkdtemp %s: %s", scratch, strerror(errno));
	wdir = xasprintf("%s/w", scratch);
	dest = xasprintf("%s/dest", wdir);
	canary = xasprintf("%s/canary", scratch);
	FUZZ_CHECK(mkdir(wdir, 0700) == 0, "mkdir %s", wdir);
	fd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd != -1 && write(fd, CANARY, strlen(CANARY)) == (ssize_t)strlen(CANARY),
	    "canary");
	close(fd);

	memset(&spec, 0, sizeof spec);
	spec.url = "fuzz://input";
	spec.max_size = MAX_SIZE;
	spec.max_entries = MAX_ENTRIES;
	sha256_hex(bytes, nbytes, digest);
	if (shamode == 1)
		spec.sha256 = digest;
	else if (shamode == 2) {
		spec.sha256 = xstrdup(digest);
		((char *)spec.sha256)[0] = digest[0] == '0' ? '1' : '0';
	}
	memset(&f, 0, sizeof f);
	f.data = bytes;
	f.len = nbytes;
	f.chunking = (int)(h >> 28 & 3);
	f.fail_at_end = (h >> 16 & 15) == 0;

	ret = artifact_unpack(feeder_read, &f, &spec, dest, &res, &cause);
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "artifact_unpack: %d (wrap %d, reads %d, sha256 %d, reader fails %d)"
		    " format %s, %ld entries, %lld bytes unpacked: %s\n", ret, wrap, f.chunking,
		    shamode, f.fail_at_end, res.format != NULL ? res.format : "-", res.entries,
		    res.unpacked, cause != NULL ? cause : "ok");

	check_canary(canary);
	check_only(scratch, "w", "canary");
	if (ret != 0) {
		FUZZ_CHECK(ret == -1 && cause != NULL, "failure without a cause");
		FUZZ_CHECK(lstat(dest, &sb) == -1 && errno == ENOENT,
		    "failed (%s) but left %s behind", cause, dest);
		FUZZ_CHECK(res.format == NULL, "failure kept a format");
		check_only(wdir, NULL, NULL);
	} else {
		FUZZ_CHECK(shamode != 2, "a wrong sha256 was accepted");
		FUZZ_CHECK(!f.fail_at_end, "a failing reader was accepted");
		FUZZ_CHECK(cause == NULL, "success with a cause: %s", cause);
		FUZZ_CHECK(f.off == f.len, "success before the end of the input (%zu of %zu)",
		    f.off, f.len);
		FUZZ_CHECK(res.bytes == (long long)nbytes, "res.bytes %lld of %zu", res.bytes,
		    nbytes);
		FUZZ_CHECK(strcmp(res.sha256, digest) == 0, "digest %s, input's %s",
		    res.sha256, digest);
		FUZZ_CHECK(res.digest_ok == (shamode == 1), "digest_ok %d", res.digest_ok);
		FUZZ_CHECK(res.signature_ok == 0, "signature_ok without a signature");
		FUZZ_CHECK(res.format != NULL && (strcmp(res.format, "tar") == 0 ||
		    strcmp(res.format, "tar.gz") == 0 || strcmp(res.format, "tar.zst") == 0),
		    "format %s", res.format != NULL ? res.format : "(null)");
		FUZZ_CHECK(wrap == 0 || strcmp(res.format, "tar.gz") == 0,
		    "gzip input reported as %s", res.format);
		FUZZ_CHECK(res.unpacked >= 0 && res.unpacked <= MAX_SIZE, "unpacked %lld",
		    res.unpacked);
		FUZZ_CHECK(res.entries > 0 && res.entries <= MAX_ENTRIES, "entries %ld",
		    res.entries);
		check_only(wdir, "dest", NULL);
		FUZZ_CHECK(realpath(dest, w.root) != NULL, "realpath %s", dest);
		w.bytes = 0;
		check_tree(&w, dest, 0);
		FUZZ_CHECK(w.bytes <= MAX_SIZE, "%lld bytes on disk", w.bytes);
	}

	FUZZ_CHECK(fs_rmtree(scratch, &cause) == 0, "rmtree %s: %s", scratch, cause);
	FUZZ_CHECK(lstat(scratch, &sb) == -1, "%s still there", scratch);
	FUZZ_CHECK(fuzz_open_fds() == fds, "descriptors: %d before, %d after", fds,
	    fuzz_open_fds());
	artifact_result_free(&res);
	if (shamode == 2)
		free((char *)spec.sha256);
	free(cause);
	free(wdir);
	free(dest);
	free(canary);
	buf_free(&wrapped);
	return 0;
}
