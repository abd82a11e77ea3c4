/* artifact.c - fetch, verify and unpack a release in one streaming pass. */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <zlib.h>

#include "artifact.h"
#include "aws.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define READ_SIZE	(128 * 1024)	/* one pull from the source */
#define SIG_MAX		(16 * 1024)	/* a detached signature is far smaller */
#define MAX_RESUMES	5
#define DEF_ENTRIES	100000
#define DEF_SIZE	(4LL << 30)	/* when max_size is 0, as the config's default */
#define DEF_STALL	30
#define MAX_TRAILING	(64LL << 20)	/* bytes after the end of the archive */
#define MAX_DEPTH	256		/* path components; keeps rmtree's fds bounded */
#define MAX_PATH	4095

/* The bytes of an artifact on their way in: hashed and signature-checked as read. */
struct feed {
	artifact_read_fn	 read;
	void			*arg;
	volatile int		*stop;
	EVP_MD_CTX		*md;
	EVP_MD_CTX		*vctx;		/* signature check, or NULL */
	unsigned char		*buf;
	long long		 bytes;
	int			 eof;
	int			 failed;
	char			*cause;		/* why the source failed */
};

/*
 * Between the feed and libarchive. A gzip artifact is inflated here rather
 * than by libarchive, which (3.6) never checks a member's CRC-32 or length:
 * zlib does, so corrupt data fails even with no digest to compare. z.next_in
 * and z.avail_in are the unread input in feed->buf in every mode.
 */
enum stage_mode {
	STAGE_DETECT,
	STAGE_RAW,		/* tar or tar.zst: libarchive has it as it is */
	STAGE_GZIP,
	STAGE_GZIP_END,		/* past the last member: the rest is trailing bytes */
};

struct stage {
	struct feed	*feed;
	z_stream	 z;
	enum stage_mode	 mode;
	int		 zinit;
	unsigned char	*out;
};

/* A detached signature and the key to check it with. */
struct sigcheck {
	EVP_PKEY	*key;
	EVP_MD_CTX	*ctx;
	struct buf	 sig;
};

/* A download that resumes with a Range request when the transfer breaks. */
struct download {
	struct aws		*aws;
	const char		*url;
	char			*log_url;	/* url without what may be secret */
	char			*bucket;	/* s3:// only */
	char			*key;
	double			 timeout;
	volatile int		*stop;
	void			(*tick)(void *);
	void			*tick_arg;
	struct http_stream	*st;
	long long		 offset;	/* bytes delivered so far */
	long long		 total;		/* the object's size, or -1 */
	char			*etag;
	int			 resumes;
};

/* Everything artifact_fetch and artifact_fetch_file read through. */
struct source {
	struct download	 dl;
	struct sigcheck	 sc;
	struct feed	 feed;
};

/* A directory whose mtime is set once nothing more is written into it. */
struct dirtime {
	char		*path;
	struct timespec	 ts[2];
};

struct unpack {
	struct archive	*a;
	struct feed	*feed;
	struct stage	 stage;
	int		 rootfd;
	char		*cdir;		/* cached parent directory, or NULL */
	int		 cfd;
	long long	 max_size;
	long long	 max_entries;
	long long	 unpacked;
	long		 entries;
	struct dirtime	*dirs;
	size_t		 ndirs;
	size_t		 dirscap;
	const char	*name;		/* the entry being written, as in the archive */
};

static int	entry_fail(const char *, int, char **, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static int	feed_fail(struct feed *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* Fail an entry with a cause that names it; unsafe entries say so. */
static int
entry_fail(const char *name, int unsafe, char **cause, const char *fmt, ...)
{
	va_list	 ap;
	char	*shown, *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	shown = str_vis(name);
	set_cause(cause, "%sentry '%s': %s", unsafe ? "unsafe " : "", shown, msg);
	free(shown);
	free(msg);
	return -1;
}

static const char *
ssl_error(void)
{
	const char	*s;

	s = ERR_reason_error_string(ERR_peek_last_error());
	ERR_clear_error();
	return s != NULL ? s : "unknown OpenSSL error";
}

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

static int
feed_init(struct feed *f, artifact_read_fn read, void *arg, volatile int *stop,
    char **cause)
{
	memset(f, 0, sizeof *f);
	f->read = read;
	f->arg = arg;
	f->stop = stop;
	if ((f->md = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		return set_cause(cause, "sha256: %s", ssl_error());
	f->buf = xmalloc(READ_SIZE);
	return 0;
}

static void
feed_free(struct feed *f)
{
	EVP_MD_CTX_free(f->md);
	free(f->buf);
	free(f->cause);
	memset(f, 0, sizeof *f);
}

/* Mark the feed failed with a cause; always -1. */
static int
feed_fail(struct feed *f, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	free(f->cause);
	f->cause = xvasprintf(fmt, ap);
	va_end(ap);
	f->failed = 1;
	return -1;
}

/*
 * Pull the next bytes from the source into f->buf at offset at, hashing
 * them: >0 bytes read, 0 at the end, -1 with f->cause.
 */
static ssize_t
feed_read(struct feed *f, size_t at)
{
	ssize_t	n;

	if (f->failed)
		return -1;
	if (f->eof)
		return 0;
	if (f->stop != NULL && *f->stop) {
		set_cause(&f->cause, "stopped");
		goto fail;
	}
	if (at >= READ_SIZE)
		return feed_fail(f, "feed buffer full");
	n = f->read(f->arg, f->buf + at, READ_SIZE - at, &f->cause);
	if (n < 0) {
		if (f->cause == NULL)
			f->cause = xstrdup("read failed");
		goto fail;
	}
	if (n == 0) {
		f->eof = 1;
		return 0;
	}
	if ((size_t)n > READ_SIZE - at) {
		set_cause(&f->cause, "reader returned %zd bytes for %zu", n, READ_SIZE - at);
		goto fail;
	}
	if (EVP_DigestUpdate(f->md, f->buf + at, (size_t)n) != 1) {
		set_cause(&f->cause, "sha256: %s", ssl_error());
		goto fail;
	}
	if (f->vctx != NULL &&
	    EVP_DigestVerifyUpdate(f->vctx, f->buf + at, (size_t)n) != 1) {
		set_cause(&f->cause, "signature: %s", ssl_error());
		goto fail;
	}
	f->bytes += n;
	return n;
fail:
	f->failed = 1;
	return -1;
}

/* All bytes are in: record the digest, then compare it and check the signature. */
static int
feed_finish(struct feed *f, const struct artifact_spec *spec, const struct sigcheck *sc,
    struct artifact_result *res, char **cause)
{
	unsigned char	d[EVP_MAX_MD_SIZE];
	unsigned int	dlen = 0;
	char		want[65];
	size_t		i;
	int		r;

	res->bytes = f->bytes;
	if (EVP_DigestFinal_ex(f->md, d, &dlen) != 1 || dlen != 32)
		return set_cause(cause, "sha256: %s", ssl_error());
	hex_encode(d, dlen, res->sha256);
	if (spec->sha256 != NULL) {
		if (strcasecmp(spec->sha256, res->sha256) != 0) {
			for (i = 0; i < sizeof want - 1 && spec->sha256[i] != '\0'; i++)
				want[i] = (char)tolower((unsigned char)spec->sha256[i]);
			want[i] = '\0';
			return set_cause(cause, "sha256 mismatch: expected %s, got %s", want,
			    res->sha256);
		}
		res->digest_ok = 1;
	}
	if (f->vctx != NULL) {
		r = EVP_DigestVerifyFinal(f->vctx, (const unsigned char *)sc->sig.data,
		    sc->sig.len);
		ERR_clear_error();
		if (r != 1) {
			return set_cause(cause, "signature does not verify with %s",
			    spec->public_key);
		}
		res->signature_ok = 1;
	}
	return 0;
}

/*
 * Reduce an archive path to "a/b/c" with no empty or "." components. Absolute
 * paths and ".." components are rejected rather than resolved, so what is
 * left can only name something below dest.
 */
static int
path_clean(const char *in, char **out, const char **why)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*p, *e;
	size_t		 n, comps = 0;
	long		 level = 0;
	int		 dotdot = 0, leaves = 0, ret = -1;

	*out = NULL;
	if (*in == '\0') {
		*why = "empty name";
		goto out;
	}
	if (*in == '/') {
		*why = "absolute path";
		goto out;
	}
	for (p = in; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		e = strchrnul(p, '/');
		n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			dotdot = 1;
			if (--level < 0)
				leaves = 1;
			continue;
		}
		if (n > NAME_MAX) {
			*why = "name too long";
			goto out;
		}
		if (b.len > 0)
			buf_addc(&b, '/');
		buf_add(&b, p, n);
		comps++;
		level++;
	}
	if (dotdot) {
		/* Refused even when it stays inside: nothing legitimate needs it. */
		*why = leaves ? "path leaves the release" : "path has a '..' component";
		goto out;
	}
	if (b.len > MAX_PATH) {
		*why = "path too long";
		goto out;
	}
	if (comps > MAX_DEPTH) {
		*why = "path too deep";
		goto out;
	}
	*out = buf_take(&b);
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

/*
 * Whether a symlink at clean path link may point at target. Resolved from the
 * link's directory, the target may climb with leading ".." no higher than
 * dest, then only descend: a ".." after a name could climb out through
 * another symlink, so it is refused too.
 */
static const char *
link_target_bad(const char *link, const char *target)
{
	const char	*p, *e;
	size_t		 n, depth = 0, ups = 0;
	int		 named = 0;

	if (*target == '\0')
		return "is empty";
	if (*target == '/')
		return "is absolute";
	if (strlen(target) > MAX_PATH)
		return "is too long";
	for (p = link; *p != '\0'; p++) {
		if (*p == '/')
			depth++;
	}
	for (p = target; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		e = strchrnul(p, '/');
		n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (named)
				return "has '..' after a name";
			if (++ups > depth)
				return "leaves the release";
		} else
			named = 1;
	}
	return NULL;
}

static void
cache_drop(struct unpack *u)
{
	if (u->cdir != NULL && u->cfd != -1)
		close(u->cfd);
	free(u->cdir);
	u->cdir = NULL;
	u->cfd = -1;
}

/* Fail an entry because of the directory at the first len bytes of rel. */
static int
walk_fail(struct unpack *u, int unsafe, const char *pre, const char *rel, size_t len,
    const char *post, char **cause)
{
	char	*prefix, *shown;

	prefix = xstrndup(rel, len);
	shown = str_vis(prefix);
	entry_fail(u->name, unsafe, cause, "%s'%s'%s", pre, shown, post);
	free(shown);
	free(prefix);
	return -1;
}

/*
 * Open the directory at the first len bytes of clean path rel one component
 * at a time with O_NOFOLLOW, so a symlink made by an earlier entry is never
 * followed; missing directories are made when create is set.
 */
static int
walk(struct unpack *u, const char *rel, size_t len, int create, const char *what,
    int *fdp, char **cause)
{
	struct stat	 sb;
	char		 name[NAME_MAX + 1], *msg;
	size_t		 i = 0, n;
	int		 fd = u->rootfd, next = -1, ret = -1;

	*fdp = -1;
	while (i < len) {
		n = 0;
		while (i + n < len && rel[i + n] != '/')
			n++;
		if (n == 0 || n > NAME_MAX) {
			walk_fail(u, 1, what, rel, len, " is not a clean path", cause);
			goto out;
		}
		memcpy(name, rel + i, n);
		name[n] = '\0';
		next = openat(fd, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
		if (next == -1 && errno == ENOENT && create) {
			if (mkdirat(fd, name, 0700) == -1) {
				msg = xasprintf(": %s", strerror(errno));
				walk_fail(u, 0, "mkdir ", rel, i + n, msg, cause);
				free(msg);
				goto out;
			}
			next = openat(fd, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
			if (next != -1 && fchmod(next, 0755) == -1) {
				msg = xasprintf(": %s", strerror(errno));
				walk_fail(u, 0, "chmod ", rel, i + n, msg, cause);
				free(msg);
				goto out;
			}
		}
		if (next == -1) {
			if (errno == ELOOP || errno == ENOTDIR) {
				if (fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(sb.st_mode))
					walk_fail(u, 1, what, rel, i + n, " is a symlink", cause);
				else {
					walk_fail(u, 1, what, rel, i + n, " is not a directory",
					    cause);
				}
			} else if (errno == ENOENT)
				walk_fail(u, 1, what, rel, i + n, " does not exist", cause);
			else {
				msg = xasprintf(": %s", strerror(errno));
				walk_fail(u, 0, "open ", rel, i + n, msg, cause);
				free(msg);
			}
			goto out;
		}
		if (fd != u->rootfd)
			close(fd);
		fd = next;
		next = -1;
		i += n + 1;
	}
	*fdp = fd;
	fd = -1;
	ret = 0;
out:
	if (next != -1)
		close(next);
	if (fd != -1 && fd != u->rootfd)
		close(fd);
	return ret;
}

/* The directory an entry goes into, and its last component; entries come grouped, so cache it. */
static int
open_parent(struct unpack *u, const char *clean, int *fdp, const char **base, char **cause)
{
	const char	*slash;
	size_t		 len;
	int		 fd;

	if ((slash = strrchr(clean, '/')) == NULL) {
		*fdp = u->rootfd;
		*base = clean;
		return 0;
	}
	len = (size_t)(slash - clean);
	*base = slash + 1;
	if (u->cdir != NULL && strlen(u->cdir) == len && memcmp(u->cdir, clean, len) == 0) {
		*fdp = u->cfd;
		return 0;
	}
	if (walk(u, clean, len, 1, "", &fd, cause) != 0)
		return -1;
	cache_drop(u);
	u->cdir = xstrndup(clean, len);
	u->cfd = fd;
	*fdp = fd;
	return 0;
}

static void
entry_times(struct archive_entry *e, struct timespec ts[2], int *set)
{
	*set = archive_entry_mtime_is_set(e);
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
		ts[1].tv_nsec = 0;
}

static int
extract_file(struct unpack *u, struct archive_entry *e, int pfd, const char *base,
    char **cause)
{
	struct timespec	 ts[2];
	const void	*p;
	size_t		 n;
	la_int64_t	 off;
	long long	 size, pos = 0;
	int		 fd = -1, r, tset, ret = -1;

	size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0)
		return entry_fail(u->name, 1, cause, "negative size");
	if (size > u->max_size - u->unpacked) {
		return entry_fail(u->name, 1, cause,
		    "unpacked size passes the limit of %lld bytes", u->max_size);
	}
	fd = openat(pfd, base, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return entry_fail(u->name, 1, cause, "already exists");
		return entry_fail(u->name, 0, cause, "create: %s", strerror(errno));
	}
	for (;;) {
		r = archive_read_data_block(u->a, &p, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			if (u->feed->cause != NULL)
				set_cause(cause, "%s", u->feed->cause);
			else {
				entry_fail(u->name, 0, cause, "%s",
				    archive_error_string(u->a) != NULL ?
				    archive_error_string(u->a) : "unreadable data");
			}
			goto out;
		}
		if (off < pos || off > size || (long long)n > size - off) {
			entry_fail(u->name, 1, cause, "data outside the entry");
			goto out;
		}
		u->unpacked += off + (long long)n - pos;
		if (u->unpacked > u->max_size) {
			entry_fail(u->name, 1, cause,
			    "unpacked size passes the limit of %lld bytes", u->max_size);
			goto out;
		}
		if (off > pos && lseek(fd, off, SEEK_SET) == -1) {
			entry_fail(u->name, 0, cause, "seek: %s", strerror(errno));
			goto out;
		}
		if (write_all(fd, p, n) != 0) {
			entry_fail(u->name, 0, cause, "write: %s", strerror(errno));
			goto out;
		}
		pos = off + (long long)n;
	}
	if (pos < size) {
		/* A sparse file ending in a hole. */
		if (ftruncate(fd, size) == -1) {
			entry_fail(u->name, 0, cause, "truncate: %s", strerror(errno));
			goto out;
		}
		u->unpacked += size - pos;
	}
	if (fchmod(fd, archive_entry_perm(e) & 0777) == -1) {
		entry_fail(u->name, 0, cause, "chmod: %s", strerror(errno));
		goto out;
	}
	entry_times(e, ts, &tset);
	if (tset && futimens(fd, ts) == -1) {
		entry_fail(u->name, 0, cause, "set times: %s", strerror(errno));
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		entry_fail(u->name, 0, cause, "close: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

static int
extract_dir(struct unpack *u, struct archive_entry *e, const char *clean, int pfd,
    const char *base, char **cause)
{
	struct dirtime	*dt;
	struct stat	 sb;
	struct timespec	 ts[2];
	int		 fd = -1, tset, ret = -1;

	if (mkdirat(pfd, base, 0700) == -1) {
		if (errno != EEXIST) {
			entry_fail(u->name, 0, cause, "mkdir: %s", strerror(errno));
			goto out;
		}
		if (fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISDIR(sb.st_mode)) {
			entry_fail(u->name, 1, cause, "already exists");
			goto out;
		}
	}
	fd = openat(pfd, base, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
	if (fd == -1) {
		entry_fail(u->name, 0, cause, "open: %s", strerror(errno));
		goto out;
	}
	/* Keep the owner able to write (and remove) what goes inside. */
	if (fchmod(fd, (archive_entry_perm(e) & 0777) | 0700) == -1) {
		entry_fail(u->name, 0, cause, "chmod: %s", strerror(errno));
		goto out;
	}
	entry_times(e, ts, &tset);
	if (tset) {
		if (u->ndirs == u->dirscap) {
			u->dirscap = u->dirscap == 0 ? 64 : u->dirscap * 2;
			u->dirs = xrealloc(u->dirs, u->dirscap * sizeof *u->dirs);
		}
		dt = &u->dirs[u->ndirs++];
		dt->path = xstrdup(clean);
		memcpy(dt->ts, ts, sizeof dt->ts);
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

static int
extract_symlink(struct unpack *u, struct archive_entry *e, const char *clean, int pfd,
    const char *base, char **cause)
{
	struct timespec	 ts[2];
	const char	*target, *bad;
	char		*shown;
	int		 tset;

	if ((target = archive_entry_symlink(e)) == NULL &&
	    (target = archive_entry_symlink_utf8(e)) == NULL)
		return entry_fail(u->name, 1, cause, "symlink without a readable target");
	if ((bad = link_target_bad(clean, target)) != NULL) {
		shown = str_vis(target);
		entry_fail(u->name, 1, cause, "symlink target '%s' %s", shown, bad);
		free(shown);
		return -1;
	}
	if (symlinkat(target, pfd, base) == -1) {
		if (errno == EEXIST)
			return entry_fail(u->name, 1, cause, "already exists");
		return entry_fail(u->name, 0, cause, "symlink: %s", strerror(errno));
	}
	entry_times(e, ts, &tset);
	if (tset && utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) == -1)
		return entry_fail(u->name, 0, cause, "set times: %s", strerror(errno));
	return 0;
}

static int
extract_hardlink(struct unpack *u, const char *target, int pfd, const char *base,
    char **cause)
{
	struct stat	 sb;
	const char	*why, *tbase, *slash;
	char		*clean = NULL, *shown;
	int		 tfd = -1, ret = -1;

	if (path_clean(target, &clean, &why) != 0) {
		shown = str_vis(target);
		entry_fail(u->name, 1, cause, "hardlink target '%s': %s", shown, why);
		free(shown);
		goto out;
	}
	if (*clean == '\0') {
		entry_fail(u->name, 1, cause, "hardlink to the release directory");
		goto out;
	}
	if ((slash = strrchr(clean, '/')) == NULL) {
		tfd = u->rootfd;
		tbase = clean;
	} else {
		tbase = slash + 1;
		if (walk(u, clean, (size_t)(slash - clean), 0, "hardlink target: ", &tfd,
		    cause) != 0)
			goto out;
	}
	if (fstatat(tfd, tbase, &sb, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(sb.st_mode)) {
		shown = str_vis(clean);
		entry_fail(u->name, 1, cause,
		    "hardlink target '%s' is not an earlier regular file", shown);
		free(shown);
		goto out;
	}
	if (linkat(tfd, tbase, pfd, base, 0) == -1) {
		if (errno == EEXIST)
			entry_fail(u->name, 1, cause, "already exists");
		else
			entry_fail(u->name, 0, cause, "link: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (tfd != -1 && tfd != u->rootfd)
		close(tfd);
	free(clean);
	return ret;
}

static const char *
type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR:
		return "character device";
	case AE_IFBLK:
		return "block device";
	case AE_IFIFO:
		return "fifo";
	case AE_IFSOCK:
		return "socket";
	default:
		return "unsupported file type";
	}
}

/* Check one entry against the policy, then write it below dest. */
static int
extract(struct unpack *u, struct archive_entry *e, char **cause)
{
	const char	*why, *base, *hl;
	char		*clean = NULL;
	mode_t		 type;
	int		 pfd, ret = -1;

	if ((u->name = archive_entry_pathname(e)) == NULL &&
	    (u->name = archive_entry_pathname_utf8(e)) == NULL) {
		set_cause(cause, "unsafe entry %ld: unreadable name", u->entries);
		goto out;
	}
	if (path_clean(u->name, &clean, &why) != 0) {
		entry_fail(u->name, 1, cause, "%s", why);
		goto out;
	}
	type = archive_entry_filetype(e);
	if ((hl = archive_entry_hardlink(e)) == NULL)
		hl = archive_entry_hardlink_utf8(e);
	if (hl == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		entry_fail(u->name, 1, cause, "%s", type_name(type));
		goto out;
	}
	if (*clean == '\0') {
		/* "./" itself: dest is ours, its mode is not the archive's. */
		if (hl == NULL && type == AE_IFDIR)
			ret = 0;
		else
			entry_fail(u->name, 1, cause, "not a file name");
		goto out;
	}
	if (open_parent(u, clean, &pfd, &base, cause) != 0)
		goto out;
	if (hl != NULL)
		ret = extract_hardlink(u, hl, pfd, base, cause);
	else if (type == AE_IFREG)
		ret = extract_file(u, e, pfd, base, cause);
	else if (type == AE_IFDIR)
		ret = extract_dir(u, e, clean, pfd, base, cause);
	else
		ret = extract_symlink(u, e, clean, pfd, base, cause);
out:
	free(clean);
	return ret;
}

/* Directory mtimes last: writing into a directory changes its mtime. */
static int
set_dir_times(struct unpack *u, char **cause)
{
	struct dirtime	*dt;
	size_t		 i;
	int		 fd;

	for (i = 0; i < u->ndirs; i++) {
		dt = &u->dirs[i];
		u->name = dt->path;
		if (walk(u, dt->path, strlen(dt->path), 0, "", &fd, cause) != 0)
			return -1;
		if (futimens(fd, dt->ts) == -1) {
			close(fd);
			return entry_fail(u->name, 0, cause, "set times: %s", strerror(errno));
		}
		close(fd);
	}
	return 0;
}

/* Read more input once the unread bytes are used up: >0, 0 at the end, -1. */
static ssize_t
stage_more(struct stage *s)
{
	ssize_t	n;

	if ((n = feed_read(s->feed, 0)) < 0)
		return -1;
	s->z.next_in = s->feed->buf;
	s->z.avail_in = (uInt)n;
	return n;
}

/* Make at least want bytes unread (fewer only at the end) by reading behind them. */
static int
stage_lookahead(struct stage *s, size_t want)
{
	ssize_t	n;

	while (s->z.avail_in < want && !s->feed->eof) {
		if (s->z.avail_in > 0)
			memmove(s->feed->buf, s->z.next_in, s->z.avail_in);
		if ((n = feed_read(s->feed, s->z.avail_in)) < 0)
			return -1;
		s->z.next_in = s->feed->buf;
		s->z.avail_in += (uInt)n;
	}
	return 0;
}

static int
stage_at_gzip(const struct stage *s)
{
	return s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b;
}

static int
stage_detect(struct stage *s)
{
	if (stage_lookahead(s, 2) != 0)
		return -1;
	if (!stage_at_gzip(s)) {
		s->mode = STAGE_RAW;
		return 0;
	}
	if (inflateInit2(&s->z, 15 + 16) != Z_OK)
		return feed_fail(s->feed, "zlib: %s", s->z.msg != NULL ? s->z.msg : "init");
	s->zinit = 1;
	s->out = xmalloc(READ_SIZE);
	s->mode = STAGE_GZIP;
	return 0;
}

/* Inflate the next bytes: >0, 0 after the last member, -1 on corrupt or truncated data. */
static ssize_t
stage_inflate(struct stage *s, const void **bufp)
{
	size_t	produced;
	ssize_t	n;
	int	r;

	for (;;) {
		if (s->mode == STAGE_GZIP_END)
			return 0;
		if (s->z.avail_in == 0) {
			if ((n = stage_more(s)) < 0)
				return -1;
			if (n == 0)
				return feed_fail(s->feed, "gzip data is truncated");
		}
		s->z.next_out = s->out;
		s->z.avail_out = READ_SIZE;
		r = inflate(&s->z, Z_NO_FLUSH);
		produced = READ_SIZE - s->z.avail_out;
		if (r == Z_STREAM_END) {
			/* Another member may follow, as gzip -d allows. */
			if (stage_lookahead(s, 2) != 0)
				return -1;
			if (!stage_at_gzip(s))
				s->mode = STAGE_GZIP_END;
			else if (inflateReset(&s->z) != Z_OK)
				return feed_fail(s->feed, "zlib: inflateReset failed");
		} else if (r != Z_OK && (r != Z_BUF_ERROR || s->z.avail_in != 0)) {
			return feed_fail(s->feed, "bad gzip data: %s",
			    s->z.msg != NULL ? s->z.msg : zError(r));
		}
		if (produced > 0) {
			*bufp = s->out;
			return (ssize_t)produced;
		}
	}
}

/* The next bytes of the tar for libarchive: >0, 0 at the end, -1 with feed->cause. */
static ssize_t
stage_read(struct stage *s, const void **bufp)
{
	ssize_t	n;

	if (s->mode == STAGE_DETECT && stage_detect(s) != 0)
		return -1;
	if (s->mode == STAGE_GZIP || s->mode == STAGE_GZIP_END)
		return stage_inflate(s, bufp);
	if (s->z.avail_in == 0 && stage_more(s) < 0)
		return -1;
	*bufp = s->z.next_in;
	n = (ssize_t)s->z.avail_in;
	s->z.avail_in = 0;
	return n;
}

/*
 * After the end of the tar: inflate the rest of the gzip stream (so its CRC
 * is checked) and read the source to its real end (so the digest covers every
 * byte), refusing more than MAX_TRAILING bytes of either.
 */
static int
stage_drain(struct stage *s, char **cause)
{
	const void	*p;
	long long	 after = 0;
	ssize_t		 n;

	if (s->mode == STAGE_GZIP) {
		while ((n = stage_inflate(s, &p)) > 0) {
			if ((after += n) > MAX_TRAILING)
				goto toomuch;
		}
		if (n < 0)
			return set_cause(cause, "%s", s->feed->cause);
	}
	after = s->z.avail_in;
	s->z.avail_in = 0;
	while ((n = feed_read(s->feed, 0)) > 0) {
		if ((after += n) > MAX_TRAILING)
			goto toomuch;
	}
	if (n < 0)
		return set_cause(cause, "%s", s->feed->cause);
	return 0;
toomuch:
	return set_cause(cause, "more than %lld bytes after the end of the archive",
	    MAX_TRAILING);
}

static void
stage_free(struct stage *s)
{
	if (s->zinit)
		inflateEnd(&s->z);
	free(s->out);
	memset(s, 0, sizeof *s);
}

static la_ssize_t
archive_read_cb(struct archive *a, void *arg, const void **bufp)
{
	struct stage	*s = arg;
	ssize_t		 n;

	if ((n = stage_read(s, bufp)) < 0) {
		archive_set_error(a, EIO, "%s", s->feed->cause);
		return -1;
	}
	return n;
}

static char *
format_name(struct unpack *u)
{
	if (u->stage.mode == STAGE_GZIP || u->stage.mode == STAGE_GZIP_END)
		return xstrdup("tar.gz");
	switch (archive_filter_code(u->a, 0)) {
	case ARCHIVE_FILTER_NONE:
		return xstrdup("tar");
	case ARCHIVE_FILTER_GZIP:
		return xstrdup("tar.gz");
	case ARCHIVE_FILTER_ZSTD:
		return xstrdup("tar.zst");
	default:
		return xasprintf("tar+%s", archive_filter_name(u->a, 0));
	}
}

static int
archive_cause(struct unpack *u, char **cause)
{
	const char	*s;

	if (u->feed->cause != NULL)
		return set_cause(cause, "%s", u->feed->cause);
	s = archive_error_string(u->a);
	return set_cause(cause, "bad archive: %s", s != NULL ? s : "unreadable");
}

/*
 * The unpacking half: make dest, read the archive from the feed, write its
 * entries, read the feed to its real end and check digest and signature. Any
 * failure removes dest, provided this call made it.
 */
static int
unpack_run(struct feed *f, const struct artifact_spec *spec, const struct sigcheck *sc,
    const char *dest, struct artifact_result *res, char **cause)
{
	struct unpack		 u;
	struct archive_entry	*e;
	size_t			 i;
	char			*rmcause = NULL;
	int			 r, made = 0, ret = -1;

	memset(&u, 0, sizeof u);
	u.feed = f;
	u.stage.feed = f;
	u.rootfd = u.cfd = -1;
	u.max_size = spec->max_size > 0 ? spec->max_size : DEF_SIZE;
	u.max_entries = spec->max_entries > 0 ? spec->max_entries : DEF_ENTRIES;
	if (mkdir(dest, 0700) == -1) {
		if (errno == EEXIST)
			set_cause(cause, "%s already exists", dest);
		else
			set_cause(cause, "mkdir %s: %s", dest, strerror(errno));
		goto out;
	}
	made = 1;
	if ((u.rootfd = open(dest, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC)) == -1 ||
	    fchmod(u.rootfd, 0755) == -1) {
		set_cause(cause, "%s: %s", dest, strerror(errno));
		goto out;
	}

	if ((u.a = archive_read_new()) == NULL)
		fatal("out of memory");
	/* gzip is the stage's; ARCHIVE_WARN would mean an external zstd program. */
	if (archive_read_support_filter_zstd(u.a) != ARCHIVE_OK ||
	    archive_read_support_filter_none(u.a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(u.a) != ARCHIVE_OK) {
		set_cause(cause, "libarchive lacks built-in zstd or tar support");
		goto out;
	}
	if (archive_read_open(u.a, &u.stage, NULL, archive_read_cb, NULL) != ARCHIVE_OK) {
		archive_cause(&u, cause);
		goto out;
	}
	for (;;) {
		if (spec->stop != NULL && *spec->stop) {
			set_cause(cause, "stopped");
			goto out;
		}
		r = archive_read_next_header(u.a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			archive_cause(&u, cause);
			goto out;
		}
		if (u.entries == 0)
			res->format = format_name(&u);
		if (++u.entries > u.max_entries) {
			set_cause(cause, "archive has more than %lld entries", u.max_entries);
			goto out;
		}
		if (extract(&u, e, cause) != 0)
			goto out;
	}
	if (u.entries == 0) {
		set_cause(cause, "archive has no entries");
		goto out;
	}
	if (stage_drain(&u.stage, cause) != 0)
		goto out;
	if (set_dir_times(&u, cause) != 0)
		goto out;
	if (feed_finish(f, spec, sc, res, cause) != 0)
		goto out;
	ret = 0;
out:
	res->bytes = f->bytes;
	res->unpacked = u.unpacked;
	res->entries = u.entries;
	cache_drop(&u);
	if (u.rootfd != -1)
		close(u.rootfd);
	if (u.a != NULL)
		archive_read_free(u.a);
	stage_free(&u.stage);
	for (i = 0; i < u.ndirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	if (ret != 0) {
		res->digest_ok = res->signature_ok = 0;
		free(res->format);
		res->format = NULL;
		if (made && artifact_rmtree(dest, &rmcause) != 0) {
			set_cause(cause, "%s (and removing it failed: %s)", *cause, rmcause);
			free(rmcause);
		}
	}
	return ret;
}

int
artifact_unpack(artifact_read_fn read, void *arg, const struct artifact_spec *spec,
    const char *dest, struct artifact_result *res, char **cause)
{
	struct feed	 f;
	char		*nocause = NULL;
	int		 ret = -1;

	if (cause == NULL)
		cause = &nocause;
	memset(res, 0, sizeof *res);
	memset(&f, 0, sizeof f);
	if (spec_check(spec, cause) != 0)
		goto out;
	if (spec->public_key != NULL) {
		set_cause(cause, "signatures are checked by artifact_fetch, not artifact_unpack");
		goto out;
	}
	if (feed_init(&f, read, arg, spec->stop, cause) != 0)
		goto out;
	ret = unpack_run(&f, spec, NULL, dest, res, cause);
out:
	feed_free(&f);
	free(nocause);
	return ret;
}

/* Parse "bytes START-END/TOTAL" (TOTAL may be "*": -1). */
static int
parse_content_range(const char *s, long long *start, long long *total)
{
	char		*end;
	long long	 last;

	if (s == NULL || strncasecmp(s, "bytes ", 6) != 0)
		return -1;
	s += 6;
	errno = 0;
	*start = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '-' || *start < 0)
		return -1;
	s = end + 1;
	last = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '/' || last < *start)
		return -1;
	s = end + 1;
	if (strcmp(s, "*") == 0) {
		*total = -1;
		return 0;
	}
	*total = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *total <= last)
		return -1;
	return 0;
}

/*
 * A URL as the log may show it: a presigned query carries a signature and
 * userinfo a password, so both are withheld.
 */
static char *
url_for_log(const char *url)
{
	const char	*host, *at, *rest;
	size_t		 restlen;

	host = strstr(url, "://");
	host = host != NULL ? host + 3 : url;
	at = memchr(host, '@', strcspn(host, "/?#"));
	rest = at != NULL ? at + 1 : host;
	restlen = strcspn(rest, "?#");
	return xasprintf("%.*s%s%.*s%s", (int)(host - url), url,
	    at != NULL ? "(user withheld)@" : "", (int)restlen, rest,
	    rest[restlen] != '\0' ? "?(query withheld)" : "");
}

/* Why a transfer broke, in words safe to log (the cause holds the URL). */
static const char *
break_reason(int err, ssize_t n)
{
	if (n == 0)
		return "the connection closed before the end";
	switch (err) {
	case HTTP_ECONNECT:
		return "cannot connect";
	case HTTP_ETIMEOUT:
		return "timed out";
	case HTTP_EIO:
		return "connection reset or truncated";
	default:
		return "transfer error";
	}
}

/* One debug line per plain GET of the artifact: its answer or why there was none. */
static void
log_get(const struct download *d, int err, long status)
{
	if (err != HTTP_OK)
		log_debug("artifact: GET %s from byte %lld: %s", d->log_url, d->offset,
		    break_reason(err, -1));
	else
		log_debug("artifact: GET %s from byte %lld: HTTP %ld", d->log_url, d->offset,
		    status);
}

/* Open the artifact at d->offset; *retry says whether trying again could help. */
static int
dl_open(struct download *d, int *retry, char **cause)
{
	struct http_request	 req;
	const char		*v, *etag;
	char			*end;
	long long		 start, total = -1;
	long			 status;
	int			 err;

	*retry = 0;
	if (d->bucket != NULL) {
		if (d->aws == NULL)
			return set_cause(cause, "%s: no AWS context for an S3 URL", d->url);
		/* aws_s3_open has already retried what is worth retrying. */
		if (aws_s3_open(d->aws, d->bucket, d->key, d->offset, &d->st, cause) != AWS_OK)
			return -1;
	} else {
		memset(&req, 0, sizeof req);
		req.method = "GET";
		req.url = d->url;
		req.timeout = d->timeout;
		req.range_from = d->offset;
		req.follow = 1;
		if ((err = http_stream_open(&req, &d->st, cause)) != HTTP_OK) {
			log_get(d, err, 0);
			*retry = http_retryable(err);
			return -1;
		}
		status = http_stream_status(d->st);
		log_get(d, err, status);
		if (status != (d->offset > 0 ? 206 : 200)) {
			*retry = status >= 500 || status == 429;
			if (d->offset > 0 && status == 200) {
				set_cause(cause, "GET %s: HTTP 200 to a Range request from byte "
				    "%lld (no resume support)", d->url, d->offset);
			} else
				set_cause(cause, "GET %s: HTTP %ld", d->url, status);
			goto fail;
		}
	}
	if (d->offset > 0) {
		v = http_stream_header(d->st, "Content-Range");
		if (parse_content_range(v, &start, &total) != 0 || start != d->offset) {
			set_cause(cause, "%s: resumed from byte %lld but Content-Range is '%s'",
			    d->url, d->offset, v != NULL ? v : "");
			goto fail;
		}
	} else if ((v = http_stream_header(d->st, "Content-Length")) != NULL) {
		errno = 0;
		total = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || total < 0)
			total = -1;
	}
	if (d->offset > 0 && d->total != -1 && total != -1 && total != d->total) {
		set_cause(cause, "%s changed during the download (%lld bytes, now %lld)",
		    d->url, d->total, total);
		goto fail;
	}
	if (total != -1)
		d->total = total;
	etag = http_stream_header(d->st, "ETag");
	if (d->offset > 0 && d->etag != NULL && etag != NULL && strcmp(d->etag, etag) != 0) {
		set_cause(cause, "%s changed during the download (ETag %s, now %s)", d->url,
		    d->etag, etag);
		goto fail;
	}
	if (d->etag == NULL && etag != NULL)
		d->etag = xstrdup(etag);
	if (d->offset > 0)
		log_debug("artifact: %s resumed at byte %lld of %lld", d->log_url, d->offset,
		    d->total);
	return 0;
fail:
	http_stream_close(d->st);
	d->st = NULL;
	return -1;
}

/* The artifact's bytes: a broken transfer resumes where it stopped, up to MAX_RESUMES times. */
static ssize_t
dl_read(void *arg, void *p, size_t len, char **cause)
{
	struct download	*d = arg;
	const char	*why;
	ssize_t		 n;
	double		 delay;
	int		 err, retry;

	for (;;) {
		if (d->st == NULL) {
			set_cause(cause, "%s: not open", d->url);
			return -1;
		}
		n = http_stream_read(d->st, p, len, cause);
		if (d->tick != NULL)
			d->tick(d->tick_arg);
		if (n > 0) {
			d->offset += n;
			return n;
		}
		if (n == 0) {
			if (d->total == -1 || d->offset >= d->total)
				return 0;
			set_cause(cause, "%s: connection closed at byte %lld of %lld", d->url,
			    d->offset, d->total);
			err = HTTP_EIO;
		} else {
			err = http_stream_error(d->st);
			set_cause(cause, "%s: %s", d->url,
			    *cause != NULL ? *cause : "read failed");
		}
		http_stream_close(d->st);
		d->st = NULL;
		if (!http_retryable(err))
			return -1;
		why = break_reason(err, n);
		retry = 1;
		while (d->st == NULL) {
			if (!retry || d->resumes >= MAX_RESUMES) {
				set_cause(cause, "%s (after %d resumes)", *cause, d->resumes);
				return -1;
			}
			delay = 0.25 * (double)(1 << d->resumes);
			delay = delay > 2 ? 2 : delay;
			log_debug("artifact: %s: resume %d of %d from byte %lld of %lld in "
			    "%.2f s: %s", d->log_url, d->resumes + 1, MAX_RESUMES, d->offset,
			    d->total, delay, why);
			sleep_for(delay, d->stop);
			if (d->stop != NULL && *d->stop)
				return set_cause(cause, "stopped");
			d->resumes++;
			if (dl_open(d, &retry, cause) != 0)
				d->st = NULL;
			why = "the last resume failed";
		}
	}
}

static void
dl_free(struct download *d)
{
	http_stream_close(d->st);
	free(d->log_url);
	free(d->bucket);
	free(d->key);
	free(d->etag);
	memset(d, 0, sizeof *d);
}

/* Fetch a small object (a signature) whole, at most max bytes. */
static int
fetch_small(struct aws *aws, const char *url, size_t max, struct buf *out, char **cause)
{
	struct http_request	 req;
	struct http_response	 resp;
	struct http_stream	*st = NULL;
	char			*bucket = NULL, *key = NULL, chunk[4096];
	ssize_t			 n;
	int			 ret = -1;

	memset(&resp, 0, sizeof resp);
	if (strncmp(url, "s3://", 5) == 0) {
		if (aws == NULL) {
			set_cause(cause, "%s: no AWS context for an S3 URL", url);
			goto out;
		}
		if (aws_s3_parse_url(url, &bucket, &key, cause) != 0 ||
		    aws_s3_open(aws, bucket, key, 0, &st, cause) != AWS_OK)
			goto out;
		while ((n = http_stream_read(st, chunk, sizeof chunk, cause)) > 0) {
			if (out->len + (size_t)n > max) {
				set_cause(cause, "%s: larger than %zu bytes", url, max);
				goto out;
			}
			buf_add(out, chunk, (size_t)n);
		}
		if (n < 0) {
			set_cause(cause, "%s: %s", url, *cause);
			goto out;
		}
	} else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
		memset(&req, 0, sizeof req);
		req.method = "GET";
		req.url = url;
		req.max_body = max;
		req.follow = 1;
		if (http_do(&req, &resp, cause) != HTTP_OK)
			goto out;
		if (resp.status != 200) {
			set_cause(cause, "%s: HTTP %ld", url, resp.status);
			goto out;
		}
		buf_add(out, resp.body.data, resp.body.len);
	} else {
		set_cause(cause, "%s: not an s3://, https:// or http:// URL", url);
		goto out;
	}
	ret = 0;
out:
	http_stream_close(st);
	http_response_free(&resp);
	free(bucket);
	free(key);
	return ret;
}

/* The detached signature is in: from where (query withheld) and how big. */
static void
log_signature(const char *url, size_t len)
{
	char	*u = url_for_log(url);

	log_debug("artifact: signature %s fetched: %zu bytes", u, len);
	free(u);
}

/* Load the public key and fetch the signature, ready to verify as bytes stream. */
static int
sig_init(struct sigcheck *sc, struct aws *aws, const struct artifact_spec *spec,
    char **cause)
{
	BIO	*bio = NULL;
	int	 id, ret = -1;

	errno = 0;
	if ((bio = BIO_new_file(spec->public_key, "r")) == NULL) {
		set_cause(cause, "public key %s: %s", spec->public_key,
		    errno != 0 ? strerror(errno) : ssl_error());
		ERR_clear_error();
		goto out;
	}
	if ((sc->key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
		set_cause(cause, "public key %s: not a PEM public key (%s)", spec->public_key,
		    ssl_error());
		goto out;
	}
	id = EVP_PKEY_get_base_id(sc->key);
	if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
		set_cause(cause, "public key %s: %s keys are not supported (ECDSA or RSA)",
		    spec->public_key, EVP_PKEY_get0_type_name(sc->key));
		goto out;
	}
	if (fetch_small(aws, spec->signature_url, SIG_MAX, &sc->sig, cause) != 0) {
		set_cause(cause, "signature file: %s", *cause);
		goto out;
	}
	if (sc->sig.len == 0) {
		set_cause(cause, "signature file %s is empty", spec->signature_url);
		goto out;
	}
	log_signature(spec->signature_url, sc->sig.len);
	if ((sc->ctx = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	if (EVP_DigestVerifyInit(sc->ctx, NULL, EVP_sha256(), NULL, sc->key) != 1) {
		set_cause(cause, "public key %s: %s", spec->public_key, ssl_error());
		goto out;
	}
	ret = 0;
out:
	BIO_free(bio);
	return ret;
}

static void
sig_free(struct sigcheck *sc)
{
	EVP_MD_CTX_free(sc->ctx);
	EVP_PKEY_free(sc->key);
	buf_free(&sc->sig);
	memset(sc, 0, sizeof *sc);
}

/* Everything before the first artifact byte: checks, key, signature, the download. */
static int
source_open(struct source *src, struct aws *aws, const struct artifact_spec *spec,
    char **cause)
{
	struct download	*d = &src->dl;
	int		 retry;

	if (spec->url == NULL || *spec->url == '\0')
		return set_cause(cause, "no artifact URL");
	if (spec_check(spec, cause) != 0)
		return -1;
	if (spec->public_key != NULL) {
		if (spec->signature_url == NULL)
			return set_cause(cause, "a public key but no signature URL");
		if (sig_init(&src->sc, aws, spec, cause) != 0)
			return -1;
	}
	d->aws = aws;
	d->url = spec->url;
	d->log_url = url_for_log(spec->url);
	d->timeout = spec->stall_timeout > 0 ? spec->stall_timeout : DEF_STALL;
	d->stop = spec->stop;
	d->tick = spec->tick;
	d->tick_arg = spec->tick_arg;
	d->total = -1;
	if (strncmp(spec->url, "s3://", 5) == 0) {
		if (aws_s3_parse_url(spec->url, &d->bucket, &d->key, cause) != 0)
			return -1;
	} else if (strncmp(spec->url, "https://", 8) != 0 &&
	    strncmp(spec->url, "http://", 7) != 0)
		return set_cause(cause, "%s: not an s3://, https:// or http:// URL", spec->url);
	log_debug("artifact: download of %s starts (%s, %s)", d->log_url,
	    spec->sha256 != NULL ? "sha256 pinned" : "no sha256 pinned",
	    spec->public_key != NULL ? "signature to check" : "no signature");
	if (dl_open(d, &retry, cause) != 0)
		return -1;
	if (feed_init(&src->feed, dl_read, d, spec->stop, cause) != 0)
		return -1;
	src->feed.vctx = src->sc.ctx;
	return 0;
}

/* The end of a good download: size, digest and resumes in one line. */
static void
log_done(const struct source *src, const struct artifact_result *res)
{
	log_debug("artifact: %s done: %lld bytes, %d resume(s), sha256 %s (%s), signature %s",
	    src->dl.log_url, res->bytes, src->dl.resumes, res->sha256,
	    res->digest_ok ? "digest ok" : "no digest to compare",
	    res->signature_ok ? "verified" : "not checked");
}

static void
source_close(struct source *src)
{
	feed_free(&src->feed);
	sig_free(&src->sc);
	dl_free(&src->dl);
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
	ret = unpack_run(&src.feed, spec, &src.sc, dest, res, cause);
	if (ret == 0)
		log_done(&src, res);
out:
	res->resumes = src.dl.resumes;
	source_close(&src);
	free(nocause);
	return ret;
}

int
artifact_fetch_file(struct aws *aws, const struct artifact_spec *spec, const char *path,
    struct artifact_result *res, char **cause)
{
	struct source	 src;
	long long	 max;
	char		*tmp, *nocause = NULL;
	ssize_t		 n;
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
	while ((n = feed_read(&src.feed, 0)) > 0) {
		if (src.feed.bytes > max) {
			set_cause(cause, "%s: larger than %lld bytes", spec->url, max);
			goto out;
		}
		if (write_all(fd, src.feed.buf, (size_t)n) != 0) {
			set_cause(cause, "%s: %s", tmp, strerror(errno));
			goto out;
		}
	}
	if (n < 0) {
		set_cause(cause, "%s", src.feed.cause);
		goto out;
	}
	if (feed_finish(&src.feed, spec, &src.sc, res, cause) != 0)
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
	res->bytes = src.feed.bytes;
	res->resumes = src.dl.resumes;
	if (fd != -1)
		close(fd);
	if (ret != 0) {
		res->digest_ok = res->signature_ok = 0;
		unlink(tmp);
	}
	source_close(&src);
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

int
artifact_rmtree(const char *path, char **cause)
{
	return fs_rmtree(path, cause);
}
