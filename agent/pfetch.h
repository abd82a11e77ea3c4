/* pfetch.h - one artifact over several connections: ranged GETs of its chunks, handed on in order. */
#ifndef ASG_PFETCH_H
#define ASG_PFETCH_H

#include <stddef.h>
#include <sys/types.h>

struct aws;
struct download_opts;
struct manifest;
struct pfetch;

/*
 * Start n connections fetching the chunks of url that m (borrowed, verified)
 * lists, each with a ranged GET that resumes on its own when it breaks; each
 * chunk is checked against m before it is handed on, and each answer's
 * object length against m's size (when m lists digests: a size and chunk
 * size alone fetch the chunks unchecked). At most n chunks are held at once,
 * in flight or waiting for their turn: memory is n chunks, allocated here on
 * the caller's thread (running out is an error, not an abort in a connection).
 */
struct pfetch	*pfetch_new(struct aws *, const char *url, const struct manifest *, int n,
		    const struct download_opts *, char **);
/* A connection's thread stack: curl and OpenSSL need far less; RLIMIT_DATA counts it. */
#define PFETCH_STACK	(1024 * 1024)
/*
 * How many of n connections fit: their chunk buffers and thread stacks take at
 * most half the memory limit in force (mem_limit_now), and never fewer than 1.
 */
int		 pfetch_fit(long long chunk_size, int n);
/* A reader (reader.h), arg the pfetch: the artifact's verified bytes, in order. */
ssize_t		 pfetch_read(void *, void *, size_t, char **);
/* Range requests made after broken transfers, over all connections. */
int		 pfetch_resumes(struct pfetch *);
/* Stop the connections (waiting for the chunks under way) and free everything. */
void		 pfetch_free(struct pfetch *);

#endif
