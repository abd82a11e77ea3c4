/* test_retry.c - backoff ceilings, full jitter bounds, deadlines, the retry loops' pause. */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "aws.h"
#include "halt.h"
#include "retry.h"
#include "tap.h"
#include "util.h"

static struct halt	halt;
static int		ticks;

static void
on_alarm(int sig)
{
	(void)sig;
	halt.stop = 1;
}

static void
count_tick(void *arg)
{
	(void)arg;
	ticks++;
}

/* retry_pause_for and retry_pause: what every retry loop waits before asking again. */
static void
test_pause(void)
{
	struct retry		r;
	struct sigaction	sa;
	struct itimerval	it;
	double			d, t0, lo = 1e9, hi = 0;
	int			i, inside = 1;

	/* After a failure the pause is never 0 (full jitter may draw 0), nor above the cap. */
	retry_init(&r, 0.25, 2, 1e9);
	for (i = 0; i < 5000; i++) {
		r.attempt = i % 8;
		d = retry_pause_for(&r, OUTCOME_RETRY, 1, 0);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	tap_true(lo >= RETRY_MIN_PAUSE, "a pause after a failure is at least %.3f s (least %.6f)",
	    RETRY_MIN_PAUSE, lo);
	tap_true(hi <= 2 + 1e-9, "a pause is at most the cap 2 s (most %.3f)", hi);
	retry_init(&r, 0.25, 2, 1e9);
	for (i = 0; i < 5000; i++) {
		r.attempt = i % 8;
		d = retry_pause_for(&r, OUTCOME_RETRY, 4, 0);
		if (d < RETRY_MIN_PAUSE || d > 8 + 1e-9)
			inside = 0;
	}
	tap_true(inside, "a slowdown of 4 stretches the cap to 8 s, no further");

	/* Throttled: at least twice the base, never below half the ceiling. */
	retry_init(&r, 0.25, 2, 1e9);
	d = retry_pause_for(&r, OUTCOME_THROTTLED, 1, 0);
	tap_dbl(r.base, 0.5, 0, "throttled: the base doubles");
	tap_dbl(r.floor, 0.5, 0, "throttled: the floor is half the ceiling");
	tap_true(d >= 0.25 - 1e-9 && d <= 0.5 + 1e-9, "throttled pause %.3f lies in [0.25, 0.5]",
	    d);

	/* The deadline: a pause lands on it, none starts after it. */
	retry_init(&r, 100, 100, 10);
	d = retry_pause_for(&r, OUTCOME_RETRY, 32, 9.995);
	tap_dbl(d, 0.005, 1e-9, "a pause ends on the deadline");
	tap_true(retry_pause_for(&r, OUTCOME_RETRY, 1, 10) < 0, "no pause (-1) at the deadline");
	r.deadline = mono_now() - 1;
	tap_int(retry_pause(&r, OUTCOME_RETRY, 1), -1,
	    "retry_pause: -1 once the deadline passed");

	/* It sleeps, ticking, as long as the pause. */
	retry_init(&r, 0.4, 0.4, 1e9);
	r.floor = 1;		/* no jitter: exactly the ceiling */
	r.tick = count_tick;
	ticks = 0;
	t0 = mono_now();
	i = retry_pause(&r, OUTCOME_RETRY, 1);
	d = mono_now() - t0;
	tap_int(i, 0, "retry_pause returned 0 after its pause");
	tap_true(d >= 0.4 - 1e-3 && d < 1.0, "retry_pause slept %.3f s (want 0.4)", d);
	tap_true(ticks >= 2, "the tick ran during the pause (%d times, want >= 2)", ticks);

	/* The stop flag: set before, no pause at all; set during, the pause ends early. */
	retry_init(&r, 5, 5, 1e9);
	r.floor = 1;
	halt.stop = 1;
	r.halt = &halt;
	t0 = mono_now();
	i = retry_pause(&r, OUTCOME_RETRY, 1);
	d = mono_now() - t0;
	tap_int(i, -1, "stopped before: retry_pause returns -1");
	tap_true(d < 0.1, "stopped before: no pause at all (%.3f s)", d);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof it);
	it.it_value.tv_usec = 200000;
	halt.stop = 0;
	t0 = mono_now();
	setitimer(ITIMER_REAL, &it, NULL);
	i = retry_pause(&r, OUTCOME_RETRY, 1);
	d = mono_now() - t0;
	tap_int(i, -1, "stopped during: retry_pause returns -1");
	tap_true(d >= 0.15 && d < 1.0, "stopped at 0.2 s into a 5 s pause: it ends then (%.3f s)",
	    d);

	/* Patient (the drain's retries): a stop does not end the pause, a hurry does. */
	retry_init(&r, 0.2, 0.2, 1e9);
	r.floor = 1;
	r.halt = &halt;
	r.patient = 1;
	halt.stop = 1;
	halt.hurry = 0;
	t0 = mono_now();
	i = retry_pause(&r, OUTCOME_RETRY, 1);
	d = mono_now() - t0;
	tap_int(i, 0, "patient, stopped: retry_pause returns 0");
	tap_true(d >= 0.2 - 1e-3, "patient, stopped: the whole pause (%.3f s, want 0.2)", d);
	halt.hurry = 1;
	t0 = mono_now();
	i = retry_pause(&r, OUTCOME_RETRY, 1);
	d = mono_now() - t0;
	tap_int(i, -1, "patient, hurried: retry_pause returns -1");
	tap_true(d < 0.1, "patient, hurried: no pause (%.3f s)", d);
	halt.stop = halt.hurry = 0;
	signal(SIGALRM, SIG_DFL);
}

/* retry_ceiling, retry_jitter and retry_random: the numbers a back-off is made of. */
static void
test_ceiling(void)
{
	double	d;
	int	i, inside = 1, spread = 0;

	tap_dbl(retry_ceiling(0.1, 10, 0), 0.1, 0, "attempt 0 ceiling is base");
	tap_dbl(retry_ceiling(0.1, 10, 3), 0.8, 0, "ceiling doubles per attempt");
	tap_dbl(retry_ceiling(0.1, 10, 10), 10, 0, "ceiling is capped");
	tap_dbl(retry_ceiling(0.1, 10, 100000), 10, 0, "huge attempt counts stay capped");
	tap_dbl(retry_jitter(1, 8, 2, 0), 0, 0, "jitter with u=0 is 0");
	tap_dbl(retry_jitter(1, 8, 2, 0.5), 2, 1e-9, "jitter scales the ceiling");
	for (i = 0; i < 10000; i++) {
		d = retry_random();
		if (d < 0 || d >= 1)
			inside = 0;
		if (d > 0.9)
			spread++;
	}
	tap_true(inside, "random values lie in [0, 1)");
	tap_true(spread > 800 && spread < 1200, "random values spread evenly (%d of 10000 > 0.9)",
	    spread);
}

/* retry_next: delays within each attempt's ceiling, never past the deadline. */
static void
test_next(void)
{
	struct retry	r;
	double		d, now;
	int		i, inside = 1;

	retry_init(&r, 0.5, 4, 100);
	for (i = 0; i < 20; i++) {
		d = retry_next(&r, 0);
		if (d < 0 || d > retry_ceiling(0.5, 4, i))
			inside = 0;
	}
	tap_true(inside, "every delay is within its attempt's ceiling");
	tap_int(r.attempt, 20, "attempts counted");

	retry_init(&r, 1, 1000, 10);
	now = 0;
	for (i = 0; i < 100 && (d = retry_next(&r, now)) >= 0; i++)
		now += d;
	tap_true(d < 0 && now <= 10 + 1e-9, "delays never pass the deadline (ended at %.3f)",
	    now);
	tap_true(retry_next(&r, 10) < 0, "no retry at the deadline");
	retry_init(&r, 100, 100, 5);
	d = retry_next(&r, 4);
	tap_true(d >= 0 && d <= 1 + 1e-9, "a delay is shortened to land on the deadline (%.3f)",
	    d);

	/* After throttling: a higher ceiling, and no delay below half of it. */
	retry_init(&r, 0.1, 8, 1000);
	retry_throttled(&r, 1);
	tap_dbl(r.base, 1, 0, "throttling raises the base");
	retry_throttled(&r, 4);
	tap_dbl(r.base, 1, 0, "only the first throttling answer of a call raises it");
	inside = 1;
	for (i = 0; i < 2000; i++) {
		r.attempt = i % 6;
		d = retry_next(&r, 0);
		if (d < 0.5 * retry_ceiling(1, 8, i % 6) - 1e-9 ||
		    d > retry_ceiling(1, 8, i % 6) + 1e-9)
			inside = 0;
	}
	tap_true(inside, "throttled delays lie in [ceiling/2, ceiling]");
}

/* The fleet-friendly parts of the AWS client: adaptive slowdown and a rate ceiling. */
static void
test_fleet(void)
{
	struct aws	a;
	double		d, t0;
	int		i;

	aws_init(&a, NULL, NULL, "us-east-1", NULL, 10);
	tap_dbl(aws_slowdown(&a), 1, 0, "no slowdown at first");
	aws_adapt(&a, 1);
	aws_adapt(&a, 1);
	tap_dbl(aws_slowdown(&a), 4, 0, "throttling doubles the slowdown");
	for (i = 0; i < 10; i++)
		aws_adapt(&a, 1);
	tap_dbl(aws_slowdown(&a), 32, 0, "slowdown is capped at 32");
	aws_adapt(&a, 0);
	tap_dbl(aws_slowdown(&a), 16, 0, "success halves it");
	for (i = 0; i < 10; i++)
		aws_adapt(&a, 0);
	tap_dbl(aws_slowdown(&a), 1, 0, "and it never drops below 1");
	a.max_rate = 20;
	t0 = mono_now();
	for (i = 0; i < 30; i++)
		aws_rate_wait(&a);
	d = mono_now() - t0;
	tap_true(d >= 0.45 && d < 2.0, "30 requests at 20/s with a burst of 20 take ~0.5 s (%.3f)",
	    d);
	a.max_rate = 0;
	t0 = mono_now();
	for (i = 0; i < 1000; i++)
		aws_rate_wait(&a);
	d = mono_now() - t0;
	tap_true(d < 0.1, "no ceiling when max_rate is 0 (%.3f s for 1000)", d);
	aws_free(&a);
}

/* What a loop with more to do than one call asks before it makes the call. */
static void
test_held(void)
{
	struct aws	a;

	aws_init(&a, NULL, NULL, "us-east-1", NULL, 10);
	a.adaptive = 1;
	tap_dbl(aws_held(&a, AWS_AUTOSCALING), 0, 0, "nothing held before a throttling answer");
	pace_throttled(&a.pace[AWS_AUTOSCALING], mono_now(), 1);
	tap_true(aws_held(&a, AWS_AUTOSCALING) > 1, "a throttling answer holds the API (%.2f s)",
	    aws_held(&a, AWS_AUTOSCALING));
	tap_dbl(aws_held(&a, AWS_EC2), 0, 0, "and that API alone");
	tap_dbl(aws_held(&a, AWS_NSERVICES), 0, 0, "no service, no hold");
	a.adaptive = 0;
	tap_dbl(aws_held(&a, AWS_AUTOSCALING), 0, 0, "retry_mode = standard holds nothing");
	aws_free(&a);
}

int
main(void)
{
	tap_run("ceiling", test_ceiling);
	tap_run("next", test_next);
	tap_run("pause", test_pause);
	tap_run("fleet", test_fleet);
	tap_run("held", test_held);
	return tap_done();
}
