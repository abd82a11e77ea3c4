/* unpack.c - write a tar archive's entries below a new directory, refusing unsafe ones. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fs.h"
#include "halt.h"
#include "unpack.h"
#include "util.h"

#define MAX_DEPTH	256		/* path components; keeps rmtree's fds bounded */
#define MAX_PATH	4095

/* A directory whose mtime is set once nothing more is written into it. */
struct dirtime {
	char		*path;
	struct timespec	 ts[2];
};

struct unpack {
	char		*dest;
	int		 made;		/* unpack_open made dest */
	const struct halt *halt;
	reader_view_fn	 read;
	void		*read_arg;
	char		*cause;		/* why the reader failed, or NULL */
	struct archive	*a;
	int		 rootfd;
	char		*cdir;		/* cached parent directory, or NULL */
	int		 cfd;
	long long	 max_size;
	long long	 max_entries;
	long long	 unpacked;
	long		 entries;
	long		 implied;	/* directories made for paths, not entries */
	struct dirtime	*dirs;
	size_t		 ndirs;
	size_t		 dirscap;
	size_t		*dirhash;	/* open addressing: index + 1 into dirs, 0 empty */
	size_t		 dirhashcap;	/* a power of two, at least twice ndirs */
	const char	*name;		/* the entry being written, as in the archive */
};

static int	entry_fail(const char *, int, char **, const char *, ...)
		    __attribute__((format(printf, 4, 5)));

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
 * The directory fd, the first len bytes of rel, must be the agent's: one
 * another user owns (made, say, in a moment it was writable) is theirs to
 * change after the release is verified, so nothing is written below it.
 */
static int
dir_owned(struct unpack *u, int fd, const char *rel, size_t len, char **cause)
{
	struct stat	 sb;
	char		*msg;

	if (fstat(fd, &sb) == -1) {
		msg = xasprintf(": %s", strerror(errno));
		walk_fail(u, 0, "stat ", rel, len, msg, cause);
		free(msg);
		return -1;
	}
	if (sb.st_uid == geteuid())
		return 0;
	msg = xasprintf(" is owned by uid %lu, not by the agent's uid %lu",
	    (unsigned long)sb.st_uid, (unsigned long)geteuid());
	walk_fail(u, 1, "", rel, len, msg, cause);
	free(msg);
	return -1;
}

/*
 * Open the directory at the first len bytes of clean path rel one component
 * at a time with O_NOFOLLOW, so a symlink made by an earlier entry is never
 * followed, nor a directory another user owns; missing directories are made
 * when create is set.
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
			/* A path implies its directories: each is an inode the cap must count. */
			if (u->entries + ++u->implied > u->max_entries) {
				set_cause(cause, "archive has more than %lld entries (with the "
				    "%ld directories its paths imply)", u->max_entries, u->implied);
				goto out;
			}
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
		if (dir_owned(u, next, rel, i + n, cause) != 0)
			goto out;
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
			if (u->cause != NULL)
				set_cause(cause, "%s", u->cause);
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
	/* No group or other write: a local user could change the verified release. */
	if (fchmod(fd, archive_entry_perm(e) & 0755) == -1) {
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

static size_t
dirtime_hash(const char *s)
{
	size_t	h = 14695981039346656037ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* The slot of path in the hash: its entry, or the empty slot where it goes. */
static size_t *
dirtime_slot(struct unpack *u, const char *path)
{
	size_t	i, mask = u->dirhashcap - 1;

	for (i = dirtime_hash(path) & mask; u->dirhash[i] != 0; i = (i + 1) & mask) {
		if (strcmp(u->dirs[u->dirhash[i] - 1].path, path) == 0)
			break;
	}
	return &u->dirhash[i];
}

static void
dirtime_grow(struct unpack *u)
{
	size_t	i;

	u->dirhashcap = u->dirhashcap == 0 ? 128 : u->dirhashcap * 2;
	free(u->dirhash);
	u->dirhash = xcalloc(u->dirhashcap, sizeof *u->dirhash);
	for (i = 0; i < u->ndirs; i++)
		*dirtime_slot(u, u->dirs[i].path) = i + 1;
}

/* Remember a directory's times; a path named again replaces them: memory per unique path. */
static void
dirtime_set(struct unpack *u, const char *path, const struct timespec ts[2])
{
	struct dirtime	*dt;
	size_t		*slot;

	if (2 * (u->ndirs + 1) > u->dirhashcap)
		dirtime_grow(u);
	slot = dirtime_slot(u, path);
	if (*slot != 0) {
		memcpy(u->dirs[*slot - 1].ts, ts, sizeof u->dirs[*slot - 1].ts);
		return;
	}
	if (u->ndirs == u->dirscap) {
		u->dirscap = u->dirscap == 0 ? 64 : u->dirscap * 2;
		u->dirs = xrealloc(u->dirs, u->dirscap * sizeof *u->dirs);
	}
	dt = &u->dirs[u->ndirs++];
	dt->path = xstrdup(path);
	memcpy(dt->ts, ts, sizeof dt->ts);
	*slot = u->ndirs;
}

static int
extract_dir(struct unpack *u, struct archive_entry *e, const char *clean, int pfd,
    const char *base, char **cause)
{
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
	if (dir_owned(u, fd, clean, strlen(clean), cause) != 0)
		goto out;
	/*
	 * The owner keeps write (to fill and remove it); group and other never get
	 * it, so the sticky bit, which only matters to them, goes with set-id.
	 */
	if (fchmod(fd, (archive_entry_perm(e) & 0755) | 0700) == -1) {
		entry_fail(u->name, 0, cause, "chmod: %s", strerror(errno));
		goto out;
	}
	entry_times(e, ts, &tset);
	if (tset)
		dirtime_set(u, clean, ts);
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

static la_ssize_t
archive_read_cb(struct archive *a, void *arg, const void **bufp)
{
	struct unpack	*u = arg;
	ssize_t		 n;

	if ((n = u->read(u->read_arg, bufp, &u->cause)) < 0) {
		if (u->cause == NULL)
			u->cause = xstrdup("read failed");
		archive_set_error(a, EIO, "%s", u->cause);
		return -1;
	}
	return n;
}

static int
archive_cause(struct unpack *u, char **cause)
{
	const char	*s;

	if (u->cause != NULL)
		return set_cause(cause, "%s", u->cause);
	s = archive_error_string(u->a);
	return set_cause(cause, "bad archive: %s", s != NULL ? s : "unreadable");
}

struct unpack *
unpack_new(const char *dest, long long max_size, long long max_entries,
    const struct halt *halt)
{
	struct unpack	*u;

	u = xcalloc(1, sizeof *u);
	u->dest = xstrdup(dest);
	u->halt = halt;
	u->rootfd = u->cfd = -1;
	u->max_size = max_size;
	u->max_entries = max_entries;
	return u;
}

int
unpack_open(struct unpack *u, char **cause)
{
	if (mkdir(u->dest, 0700) == -1) {
		if (errno == EEXIST)
			return set_cause(cause, "%s already exists", u->dest);
		return set_cause(cause, "mkdir %s: %s", u->dest, strerror(errno));
	}
	u->made = 1;
	if ((u->rootfd = open(u->dest, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC)) == -1 ||
	    fchmod(u->rootfd, 0755) == -1)
		return set_cause(cause, "%s: %s", u->dest, strerror(errno));
	return 0;
}

int
unpack_entries(struct unpack *u, reader_view_fn read, void *arg, char **cause)
{
	struct archive_entry	*e;
	int			 r;

	u->read = read;
	u->read_arg = arg;
	if ((u->a = archive_read_new()) == NULL)
		fatal("out of memory");
	/* gzip is the decomp stage's; ARCHIVE_WARN would mean an external zstd program. */
	if (archive_read_support_filter_zstd(u->a) != ARCHIVE_OK ||
	    archive_read_support_filter_none(u->a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(u->a) != ARCHIVE_OK)
		return set_cause(cause, "libarchive lacks built-in zstd or tar support");
	if (archive_read_open(u->a, u, NULL, archive_read_cb, NULL) != ARCHIVE_OK)
		return archive_cause(u, cause);
	for (;;) {
		if (halt_stopped(u->halt))
			return set_cause(cause, "stopped");
		r = archive_read_next_header(u->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return archive_cause(u, cause);
		if (++u->entries + u->implied > u->max_entries) {
			return set_cause(cause, "archive has more than %lld entries",
			    u->max_entries);
		}
		if (extract(u, e, cause) != 0)
			return -1;
	}
	if (u->entries == 0)
		return set_cause(cause, "archive has no entries");
	return 0;
}

int
unpack_finish(struct unpack *u, char **cause)
{
	return set_dir_times(u, cause);
}

char *
unpack_format(const struct unpack *u)
{
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

long long
unpack_bytes(const struct unpack *u)
{
	return u->unpacked;
}

long
unpack_count(const struct unpack *u)
{
	return u->entries;
}

/* Close every descriptor and the archive: before removing dest, and when done. */
static void
unpack_close(struct unpack *u)
{
	cache_drop(u);
	if (u->rootfd != -1)
		close(u->rootfd);
	u->rootfd = -1;
	if (u->a != NULL)
		archive_read_free(u->a);
	u->a = NULL;
}

int
unpack_remove(struct unpack *u, char **cause)
{
	unpack_close(u);
	if (!u->made)
		return 0;
	u->made = 0;
	return fs_rmtree(u->dest, cause);
}

void
unpack_free(struct unpack *u)
{
	size_t	i;

	if (u == NULL)
		return;
	unpack_close(u);
	for (i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	free(u->dirhash);
	free(u->cause);
	free(u->dest);
	free(u);
}
