/* retry.h - capped exponential backoff with jitter, bounded by a deadline. */
#ifndef ASG_RETRY_H
#define ASG_RETRY_H

struct retry {
	double	base;		/* first ceiling, seconds */
	double	cap;		/* largest ceiling, seconds */
	double	floor;		/* delays lie in [floor, 1] x ceiling: 0 is full jitter */
	double	deadline;	/* mono_now() value after which no retry starts */
	int	attempt;	/* retries so far */
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
/* A uniform double in [0, 1). */
double	retry_random(void);

#endif
