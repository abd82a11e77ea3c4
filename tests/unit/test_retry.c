/* test_retry.c - backoff ceilings, full jitter bounds, deadlines. */
#include <math.h>

#include "aws.h"
#include "retry.h"
#include "tap.h"
#include "util.h"

int
main(void)
{
	struct retry	r;
	double		d, total, now;
	int		i, inside = 1, spread = 0;

	tap_ok(retry_ceiling(0.1, 10, 0) == 0.1, "attempt 0 ceiling is base");
	tap_ok(retry_ceiling(0.1, 10, 3) == 0.8, "ceiling doubles per attempt");
	tap_ok(retry_ceiling(0.1, 10, 10) == 10, "ceiling is capped");
	tap_ok(retry_ceiling(0.1, 10, 100000) == 10, "huge attempt counts stay capped");
	tap_ok(retry_jitter(1, 8, 2, 0) == 0, "jitter with u=0 is 0");
	tap_ok(fabs(retry_jitter(1, 8, 2, 0.5) - 2) < 1e-9, "jitter scales the ceiling");
	for (i = 0; i < 10000; i++) {
		d = retry_random();
		if (d < 0 || d >= 1)
			inside = 0;
		if (d > 0.9)
			spread++;
	}
	tap_ok(inside, "random values lie in [0, 1)");
	tap_ok(spread > 800 && spread < 1200, "random values spread evenly (%d of 10000 > 0.9)",
	    spread);

	retry_init(&r, 0.5, 4, 100);
	inside = 1;
	for (i = 0; i < 20; i++) {
		d = retry_next(&r, 0);
		if (d < 0 || d > retry_ceiling(0.5, 4, i))
			inside = 0;
	}
	tap_ok(inside, "every delay is within its attempt's ceiling");
	tap_ok(r.attempt == 20, "attempts counted");

	retry_init(&r, 1, 1000, 10);
	total = 0;
	now = 0;
	for (i = 0; i < 100 && (d = retry_next(&r, now)) >= 0; i++)
		now += d;
	tap_ok(d < 0 && now <= 10 + 1e-9, "delays never pass the deadline (ended at %.3f)", now);
	tap_ok(retry_next(&r, 10) < 0, "no retry at the deadline");
	retry_init(&r, 100, 100, 5);
	d = retry_next(&r, 4);
	tap_ok(d >= 0 && d <= 1 + 1e-9, "a delay is shortened to land on the deadline");
	(void)total;

	/* After throttling: a higher ceiling, and no delay below half of it. */
	retry_init(&r, 0.1, 8, 1000);
	retry_throttled(&r, 1);
	tap_ok(r.base == 1, "throttling raises the base");
	retry_throttled(&r, 4);
	tap_ok(r.base == 1, "only the first throttling answer of a call raises it");
	inside = 1;
	for (i = 0; i < 2000; i++) {
		r.attempt = i % 6;
		d = retry_next(&r, 0);
		if (d < 0.5 * retry_ceiling(1, 8, i % 6) - 1e-9 ||
		    d > retry_ceiling(1, 8, i % 6) + 1e-9)
			inside = 0;
	}
	tap_ok(inside, "throttled delays lie in [ceiling/2, ceiling]");

	/* The fleet-friendly parts of the AWS client: adaptive slowdown and a rate ceiling. */
	{
		struct aws	a;
		double		t0;

		aws_init(&a, NULL, NULL, "us-east-1", NULL, 10);
		tap_ok(aws_slowdown(&a) == 1, "no slowdown at first");
		aws_adapt(&a, 1);
		aws_adapt(&a, 1);
		tap_ok(aws_slowdown(&a) == 4, "throttling doubles the slowdown");
		for (i = 0; i < 10; i++)
			aws_adapt(&a, 1);
		tap_ok(aws_slowdown(&a) == 32, "slowdown is capped at 32");
		aws_adapt(&a, 0);
		tap_ok(aws_slowdown(&a) == 16, "success halves it");
		for (i = 0; i < 10; i++)
			aws_adapt(&a, 0);
		tap_ok(aws_slowdown(&a) == 1, "and it never drops below 1");
		a.max_rate = 20;
		t0 = mono_now();
		for (i = 0; i < 30; i++)
			aws_rate_wait(&a);
		d = mono_now() - t0;
		tap_ok(d >= 0.45 && d < 2.0, "30 requests at 20/s with a burst of 20 take ~0.5 s (%.3f)",
		    d);
		a.max_rate = 0;
		t0 = mono_now();
		for (i = 0; i < 1000; i++)
			aws_rate_wait(&a);
		tap_ok(mono_now() - t0 < 0.1, "no ceiling when max_rate is 0");
		aws_free(&a);
	}
	return tap_done();
}
