/* retry.c - capped exponential backoff with jitter, bounded by a deadline. */
#include <math.h>
#include <stdlib.h>

#include "retry.h"

void
retry_init(struct retry *r, double base, double cap, double deadline)
{
	r->base = base;
	r->cap = cap;
	r->floor = 0;
	r->deadline = deadline;
	r->attempt = 0;
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

double
retry_random(void)
{
	return (double)arc4random() / 4294967296.0;
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
