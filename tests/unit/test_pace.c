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

/* The nearest-rank 99th percentile of v[0..n-1], sorted in place. */
static double
p99_of(double *v, int n)
{
	double	t;
	int	i, j;

	for (i = 1; i < n; i++) {
		for (t = v[i], j = i; j > 0 && v[j - 1] > t; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
	return v[(n - 1) * 99 / 100];
}

/*
 * A scale-out in simulated time: 200 clients, one call each, through a
 * bucket of 40 tokens refilled at 5 per second, all starting within 1.5 s
 * (bench/fleet.d/backoff_sim.py models the same). Paced, every client gets
 * through in about the bucket's floor, (200 - 40) / 5 = 32 s, and sends
 * fewer requests than the standard policy's 6 per client. With boot > 0 a
 * client's call is ready only 10 to 100 % of boot seconds after its start,
 * which counts toward its turn up to the announcement's credit, and front
 * is the share of turns at the spread's start. *p99 (when not NULL): the
 * 99th percentile of the time from a client's start to its token.
 */
static int
fleet_model(double spread, double front, double boot, unsigned long long seed,
    int *throttled, double *end, double *p99)
{
	enum { N = 200 };
	struct pace		p[N];
	double			next[N], start[N], took[N], tokens = 40, last = 0, t, ready;
	int			done[N], left = N, attempts = 0, i, best;

	*throttled = 0;
	*end = 0;
	for (i = 0; i < N; i++) {
		pace_init(&p[i]);
		start[i] = 1.5 * lcg(&seed);
		ready = boot > 0 ? start[i] + boot * (0.1 + 0.9 * lcg(&seed)) : start[i];
		pace_spread(&p[i], start[i], spread, boot > 0 ?
		    pace_announce_credit(N, 1, 40, spread) : 0, front, 5);
		next[i] = ready + pace_start(&p[i], ready, lcg(&seed));
		done[i] = 0;
	}
	while (left > 0 && *end < 600) {
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
			took[N - left] = t - start[best];
			left--;
			*end = t;
			continue;
		}
		(*throttled)++;
		pace_throttled(&p[best], t, lcg(&seed));
		next[best] = t + pace_delay(&p[best], t);
	}
	if (left > 0)
		tap_diag("%d clients left without a token", left);
	if (p99 != NULL && left == 0)
		*p99 = p99_of(took, N);
	return left > 0 ? -1 : attempts;
}

static void
test_fleet_model(void)
{
	enum { N = 200 };
	double	end;
	int	attempts, throttled;

	attempts = fleet_model(0, 0, 0, 42, &throttled, &end, NULL);
	tap_true(attempts > 0, "every client got through (got %d attempts; -1: some left)",
	    attempts);
	tap_true((double)attempts / N < 5, "requests per client %.2f < 5 (standard: about 6)",
	    (double)attempts / N);
	tap_true(end < 32 * 1.25, "the last one through at %.1f s, within 25 %% of the floor 32 s",
	    end);
}

/*
 * The same scale-out announced: first calls spread over the floor. Nearly
 * every client gets through at its first request, and the last close to the
 * floor (a few first calls near its end meet an empty bucket and wait a
 * hold), where without the announcement three in four requests are throttled.
 */
static void
test_fleet_announced(void)
{
	enum { N = 200 };
	double	end, w;
	int	attempts, throttled;

	w = pace_announce_window(N, 1000, 1001, 1, 40, 5);
	tap_dbl(w, 32, 1e-9, "the window is the bucket's floor");
	attempts = fleet_model(w, 0, 0, 42, &throttled, &end, NULL);
	tap_true(attempts > 0, "every client got through (got %d attempts; -1: some left)",
	    attempts);
	tap_true((double)attempts / N < 1.2, "requests per client %.2f < 1.2",
	    (double)attempts / N);
	tap_true(throttled < 0.15 * attempts, "throttled %d of %d requests, under 15 %%",
	    throttled, attempts);
	tap_true(end < 32 * 1.15, "the last one through at %.1f s, within 15 %% of the floor 32 s",
	    end);
	attempts = fleet_model(0, 0, 0, 42, &throttled, &end, NULL);
	tap_true(throttled > 0.6 * attempts, "unannounced: throttled %d of %d requests, over 60 %%",
	    throttled, attempts);
}

/*
 * Boots take time before the call: until the fleet's first calls the bucket
 * sits full and its refill is lost, and turns spread evenly from the start
 * keep it near full for seconds more. A tenth of the fleet at the spread's
 * start (half the burst) takes it down at once: over 20 scale-outs with
 * boots of up to 2 s, the p99 and the last client come sooner, for about
 * as many requests.
 */
static void
test_fleet_front(void)
{
	enum { N = 200, RUNS = 20 };
	double	end, p99, w, f, sum[2][3] = { { 0 } };
	int	attempts, throttled, k, r;

	f = pace_announce_front(N, 1, 40);
	tap_dbl(f, 0.1, 1e-12, "200 instances, one call each: a tenth at the start");
	w = pace_announce_window(N, 1000, 1001, 1, 40, 5);
	for (k = 0; k < 2; k++) {
		for (r = 0; r < RUNS; r++) {
			attempts = fleet_model(w, k ? f : 0, 2, 1000 + r, &throttled, &end, &p99);
			if (attempts < 0)
				break;
			sum[k][0] += p99 / RUNS;
			sum[k][1] += end / RUNS;
			sum[k][2] += (double)attempts / N / RUNS;
		}
		tap_true(attempts > 0, "front %.1f: every client of every run got through", k ? f : 0);
	}
	tap_diag("even turns: p99 %.2f s, last %.2f s, %.3f requests per client", sum[0][0],
	    sum[0][1], sum[0][2]);
	tap_diag("a tenth at the start: p99 %.2f s, last %.2f s, %.3f requests per client",
	    sum[1][0], sum[1][1], sum[1][2]);
	tap_true(sum[1][0] < sum[0][0] - 0.2, "p99 %.2f s with the front, %.2f s without",
	    sum[1][0], sum[0][0]);
	tap_true(sum[1][1] < sum[0][1], "last %.2f s with the front, %.2f s without",
	    sum[1][1], sum[0][1]);
	tap_true(sum[1][2] < sum[0][2] * 1.1, "requests per client %.3f with it, %.3f without",
	    sum[1][2], sum[0][2]);
}

/* The first request's wait, asked for at now, in a 30 s spread set at 100. */
static double
first_turn(double credit, double front, double now, double u)
{
	struct pace	p;

	pace_init(&p);
	pace_spread(&p, 100, 30, credit, front, 5);
	return pace_start(&p, now, u);
}

/* The front share: half the burst's worth of the fleet's calls, at most half the fleet. */
static void
test_announce_front(void)
{
	tap_dbl(pace_announce_front(200, 2, 40), 0.05, 1e-12, "two calls each: 20 of 400 calls");
	tap_dbl(pace_announce_front(50, 1, 40), 0.4, 1e-12, "50 instances: 20 of them");
	tap_dbl(pace_announce_front(30, 1, 40), 0.5, 0, "fewer than the burst: at most half");
	tap_dbl(pace_announce_front(0, 1, 40), 0, 0, "no count: none");
	tap_dbl(pace_announce_front(200, 1, 0), 0, 0, "no burst: none");

	tap_dbl(first_turn(0, 0.1, 100, 0.05), 0, 0, "u in the front share: at the spread's start");
	tap_dbl(first_turn(0, 0.1, 100, 0.1), 0, 1e-9, "u at the share's edge: the start too");
	tap_dbl(first_turn(0, 0.1, 100, 0.55), 15, 1e-9,
	    "the others uniform over the spread: the middle");
	tap_dbl(first_turn(0, 0.1, 100, 1), 30, 1e-9, "and its end");
	tap_dbl(first_turn(0, 1.5, 100, 0.5), 15, 1e-9, "a share out of (0, 1) is none");
	tap_dbl(first_turn(3, 0.1, 101, 0.05), 0, 0, "with a credit too: the front share at once");
	tap_dbl(first_turn(3, 0.1, 110, 0.55), 12, 1e-9, "and the others 15 s less the credit's 3");
}

/* The announcement's value: "COUNT UNIXTIME", digits only. */
static void
test_announce_parse(void)
{
	static const struct {
		const char	*v;
		int		 ok;
		long		 n;
		double		 at;
	} cases[] = {
		{ "200 1796601600", 1, 200, 1796601600 },
		{ "1 1", 1, 1, 1 },
		{ "1000000 1796601600", 1, 1000000, 1796601600 },
		{ "1000001 1796601600", 0, 0, 0 },
		{ "0 1796601600", 0, 0, 0 },
		{ "200", 0, 0, 0 },
		{ "200 ", 0, 0, 0 },
		{ "200  1796601600", 0, 0, 0 },
		{ " 200 1796601600", 0, 0, 0 },
		{ "+200 1796601600", 0, 0, 0 },
		{ "-200 1796601600", 0, 0, 0 },
		{ "200 -1796601600", 0, 0, 0 },
		{ "200 +1796601600", 0, 0, 0 },
		{ "200 0", 0, 0, 0 },
		{ "200 1796601600 ", 0, 0, 0 },
		{ "200 1796601600x", 0, 0, 0 },
		{ "0x10 1796601600", 0, 0, 0 },
		{ "200 99999999999999999999999", 0, 0, 0 },
		{ "", 0, 0, 0 },
	};
	size_t	i;
	long	n;
	double	at;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = -7;
		at = -7;
		tap_int(pace_announce_parse(cases[i].v, &n, &at), cases[i].ok ? 0 : -1,
		    "'%s' %s", cases[i].v, cases[i].ok ? "parses" : "is refused");
		if (cases[i].ok) {
			tap_int(n, cases[i].n, "'%s': its count", cases[i].v);
			tap_dbl(at, cases[i].at, 0, "'%s': its time", cases[i].v);
		} else
			tap_int(n, -7, "'%s': the count untouched", cases[i].v);
	}
}

/* How far a first call is spread: the bucket's floor, for a fresh announcement only. */
static void
test_announce_window(void)
{
	tap_dbl(pace_announce_window(200, 1000, 1030, 2, 40, 5), 72, 1e-9,
	    "two calls each: (400 - 40) / 5");
	tap_dbl(pace_announce_window(30, 1000, 1030, 1, 40, 5), 0, 0,
	    "fewer than the burst: no spread");
	tap_dbl(pace_announce_window(40, 1000, 1030, 1, 40, 5), 0, 0, "exactly the burst: none");
	tap_dbl(pace_announce_window(200, 1000, 1000 + PACE_ANNOUNCED_FOR, 1, 40, 5), 32, 1e-9,
	    "at the announcement's last second: still spread");
	tap_dbl(pace_announce_window(200, 1000, 1001 + PACE_ANNOUNCED_FOR, 1, 40, 5), 0, 0,
	    "a boot after it: a later scale-out, not announced");
	tap_dbl(pace_announce_window(200, 1000 + PACE_ANNOUNCED_SKEW, 1000, 1, 40, 5), 32, 1e-9,
	    "an announcement ahead by the skew allowed: spread");
	tap_dbl(pace_announce_window(200, 1001 + PACE_ANNOUNCED_SKEW, 1000, 1, 40, 5), 0, 0,
	    "further ahead: a clock too wrong to trust");
	tap_dbl(pace_announce_window(200, 1000, 1030, 1, 40, 0), 0, 0, "rate 0: never spread");
	tap_dbl(pace_announce_window(100000, 1000, 1030, 2, 40, 5), PACE_SPREAD_MOST, 0,
	    "capped at PACE_SPREAD_MOST");
}

/* The spread holds the first request alone, and only when set before it. */
static void
test_spread(void)
{
	struct pace	p;

	pace_init(&p);
	tap_dbl(pace_start(&p, 100, 0.5), 0, 0, "no spread: the first request goes at once");
	tap_int(pace_spread(&p, 101, 30, 0, 0, 5), 0, "a spread after the first request: not armed");
	tap_dbl(pace_start(&p, 101, 0.5), 0, 0, "and no wait");
	tap_dbl(pace_delay(&p, 101), 0, 0, "and no hold");

	pace_init(&p);
	tap_int(pace_spread(&p, 100, 0, 0, 0, 5), 0, "a window of 0 arms nothing");
	tap_int(pace_spread(&p, 100, 30, 0, 0, 0), 1, "a window arms the spread");
	tap_dbl(pace_start(&p, 100, 0.5), 15, 1e-9, "the first request: u x the spread");
	tap_dbl(pace_delay(&p, 100), 15, 1e-9, "every request to the bucket waits for it");
	tap_dbl(pace_start(&p, 105, 0.9), 10, 1e-9, "a second request meanwhile: the same moment");
	tap_dbl(pace_start(&p, 115, 0.9), 0, 0, "after it: at once");
	pace_throttled(&p, 115, 0);
	tap_dbl(pace_delay(&p, 115), PACE_FIRST * PACE_FLOOR, 1e-9,
	    "a throttling answer after it holds as before");
}

/* The boot's work before the call counts toward its turn, up to the credit. */
static void
test_spread_credit(void)
{
	struct pace	p;

	tap_dbl(pace_announce_credit(200, 1, 40, 32), 3.2, 1e-9,
	    "200 instances over 32 s: 20 turns (half the burst) come in 3.2 s");
	tap_dbl(pace_announce_credit(200, 2, 40, 72), 3.6, 1e-9, "two calls each over 72 s");
	tap_dbl(pace_announce_credit(0, 1, 40, 32), 0, 0, "no count: no credit");
	tap_dbl(pace_announce_credit(200, 1, 40, 0), 0, 0, "no window: no credit");

	tap_dbl(first_turn(3, 0, 101, 0.5), 14, 1e-9, "1 s of boot counts: 15 - 1");
	tap_dbl(first_turn(3, 0, 110, 0.5), 12, 1e-9, "10 s of boot: the credit's 3 s count");
	pace_init(&p);
	pace_spread(&p, 100, 30, 3, 0, 0);
	tap_dbl(pace_start(&p, 102, 0.01), 0, 0, "a turn that came during the boot: at once");
	tap_dbl(pace_delay(&p, 102), 0, 0, "and no hold");
}

/* In a spread a throttling answer is a dip: the first hold is two refills, then grows. */
static void
test_spread_hold(void)
{
	struct pace	p;

	pace_init(&p);
	pace_spread(&p, 100, 30, 0, 0, 5);
	pace_start(&p, 100, 0.5);
	pace_throttled(&p, 115, 0.999999);
	tap_dbl(pace_delay(&p, 115), 0.4, 1e-5, "rate 5: 2 / 5 s");
	pace_throttled(&p, 116, 0.999999);
	tap_dbl(pace_delay(&p, 116), 0.4 + PACE_GROW, 1e-5, "a second answer 1 s on: grown");
	pace_init(&p);
	pace_spread(&p, 100, 30, 0, 0, 0.5);
	pace_start(&p, 100, 0.5);
	pace_throttled(&p, 115, 0.999999);
	tap_dbl(pace_delay(&p, 115), PACE_FIRST, 1e-5, "a slow refill: never more than PACE_FIRST");
	pace_init(&p);
	pace_spread(&p, 100, 30, 0, 0, 5);
	pace_start(&p, 100, 0.5);
	pace_throttled(&p, 100 + 30 + PACE_SPREAD_TAIL, 0.999999);
	tap_dbl(pace_delay(&p, 100 + 30 + PACE_SPREAD_TAIL), PACE_FIRST, 1e-5,
	    "long after the spread a throttling answer is a crowd again: PACE_FIRST");
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
	tap_run("fleet model, announced", test_fleet_announced);
	tap_run("fleet model, front share", test_fleet_front);
	tap_run("announcement front share", test_announce_front);
	tap_run("announcement parse", test_announce_parse);
	tap_run("announcement window", test_announce_window);
	tap_run("spread", test_spread);
	tap_run("spread credit", test_spread_credit);
	tap_run("spread hold", test_spread_hold);
	return tap_done();
}
