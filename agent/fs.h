/* fs.h - file system helpers shared by the release and artifact code. */
#ifndef ASG_FS_H
#define ASG_FS_H

/* Remove a directory tree (staging dirs) without following symlinks; 0 also when it did not exist. */
int	fs_rmtree(const char *, char **);

#endif
