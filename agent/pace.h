/* pace.h - adaptive pacing of one API bucket: a learned rate, after the AWS SDKs' adaptive mode. */
#ifndef ASG_PACE_H
#define ASG_PACE_H

/*
 * The SDKs' "adaptive" retry mode gives each client a token bucket whose
 * rate follows a CUBIC curve: cut on a throttling answer, grown back on
 * success. It is built for one client making many calls. An agent in a
 * scale-out is one of hundreds of clients making two or three calls each,
 * so the cut here is a hold: after a throttling answer no call to that
 * bucket is sent for a jittered window that grows with how long the bucket
 * has stayed empty (a bucket empty for longer has more clients waiting on
 * it), and the learned rate is the inverse of that window. Successes grow
 * the rate back along botocore's CUBIC curve until it is free again.
 *
 * Pure: every function takes the time and, where jitter is drawn, a uniform
 * u in [0, 1); nothing here sleeps or reads a clock.
 */

#define PACE_FIRST	2.0	/* seconds: the hold after a first throttling answer */
#define PACE_GROW	0.7	/* seconds of hold added per second the bucket stays empty */
#define PACE_MOST	8.0	/* seconds: the longest hold ... */
#define PACE_TAIL	0.1	/* ... or this share of the time the bucket has stayed empty */
#define PACE_FLOOR	0.7	/* holds lie in [PACE_FLOOR, 1] x the window */
#define PACE_FREE	20.0	/* requests per second: at this learned rate, no more pacing */
#define PACE_CUBIC_C	0.4	/* botocore's CUBIC scale constant */
#define PACE_CUBIC_BETA	0.7	/* botocore's CUBIC multiplicative decrease */

struct pace {
	int		contended;	/* a throttling answer since the rate was last free */
	double		since;		/* when this contention began */
	double		last_throttle;	/* when the last throttling answer came */
	double		rate;		/* learned requests per second; 0 while free */
	double		rate_max;	/* the rate when the last throttling answer came */
	double		next;		/* no request before this time */
	double		held;		/* seconds requests were held back, in all */
	unsigned long	throttles;
};

/* A free bucket: nothing learned, nothing held. */
void	pace_init(struct pace *);
/* The seconds to hold the next request at time now (0: send it now). */
double	pace_delay(const struct pace *, double now);
/* Count seconds a request was held back. */
void	pace_held(struct pace *, double seconds);
/* A throttling answer at now: cut the rate and hold the bucket's next request. */
void	pace_throttled(struct pace *, double now, double u);
/* Any other answer at now: grow the rate back along the CUBIC curve. */
void	pace_answered(struct pace *, double now, double u);
/*
 * The window after a throttling answer at now: PACE_FIRST plus the growth,
 * capped at PACE_MOST, or PACE_TAIL of the contention so far when longer (a
 * backlog of minutes is not served faster by asking every 8 s).
 */
double	pace_window(const struct pace *, double now);
/* botocore's CUBIC curve: the rate t seconds after a cut from rate_max. */
double	pace_cubic(double rate_max, double t);

#endif
