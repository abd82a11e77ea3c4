/* fs.c - file system helpers shared by the release and artifact code. */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "util.h"

#define RMTREE_DEPTH	1024

/* Empty the directory open as fd without following symlinks, rereading until it is empty. */
static int
rmtree_fd(int fd, const char *path, int depth, char **cause)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d = NULL;
	char		*sub = NULL;
	int		 dfd, cfd, again, ret = -1;

	if (depth > RMTREE_DEPTH)
		return set_cause(cause, "%s: too deep to remove", path);
	if ((dfd = dup(fd)) == -1 || (d = fdopendir(dfd)) == NULL) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	do {
		again = 0;
		rewinddir(d);
		while ((errno = 0, de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (unlinkat(fd, de->d_name, 0) == 0) {
				again = 1;
				continue;
			}
			if (errno == ENOENT)
				continue;
			free(sub);
			sub = xasprintf("%s/%s", path, de->d_name);
			if (errno != EISDIR && errno != EPERM) {
				set_cause(cause, "unlink %s: %s", sub, strerror(errno));
				goto out;
			}
			cfd = openat(fd, de->d_name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
			if (cfd == -1) {
				set_cause(cause, "%s: %s", sub, strerror(errno));
				goto out;
			}
			if (fstat(cfd, &sb) == 0 && (sb.st_mode & 0700) != 0700)
				(void)fchmod(cfd, (sb.st_mode & 07777) | 0700);
			if (rmtree_fd(cfd, sub, depth + 1, cause) != 0) {
				close(cfd);
				goto out;
			}
			close(cfd);
			if (unlinkat(fd, de->d_name, AT_REMOVEDIR) == -1 && errno != ENOENT) {
				set_cause(cause, "rmdir %s: %s", sub, strerror(errno));
				goto out;
			}
			again = 1;
		}
		if (errno != 0) {
			set_cause(cause, "%s: %s", path, strerror(errno));
			goto out;
		}
	} while (again);
	ret = 0;
out:
	free(sub);
	closedir(d);
	return ret;
}

int
fs_rmtree(const char *path, char **cause)
{
	struct stat	sb;
	int		fd = -1, ret = -1;

	if (lstat(path, &sb) == -1) {
		if (errno == ENOENT)
			return 0;
		return set_cause(cause, "%s: %s", path, strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (unlink(path) == -1 && errno != ENOENT)
			return set_cause(cause, "unlink %s: %s", path, strerror(errno));
		return 0;
	}
	if ((fd = open(path, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC)) == -1) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((sb.st_mode & 0700) != 0700)
		(void)fchmod(fd, (sb.st_mode & 07777) | 0700);
	if (rmtree_fd(fd, path, 0, cause) != 0)
		goto out;
	if (rmdir(path) == -1 && errno != ENOENT) {
		set_cause(cause, "rmdir %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

/* A name of one of the process's own descriptors (/dev/stdout is /proc/self/fd/1). */
static int
own_fd(const char *path)
{
	static const char	*const dirs[] = { "/dev/fd/", "/proc/self/fd/",
				    "/proc/thread-self/fd/" };
	char			 to[64];
	ssize_t			 n;
	size_t			 i;

	if ((n = readlink(path, to, sizeof to - 1)) < 0)
		n = 0;
	to[n] = '\0';
	for (i = 0; i < nitems(dirs); i++) {
		if (strncmp(path, dirs[i], strlen(dirs[i])) == 0 ||
		    strncmp(to, dirs[i], strlen(dirs[i])) == 0)
			return 1;
	}
	return 0;
}

/*
 * Whether a file bound for path is written into it rather than renamed over
 * it: a FIFO, a device, or one of our own descriptors (sb from lstat).
 */
static int
written_into(const char *path, const struct stat *sb)
{
	struct stat	to;

	if (S_ISFIFO(sb->st_mode) || S_ISCHR(sb->st_mode) || S_ISBLK(sb->st_mode))
		return 1;
	return S_ISLNK(sb->st_mode) && (own_fd(path) || (stat(path, &to) == 0 &&
	    (S_ISFIFO(to.st_mode) || S_ISCHR(to.st_mode) || S_ISBLK(to.st_mode))));
}

int
fs_tmpfile(const char *path, char **tmp, char **cause)
{
	struct stat	 sb;
	const char	*dir;
	mode_t		 mask;
	int		 fd, into;

	/* Beside path, unless written into: /dev is no place for a whole artifact. */
	if ((into = lstat(path, &sb) == 0 && written_into(path, &sb))) {
		if ((dir = getenv("TMPDIR")) == NULL || *dir != '/')
			dir = "/tmp";
		*tmp = xasprintf("%s/asg-agent-fetch.XXXXXX", dir);
	} else
		*tmp = xasprintf("%s.XXXXXX", path);
	/* mkostemp: O_EXCL and a random name, so nobody can have made it first. */
	if ((fd = mkostemp(*tmp, O_CLOEXEC)) == -1) {
		set_cause(cause, "%s: %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	/* Copied into the target, the staged file stays mkostemp's 0600 in a shared /tmp. */
	if (into)
		return fd;
	mask = umask(022);
	umask(mask);
	if (fchmod(fd, 0644 & ~mask) == -1) {
		set_cause(cause, "%s: %s", *tmp, strerror(errno));
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	return fd;
}

/*
 * Copy tmp's bytes into the FIFO or device at path (sb, from lstat, or stat
 * with follow), which stays what it is; only the caller's or root's, and
 * still the same one once open. sb NULL: one of the caller's own descriptors.
 */
static int
commit_into(const char *tmp, const char *path, const struct stat *sb, int follow,
    char **cause)
{
	struct stat	 now;
	char		*buf;
	ssize_t		 n;
	int		 in, out = -1, ret = -1;

	if (sb != NULL && sb->st_uid != geteuid() && sb->st_uid != 0)
		return set_cause(cause, "%s belongs to another user (uid %lu): not written into",
		    path, (unsigned long)sb->st_uid);
	if ((in = open(tmp, O_RDONLY|O_CLOEXEC)) == -1)
		return set_cause(cause, "%s: %s", tmp, strerror(errno));
	if ((out = open(path, O_WRONLY|O_NOCTTY|O_CLOEXEC|(follow ? 0 : O_NOFOLLOW))) == -1) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (sb != NULL && (fstat(out, &now) == -1 || now.st_dev != sb->st_dev ||
	    now.st_ino != sb->st_ino)) {
		set_cause(cause, "%s was replaced while it was opened", path);
		goto out;
	}
	buf = xmalloc(65536);
	while ((n = read(in, buf, 65536)) > 0 && write_all(out, buf, (size_t)n) == 0)
		;
	free(buf);
	if (n != 0) {
		set_cause(cause, "%s: %s", n < 0 ? tmp : path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(in);
	if (out != -1 && close(out) == -1 && ret == 0)
		ret = set_cause(cause, "%s: %s", path, strerror(errno));
	return ret;
}

int
fs_commit(const char *tmp, const char *path, char **cause)
{
	struct stat	sb, to;
	int		ret = -1;

	if (lstat(path, &sb) == -1) {
		if (errno != ENOENT) {
			set_cause(cause, "%s: %s", path, strerror(errno));
			goto out;
		}
		sb.st_mode = S_IFREG;
	}
	/* Followed, another user's link (in a sticky /tmp) could name any device. */
	if (S_ISLNK(sb.st_mode) && sb.st_uid != geteuid() && sb.st_uid != 0 &&
	    written_into(path, &sb)) {
		set_cause(cause, "%s is a symbolic link of another user (uid %lu): not followed",
		    path, (unsigned long)sb.st_uid);
		goto out;
	}
	/* Renamed over, /dev/stdout would be a file for the whole machine. */
	if (S_ISLNK(sb.st_mode) && own_fd(path)) {
		ret = commit_into(tmp, path, NULL, 1, cause);
		goto out;
	}
	if (S_ISLNK(sb.st_mode) && stat(path, &to) == 0 && (S_ISFIFO(to.st_mode) ||
	    S_ISCHR(to.st_mode) || S_ISBLK(to.st_mode))) {
		ret = commit_into(tmp, path, &to, 1, cause);
		goto out;
	}
	if (S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)) {
		/* A file (or a link, itself replaced) is replaced whole, atomically. */
		if (rename(tmp, path) == -1)
			set_cause(cause, "rename %s: %s", tmp, strerror(errno));
		else
			return 0;
	} else if (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode))
		ret = commit_into(tmp, path, &sb, 0, cause);
	else
		set_cause(cause, "%s exists and is not a file, a FIFO or a device", path);
out:
	unlink(tmp);
	return ret;
}

int
fs_lock_try(const char *dir, const char *name, int *fd, char **cause)
{
	char	*path = xasprintf("%s/%s", dir, name);
	int	 ret = -1;

	if ((*fd = open(path, O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0600)) == -1) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(*fd, LOCK_EX|LOCK_NB) == 0)
		ret = 0;
	else if (errno == EWOULDBLOCK)
		ret = 1;
	else
		set_cause(cause, "flock %s: %s", path, strerror(errno));
	if (ret != 0) {
		close(*fd);
		*fd = -1;
	}
out:
	free(path);
	return ret;
}
