/* pfetch.c - one artifact over several connections: ranged GETs of its chunks, handed on in order. */
#include <sys/types.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunks.h"
#include "download.h"
#include "halt.h"
#include "log.h"
#include "manifest.h"
#include "pfetch.h"
#include "util.h"

/* A chunk's place: filled by a connection, then read out by the reader. */
struct slot {
	unsigned char	*buf;
	size_t		 len;
	size_t		 idx;		/* the chunk it holds once ready */
	int		 ready;
};

struct pfetch {
	struct aws		*aws;
	char			*url;
	const struct manifest	*m;
	struct download_opts	 opts;		/* for every connection: no tick */
	void			(*tick)(void *);
	void			*tick_arg;
	const struct halt	*halt;
	int			 n;
	pthread_t		*threads;
	int			 started;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	pthread_mutex_t		 aws_lock;	/* the aws context is one thread's at a time */
	struct slot		*slots;		/* n of them: chunk i goes to slot i % n */
	size_t			 claim;		/* the next chunk a connection takes */
	size_t			 out;		/* the chunk the reader wants next */
	size_t			 pos;		/* read so far of that chunk */
	int			 stopping;
	char			*error;		/* the first failure, for the reader */
	int			 resumes;
};

/*
 * The object's length, as a ranged answer gives it, against the manifest's
 * size: the ranges never reach bytes past it, so only the length can say they are there.
 */
static int
check_end(struct pfetch *p, const struct download *d, char **cause)
{
	long long	total = download_total(d);

	if (total == p->m->size)
		return 0;
	if (total == -1)
		return set_cause(cause, "%s: the answer gives no object length, so the artifact's "
		    "end cannot be checked against the manifest's %lld bytes",
		    download_log_url(d), p->m->size);
	if (total > p->m->size)
		return set_cause(cause, "the artifact is longer than the manifest's %lld "
		    "bytes (%lld)", p->m->size, total);
	return set_cause(cause, "the artifact ends at byte %lld, the manifest says %lld",
	    total, p->m->size);
}

/* Fetch chunk idx into buf over one connection (resuming on its own): 0 or -1. */
static int
fetch_chunk(struct pfetch *p, size_t idx, unsigned char *buf, size_t len, char **cause)
{
	struct download	*d;
	long long	 from = (long long)idx * p->m->chunk_size;
	size_t		 got = 0;
	ssize_t		 r;
	int		 ret = -1;

	if ((d = download_new(p->aws, p->url, &p->opts, cause)) == NULL)
		return -1;
	download_range(d, from, from + (long long)len - 1);
	if (download_start(d, cause) != 0)
		goto out;
	if (p->m->chunks != NULL && check_end(p, d, cause) != 0)
		goto out;
	while (got < len) {
		if ((r = download_read(d, buf + got, len - got, cause)) < 0)
			goto out;
		if (r == 0) {
			set_cause(cause, "%s: chunk %zu ends at %zu of %zu bytes",
			    download_log_url(d), idx, got, len);
			goto out;
		}
		got += (size_t)r;
	}
	/* A size known from the first answer lists no digests: the whole is checked later. */
	ret = p->m->chunks != NULL ? chunks_check(p->m, idx, buf, len, cause) : 0;
out:
	pthread_mutex_lock(&p->mtx);
	p->resumes += download_resumes(d);
	pthread_mutex_unlock(&p->mtx);
	download_free(d);
	return ret;
}

/* The first failure wins; everyone stops. Called with the lock held. */
static void
fail_locked(struct pfetch *p, char *why)
{
	if (p->error == NULL)
		p->error = why;
	else
		free(why);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
}

/* One connection: take the next chunk whose slot is free, fetch it, check it, repeat. */
static void *
worker(void *arg)
{
	struct pfetch	*p = arg;
	struct slot	*s;
	size_t		 idx, len;
	char		*cause = NULL;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		while (!p->stopping && p->claim < p->m->nchunks &&
		    p->claim >= p->out + (size_t)p->n)
			pthread_cond_wait(&p->cond, &p->mtx);
		if (p->stopping || p->claim >= p->m->nchunks || halt_stopped(p->halt))
			break;
		idx = p->claim++;
		s = &p->slots[idx % (size_t)p->n];
		len = (size_t)manifest_chunk_len(p->m, idx);
		pthread_mutex_unlock(&p->mtx);
		if (fetch_chunk(p, idx, s->buf, len, &cause) != 0) {
			pthread_mutex_lock(&p->mtx);
			fail_locked(p, cause != NULL ? cause : xstrdup("chunk fetch failed"));
			cause = NULL;
			break;
		}
		/* A resume leaves the cause of the break behind. */
		free(cause);
		cause = NULL;
		pthread_mutex_lock(&p->mtx);
		s->len = len;
		s->idx = idx;
		s->ready = 1;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

int
pfetch_fit(long long chunk_size, int n)
{
	long long	limit = mem_limit_now(), each, fit;
	size_t		stack = PFETCH_STACK;

	if (limit < 0 || n <= 1)
		return n;
	each = chunk_size + (long long)stack;
	fit = limit / 2 / each;
	if (fit >= n)
		return n;
	if (fit < 1)
		fit = 1;
	log_debug("artifact: %d connections (a %lld-byte chunk and a %zu-byte stack each) "
	    "do not fit in half the memory limit of %lld bytes: %lld", n, chunk_size, stack,
	    limit, fit);
	return (int)fit;
}

/* Every connection's chunk buffer, here on the caller's thread: running out is an error. */
static int
slots_alloc(struct pfetch *p, char **cause)
{
	int	i;

	for (i = 0; i < p->n; i++) {
		if ((p->slots[i].buf = malloc((size_t)p->m->chunk_size)) == NULL)
			return set_cause(cause, "out of memory for %d chunks of %lld bytes", p->n,
			    p->m->chunk_size);
	}
	return 0;
}

struct pfetch *
pfetch_new(struct aws *aws, const char *url, const struct manifest *m, int n,
    const struct download_opts *opts, char **cause)
{
	struct pfetch	*p;
	sigset_t	 all, old;
	pthread_attr_t	 attr;
	int		 i, err;

	p = xcalloc(1, sizeof *p);
	p->aws = aws;
	p->url = xstrdup(url);
	p->m = m;
	p->n = n;
	p->opts = *opts;
	p->tick = opts->tick;
	p->tick_arg = opts->tick_arg;
	p->halt = opts->halt;
	p->opts.tick = NULL;		/* heartbeats come from the reader's thread */
	p->opts.aws_lock = &p->aws_lock;
	pthread_mutex_init(&p->mtx, NULL);
	pthread_mutex_init(&p->aws_lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->slots = xcalloc((size_t)n, sizeof *p->slots);
	p->threads = xcalloc((size_t)n, sizeof *p->threads);
	if (slots_alloc(p, cause) != 0) {
		pfetch_free(p);
		return NULL;
	}
	/* The stack is ours to size: glibc's default follows ulimit -s (8 MiB), musl's is 128 KiB. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PFETCH_STACK);
	/* Signals stay with the main thread: the connections block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++) {
		if ((err = pthread_create(&p->threads[i], &attr, worker, p)) != 0) {
			set_cause(cause, "pthread_create: %s", strerror(err));
			break;
		}
		p->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (p->started == 0) {
		pfetch_free(p);
		return NULL;
	}
	log_debug("artifact: %zu chunks over %d connections", m->nchunks, p->started);
	return p;
}

/* The caller's tick (heartbeats): it may use the aws context the connections share. */
static void
tick(struct pfetch *p)
{
	if (p->tick == NULL)
		return;
	pthread_mutex_lock(&p->aws_lock);
	p->tick(p->tick_arg);
	pthread_mutex_unlock(&p->aws_lock);
}

/* Wait (a second at a time, to notice a stop) until the reader's chunk is in. */
static struct slot *
wait_chunk(struct pfetch *p, char **cause)
{
	struct slot	*s = &p->slots[p->out % (size_t)p->n];
	struct timespec	 ts;

	pthread_mutex_lock(&p->mtx);
	while (!(s->ready && s->idx == p->out) && p->error == NULL) {
		if (halt_stopped(p->halt)) {
			pthread_mutex_unlock(&p->mtx);
			set_cause(cause, "stopped");
			return NULL;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&p->cond, &p->mtx, &ts);
		pthread_mutex_unlock(&p->mtx);
		tick(p);
		pthread_mutex_lock(&p->mtx);
	}
	if (!(s->ready && s->idx == p->out)) {
		set_cause(cause, "%s", p->error);
		s = NULL;
	}
	pthread_mutex_unlock(&p->mtx);
	return s;
}

ssize_t
pfetch_read(void *arg, void *buf, size_t len, char **cause)
{
	struct pfetch	*p = arg;
	struct slot	*s;

	if (p->out >= p->m->nchunks)
		return 0;
	if ((s = wait_chunk(p, cause)) == NULL)
		return -1;
	if (len > s->len - p->pos)
		len = s->len - p->pos;
	memcpy(buf, s->buf + p->pos, len);
	p->pos += len;
	if (p->pos == s->len) {
		pthread_mutex_lock(&p->mtx);
		s->ready = 0;
		p->out++;
		p->pos = 0;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mtx);
	}
	tick(p);
	return (ssize_t)len;
}

int
pfetch_resumes(struct pfetch *p)
{
	int	n;

	pthread_mutex_lock(&p->mtx);
	n = p->resumes;
	pthread_mutex_unlock(&p->mtx);
	return n;
}

void
pfetch_free(struct pfetch *p)
{
	int	i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	for (i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	for (i = 0; i < p->n; i++)
		free(p->slots[i].buf);
	free(p->slots);
	free(p->threads);
	free(p->error);
	free(p->url);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->aws_lock);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}
