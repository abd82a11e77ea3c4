/* unpack.h - write a tar archive's entries below a new directory, refusing unsafe ones. */
#ifndef ASG_UNPACK_H
#define ASG_UNPACK_H

#include "reader.h"

struct halt;
struct unpack;

/*
 * An unpacking into dest, which must not exist yet: at most max_size bytes
 * and max_entries entries; a stop fails it between entries.
 */
struct unpack	*unpack_new(const char *dest, long long max_size, long long max_entries,
		    const struct halt *);
/* Make dest (mode 0755), the directory every entry goes below. */
int		 unpack_open(struct unpack *, char **);
/*
 * Read the tar (plain or zstd) from a view reader (reader.h) and write its
 * entries. Unsafe ones (absolute paths, "..", links leaving dest, devices,
 * fifos, a directory on the way that another user owns) fail the whole
 * archive; setuid/setgid, sticky and group/other write bits are dropped
 * (nobody but the agent's user can change the release). The reader's own
 * cause wins over libarchive's.
 */
int		 unpack_entries(struct unpack *, reader_view_fn, void *, char **);
/* All entries are in: set the directories' mtimes. */
int		 unpack_finish(struct unpack *, char **);
/* The format as libarchive read it: "tar", "tar.zst" or "tar+FILTER". */
char		*unpack_format(const struct unpack *);
/* Bytes written, entries read so far. */
long long	 unpack_bytes(const struct unpack *);
long		 unpack_count(const struct unpack *);
/* A failed unpacking: close everything and remove dest if unpack_open made it. */
int		 unpack_remove(struct unpack *, char **);
void		 unpack_free(struct unpack *);

#endif
