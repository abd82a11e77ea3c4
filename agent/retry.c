/* retry.c - capped exponential backoff with full jitter, bounded by a deadline. */
#include <math.h>
#include <stdlib.h>

#include "retry.h"

void
retry_init(struct retry *r, double base, double cap, double deadline)
{
	r->base = base;
	r->cap = cap;
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

double
retry_next(struct retry *r, double now)
{
	double	d;

	if (now >= r->deadline)
		return -1;
	d = retry_jitter(r->base, r->cap, r->attempt, retry_random());
	r->attempt++;
	if (now + d > r->deadline)
		d = r->deadline - now;
	return d;
}
