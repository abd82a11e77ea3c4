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

/*
 * A throttled share below (N - burst) / (2N - burst) is out of reach when N
 * instances send their first calls in the same second, whatever they do
 * after a throttling answer: only the first calls spread over the bucket's
 * refill can avoid it, and that needs N. The CI announces it on the group,
 * copied to the instances it launches: "COUNT UNIXTIME".
 */
#define PACE_TAG_SCALE_OUT	"asg-agent:scale-out"
#define PACE_ANNOUNCED_FOR	600.0	/* seconds an announcement holds for boots after it */
#define PACE_ANNOUNCED_SKEW	300.0	/* seconds of clock skew allowed ahead of it */
#define PACE_SPREAD_MOST	600.0	/* seconds: the widest spread of a first call */
#define PACE_SPREAD_TAIL	60.0	/* seconds after a spread its short first hold lasts */

struct pace {
	int		contended;	/* a throttling answer since the rate was last free */
	double		since;		/* when this contention began */
	double		last_throttle;	/* when the last throttling answer came */
	double		rate;		/* learned requests per second; 0 while free */
	double		rate_max;	/* the rate when the last throttling answer came */
	double		next;		/* no request before this time */
	double		held;		/* seconds requests were held back, in all */
	unsigned long	throttles;
	double		spread;		/* seconds the first request is spread over; 0: none */
	double		spread_set;	/* when the spread was set */
	double		credit;		/* seconds of the time since then its turn may count */
	double		front;		/* share of the fleet whose turn is the spread's start */
	double		base;		/* the first throttling answer's window; 0: PACE_FIRST */
	double		first;		/* the first request not before this time */
	int		started;	/* the first request was asked for */
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
 * The window after a throttling answer at now: PACE_FIRST (or the spread's
 * base) plus the growth,
 * capped at PACE_MOST, or PACE_TAIL of the contention so far when longer (a
 * backlog of minutes is not served faster by asking every 8 s).
 */
double	pace_window(const struct pace *, double now);
/*
 * A scale-out's announcement, value of PACE_TAG_SCALE_OUT: its count and
 * when (Unix seconds). 0, or -1 when it does not parse.
 */
int	pace_announce_parse(const char *value, long *count, double *at);
/*
 * The spread a first call of an instance of that scale-out needs, booting at
 * now (Unix seconds), each instance making calls requests of a bucket of
 * burst requests refilled rate per second: (count x calls - burst) / rate,
 * at most PACE_SPREAD_MOST; 0 when the announcement is too old (or ahead of
 * now by more than the skew) or rate is 0.
 */
double	pace_announce_window(long count, double at, double now, int calls, int burst,
	    int rate);
/*
 * The time since the spread was set that its first request's turn may count,
 * at most: the boot's work before the call (turns that came during it are
 * taken at once, together), as long as the bucket's half burst absorbs such
 * turns of the whole fleet, calls x count of them per window.
 */
double	pace_announce_credit(long count, int calls, int burst, double window);
/*
 * The share of a scale-out's instances whose turn is the spread's start:
 * half the burst's worth of their calls, (burst / 2) / (count x calls), at
 * most a half. Until the fleet's first calls the bucket sits full and its
 * refill is lost; turns spread evenly from the start keep it near full for
 * seconds more, losing more, and every token lost there is a throttled turn
 * at the spread's end. This share takes the bucket down to half at once,
 * and the rest still ends with the spread. With the credit's turns (half
 * the burst at most) it is at most the burst.
 */
double	pace_announce_front(long count, int calls, int burst);
/*
 * At now, before the bucket's first request: spread it over window seconds,
 * counting at most credit seconds of the wait from now on as its turn, with
 * the front share of turns at the start. The bucket refills rate requests a
 * second: in a spread fleet a throttling answer means a dip, not a crowd,
 * so the first hold is two refills (until PACE_SPREAD_TAIL after the
 * spread). 1 when armed; 0 when a request went first, or window is 0.
 */
int	pace_spread(struct pace *, double now, double window, double credit, double front,
	    double rate);
/*
 * A request is asked for at now: the first one draws its turn from u: the
 * spread's start when u < front, else ((u - front) / (1 - front)) x spread
 * after it, less the credit earned since the spread was set (not before
 * now). Returns the seconds that moment is ahead of now.
 */
double	pace_start(struct pace *, double now, double u);
/* botocore's CUBIC curve: the rate t seconds after a cut from rate_max. */
double	pace_cubic(double rate_max, double t);

#endif
