/* decomp.h - inflate a gzip artifact on its way to the tar reader; anything else passes as it is. */
#ifndef ASG_DECOMP_H
#define ASG_DECOMP_H

#include <stddef.h>
#include <sys/types.h>

#include "reader.h"

struct decomp;

/* A stage reading from read(arg): it looks at the first bytes to tell gzip from the rest. */
struct decomp	*decomp_new(reader_fn, void *);
/* A view reader (reader.h), arg the decomp: the inflated bytes, or the source's as they are. */
ssize_t		 decomp_read(void *, const void **, char **);
/*
 * After the end of the tar: inflate the rest of a gzip stream (so its CRC is
 * checked) and read the source to its real end, refusing too many bytes of either.
 */
int		 decomp_drain(struct decomp *, char **);
/* Whether the source was gzip (known after the first read). */
int		 decomp_gzip(const struct decomp *);
void		 decomp_free(struct decomp *);

#endif
