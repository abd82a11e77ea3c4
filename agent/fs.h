/* fs.h - file system helpers shared by the release and artifact code. */
#ifndef ASG_FS_H
#define ASG_FS_H

/* Remove a directory tree (staging dirs) without following symlinks; 0 also when it did not exist. */
int	fs_rmtree(const char *, char **);

/*
 * A new file beside path to write it whole: made with O_EXCL under an
 * unpredictable name (path.XXXXXX), mode 0644 less the umask. Returns the fd
 * and the name in *tmp, or -1 with a cause.
 */
int	fs_tmpfile(const char *path, char **tmp, char **cause);
/*
 * Put the complete file tmp at path. A missing path, a regular file or a
 * symlink is replaced by renaming tmp over it; a FIFO or a device (or a
 * symlink to one, or to one of the caller's own descriptors: /dev/stdout) is
 * written into and never replaced (fetch -o /dev/null as root keeps
 * /dev/null), if it is the caller's or root's (another user's FIFO in /tmp
 * would read the artifact); a directory or anything else is refused. tmp is gone afterwards either way.
 */
int	fs_commit(const char *tmp, const char *path, char **cause);

/*
 * A lock of a state dir (DIR/NAME, flock): 0 with *fd held until it is
 * closed, 1 when another process holds it, -1 with a cause.
 */
int	fs_lock_try(const char *dir, const char *name, int *fd, char **cause);

#endif
