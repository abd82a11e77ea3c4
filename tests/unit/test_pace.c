/* test_pace.c - the adaptive pacing of an API bucket: holds, the learned rate, CUBIC, a modelled fleet. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pace.h"
#include "tap.h"

/* A free bucket holds nothing; answers that are not throttling change nothing. */
static void
test_free(void)
{
	struct pace	p;

	pace_init(&p);
	tap_dbl(pace_delay(&p, 10), 0, 0, "a free bucket holds nothing");
	pace_answered(&p, 10, 0.5);
	tap_int(p.contended, 0, "a success on a free bucket leaves it free");
	tap_dbl(pace_delay(&p, 10), 0, 0, "and holds nothing");
	tap_dbl(p.rate, 0, 0, "nothing learned");
}

/* The first throttling answer holds the bucket for [floor, 1] x PACE_FIRST. */
static void
test_first_throttle(void)
{
	struct pace	p;

	pace_init(&p);
	pace_throttled(&p, 100, 0);
	tap_dbl(pace_delay(&p, 100), PACE_FIRST * PACE_FLOOR, 1e-9, "u = 0: the least hold");
	pace_init(&p);
	pace_throttled(&p, 100, 0.999999);
	tap_dbl(pace_delay(&p, 100), PACE_FIRST, 1e-5, "u -> 1: the whole window");
	tap_dbl(p.rate, 1 / PACE_FIRST, 1e-9, "learned rate: one request per window");
	tap_dbl(pace_delay(&p, 100 + PACE_FIRST), 0, 0, "the hold ends");
	tap_size(p.throttles, 1, "one throttling answer counted");
}

/* The window grows with how long the bucket has stayed empty, up to PACE_MOST. */
static void
test_window_grows(void)
{
	struct pace	p;

	pace_init(&p);
	pace_throttled(&p, 0, 0.5);
	tap_dbl(pace_window(&p, 0), PACE_FIRST, 1e-9, "at the first answer");
	tap_dbl(pace_window(&p, 4), PACE_FIRST + 4 * PACE_GROW, 1e-9, "4 s later");
	tap_dbl(pace_window(&p, 20), PACE_MOST, 1e-9, "capped at PACE_MOST");
	tap_dbl(pace_window(&p, 1000), PACE_TAIL * 1000, 1e-9,
	    "after minutes of throttling: PACE_TAIL of the contention");
	pace_throttled(&p, 4, 0.999999);
	tap_dbl(pace_delay(&p, 4), PACE_FIRST + 4 * PACE_GROW, 1e-5,
	    "a second answer 4 s on holds for the grown window");
	tap_dbl(p.rate, 1 / (PACE_FIRST + 4 * PACE_GROW), 1e-9, "and learns a lower rate");
}

/* botocore's CUBIC: beta x W_max just after the cut, W_max again at K, then above. */
static void
test_cubic(void)
{
	double	k = cbrt(2.0 * (1 - PACE_CUBIC_BETA) / PACE_CUBIC_C);

	tap_dbl(pace_cubic(2, 0), PACE_CUBIC_BETA * 2, 1e-9, "at the cut: beta x W_max");
	tap_dbl(pace_cubic(2, k), 2, 1e-9, "at K: W_max again");
	tap_true(pace_cubic(2, k + 1) > 2, "past K: above W_max (%g)", pace_cubic(2, k + 1));
}

/* Successes grow the rate back until the bucket is free; each paces the next request. */
static void
test_recovery(void)
{
	struct pace	p;
	double		t = 0, before;
	int		n = 0;

	pace_init(&p);
	pace_throttled(&p, 0, 0.5);
	t = p.next;
	pace_answered(&p, t, 0.999999);
	tap_true(p.contended, "one success does not free the bucket");
	tap_true(pace_delay(&p, t) > 0, "the next request is paced (%g s)", pace_delay(&p, t));
	tap_true(p.rate >= 1 / PACE_FIRST, "the rate never falls on a success (%g)", p.rate);
	before = p.rate;
	while (p.contended && n++ < 1000) {
		t += pace_delay(&p, t) + 0.001;
		pace_answered(&p, t, 0.5);
		if (p.contended && p.rate < before)
			break;
		before = p.rate;
	}
	tap_int(p.contended, 0, "successes free the bucket again");
	tap_true(n < 100, "within a few requests (%d)", n);
	tap_true(t < 10, "within seconds (%g s)", t);
	tap_dbl(pace_delay(&p, t), 0, 0, "and a free bucket holds nothing");
	tap_dbl(p.held, 0, 0, "held time is what the caller reports (none here)");
	pace_held(&p, 1.5);
	pace_held(&p, -1);
	tap_dbl(p.held, 1.5, 1e-12, "negative holds are not counted");
}

/* A deterministic uniform in [0, 1), so the model below is the same every run. */
static double
lcg(unsigned long long *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*s >> 11) / 9007199254740992.0;
}

/*
 * A scale-out in simulated time: 200 clients, one call each, through a
 * bucket of 40 tokens refilled at 5 per second, all starting within 1.5 s
 * (bench/fleet.d/backoff_sim.py models the same). Paced, every client gets
 * through in about the bucket's floor, (200 - 40) / 5 = 32 s, and sends
 * fewer requests than the standard policy's 6 per client.
 */
static void
test_fleet_model(void)
{
	enum { N = 200 };
	struct pace		p[N];
	double			next[N], tokens = 40, last = 0, t, end = 0;
	unsigned long long	seed = 42;
	int			done[N], left = N, attempts = 0, i, best;

	for (i = 0; i < N; i++) {
		pace_init(&p[i]);
		next[i] = 1.5 * lcg(&seed);
		done[i] = 0;
	}
	while (left > 0 && end < 600) {
		for (best = -1, i = 0; i < N; i++) {
			if (!done[i] && (best < 0 || next[i] < next[best]))
				best = i;
		}
		t = next[best];
		tokens += (t - last) * 5;
		tokens = tokens > 40 ? 40 : tokens;
		last = t;
		attempts++;
		if (tokens >= 1) {
			tokens -= 1;
			done[best] = 1;
			left--;
			end = t;
			continue;
		}
		pace_throttled(&p[best], t, lcg(&seed));
		next[best] = t + pace_delay(&p[best], t);
	}
	tap_int(left, 0, "every client got through");
	tap_true((double)attempts / N < 5, "requests per client %.2f < 5 (standard: about 6)",
	    (double)attempts / N);
	tap_true(end < 32 * 1.25, "the last one through at %.1f s, within 25 %% of the floor 32 s",
	    end);
}

int
main(void)
{
	tap_run("free", test_free);
	tap_run("first throttle", test_first_throttle);
	tap_run("window grows", test_window_grows);
	tap_run("cubic", test_cubic);
	tap_run("recovery", test_recovery);
	tap_run("fleet model", test_fleet_model);
	return tap_done();
}
