/* retry.c - capped exponential backoff with jitter, bounded by a deadline. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "halt.h"
#include "log.h"
#include "retry.h"
#include "util.h"

void
retry_init(struct retry *r, double base, double cap, double deadline)
{
	r->base = base;
	r->cap = cap;
	r->floor = 0;
	r->deadline = deadline;
	r->attempt = 0;
	r->halt = NULL;
	r->patient = 0;
	r->tick = NULL;
	r->tick_arg = NULL;
}

double
retry_ceiling(double base, double cap, int attempt)
{
	double	c;

	if (attempt > 60)
		attempt = 60;
	c = ldexp(base, attempt);
	return c < cap ? c : cap;
}

double
retry_jitter(double base, double cap, int attempt, double u)
{
	return u * retry_ceiling(base, cap, attempt);
}

/* Jitter must differ between instances booted from one image at one moment: the kernel's pool. */
double
retry_random(void)
{
	uint32_t	v;
	ssize_t		n;
	struct timespec	ts;

	do
		n = getrandom(&v, sizeof v, GRND_NONBLOCK);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof v) {
		/* Only before the pool is ready, early in boot: time and pid still differ. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint32_t)ts.tv_nsec * 2654435761u ^ (uint32_t)getpid() * 40503u;
	}
	return (double)v / 4294967296.0;
}

/*
 * An empty shared bucket refills at a fixed rate whatever we do, so a retry
 * drawn near zero is almost sure to be throttled again: equal jitter spends
 * fewer calls than full jitter for the same time to get through.
 */
void
retry_throttled(struct retry *r, double base)
{
	/* Once per call: the ceiling doubles per attempt from here on anyway. */
	if (r->floor > 0)
		return;
	if (r->base < base)
		r->base = base;
	r->floor = 0.5;
}

double
retry_next(struct retry *r, double now)
{
	double	d;

	if (now >= r->deadline)
		return -1;
	d = retry_jitter(r->base, r->cap, r->attempt,
	    r->floor + (1 - r->floor) * retry_random());
	r->attempt++;
	if (now + d > r->deadline)
		d = r->deadline - now;
	return d;
}

double
retry_pause_for(struct retry *r, enum outcome o, double slowdown, double now)
{
	double	d;

	if (o == OUTCOME_THROTTLED)
		retry_throttled(r, 2 * r->base);
	if ((d = retry_next(r, now)) < 0)
		return -1;
	d *= slowdown > 1 ? slowdown : 1;
	/* Full jitter may draw next to nothing: a failing call is never asked again at once. */
	if (d < RETRY_MIN_PAUSE)
		d = RETRY_MIN_PAUSE;
	if (now + d > r->deadline)
		d = r->deadline - now;
	return d;
}

static int
stopped(const struct retry *r)
{
	return r->patient ? halt_hurried(r->halt) : halt_stopped(r->halt);
}

/* What the log calls the outcome a pause follows. */
static const char *
pause_reason(enum outcome o)
{
	return o == OUTCOME_THROTTLED ? "throttled" : "no usable answer";
}

int
retry_pause(struct retry *r, enum outcome o, double slowdown)
{
	double	end, left;

	if (stopped(r))
		return -1;
	if ((left = retry_pause_for(r, o, slowdown, mono_now())) < 0) {
		log_debug("retry: deadline passed after %d retries (%s): giving up",
		    r->attempt, pause_reason(o));
		return -1;
	}
	/* The operator sees each back-off as it is chosen, before the wait. */
	log_debug("retry: back-off %.2f s before retry %d (%s)", left, r->attempt,
	    pause_reason(o));
	end = mono_now() + left;
	while (!stopped(r) && (left = end - mono_now()) > 0) {
		sleep_for(r->tick != NULL && left > RETRY_TICK ? RETRY_TICK : left, r->halt);
		if (r->tick != NULL)
			r->tick(r->tick_arg);
	}
	return stopped(r) ? -1 : 0;
}
