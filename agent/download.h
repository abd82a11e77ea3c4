/* download.h - GET an artifact from S3 or HTTP(S), resuming a broken transfer with Range. */
#ifndef ASG_DOWNLOAD_H
#define ASG_DOWNLOAD_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

struct halt;
struct aws;
struct buf;
struct download;

/* How a download waits and tells that it is alive. */
struct download_opts {
	double		 stall_timeout;	/* seconds without progress (0: 30) */
	const struct halt *halt;	/* stopped: no more resumes */
	void		(*tick)(void *);	/* called as bytes arrive: heartbeats */
	void		*tick_arg;
	pthread_mutex_t	*aws_lock;	/* held around each use of the aws context, or NULL */
};

/* Check and take apart url (s3://, https://, http://); nothing is sent yet. */
struct download	*download_new(struct aws *, const char *url, const struct download_opts *,
		    char **);
/* Ask for bytes from..to (inclusive) only, before download_start (default: all). */
void		 download_range(struct download *, long long from, long long to);
/* Send the GET; its status and headers are checked before any byte is read. */
int		 download_start(struct download *, char **);
/*
 * A reader (reader.h) over the object's bytes, arg the download: a broken
 * transfer resumes with a Range request where it stopped, a few times,
 * refusing an object that changed (size or ETag) in between.
 */
ssize_t		 download_read(void *, void *, size_t, char **);
/* The URL as the log may show it (no query, no userinfo). */
const char	*download_log_url(const struct download *);
/* The object's size as the answer gave it, or -1. */
long long	 download_total(const struct download *);
/* Whether the last answer offered byte ranges (Accept-Ranges: bytes). */
int		 download_ranges(const struct download *);
/* Range requests made after a broken transfer. */
int		 download_resumes(const struct download *);
void		 download_free(struct download *);

/* Fetch a small object (a signature) whole into out, at most max bytes; a stop ends it. */
int		 download_small(struct aws *, const struct halt *, const char *url, size_t max,
		    struct buf *out, char **);

#endif
