/* retry.h - capped exponential backoff with jitter, bounded by a deadline. */
#ifndef ASG_RETRY_H
#define ASG_RETRY_H

#include "outcome.h"

struct halt;

#define RETRY_MIN_PAUSE	0.01	/* seconds: no retry loop spins, whatever the jitter */
#define RETRY_TICK	0.25	/* seconds between ticks while pausing */

struct retry {
	double	base;		/* first ceiling, seconds */
	double	cap;		/* largest ceiling, seconds */
	double	floor;		/* delays lie in [floor, 1] x ceiling: 0 is full jitter */
	double	deadline;	/* mono_now() value after which no retry starts */
	int	attempt;	/* retries so far */
	const struct halt *halt;	/* stopped: pauses end, nothing more is tried */
	int	patient;	/* only a hurry (second stop signal) ends the pauses */
	void	(*tick)(void *);	/* called every RETRY_TICK s of a pause, or NULL */
	void	*tick_arg;
};

void	retry_init(struct retry *, double base, double cap, double deadline);
/* The ceiling for a given attempt: min(cap, base * 2^attempt). */
double	retry_ceiling(double base, double cap, int attempt);
/* Full jitter: a delay uniformly in [0, ceiling], given u in [0, 1). */
double	retry_jitter(double base, double cap, int attempt, double u);
/*
 * Back off harder after the first throttling answer of a call: the ceiling
 * starts at least at base, and delays never fall below half of it ("equal
 * jitter"). Later throttling answers change nothing more.
 */
void	retry_throttled(struct retry *, double base);
/*
 * The delay before the next attempt, or -1 when the deadline would pass
 * first. A retry that would overrun is shortened to land on the deadline.
 */
double	retry_next(struct retry *, double now);
/*
 * The pause before asking again after outcome o: retry_next's delay (after
 * OUTCOME_THROTTLED with at least twice the base and equal jitter, as
 * retry_throttled), times slowdown (>= 1), at least RETRY_MIN_PAUSE, and
 * shortened to land on the deadline. -1 when the deadline has passed.
 */
double	retry_pause_for(struct retry *, enum outcome o, double slowdown, double now);
/*
 * Sleep that pause, calling tick as it passes: what every retry loop does
 * before asking again, so that an immediate failure never spins. 0 when the
 * next attempt may start; -1 when the deadline has passed or *stop is set.
 */
int	retry_pause(struct retry *, enum outcome o, double slowdown);
/* A uniform double in [0, 1). */
double	retry_random(void);

#endif
