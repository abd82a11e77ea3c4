/* reader.h - the two reader types the artifact stages are chained by. */
#ifndef ASG_READER_H
#define ASG_READER_H

#include <stddef.h>
#include <sys/types.h>

/* Copy the next bytes into the caller's buffer: >0 read, 0 at the end, -1 with a cause. */
typedef ssize_t (*reader_fn)(void *, void *, size_t, char **);
/* Lend the next bytes from the reader's own buffer: >0, 0 at the end, -1 with a cause. */
typedef ssize_t (*reader_view_fn)(void *, const void **, char **);

#endif
