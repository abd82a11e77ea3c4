/* pace.c - adaptive pacing of one API bucket: a learned rate, after the AWS SDKs' adaptive mode. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pace.h"

void
pace_init(struct pace *p)
{
	memset(p, 0, sizeof *p);
}

double
pace_delay(const struct pace *p, double now)
{
	double	d = p->contended && p->next > now ? p->next - now : 0;

	if (p->first > now && p->first - now > d)
		d = p->first - now;
	return d;
}

int
pace_announce_parse(const char *value, long *count, double *at)
{
	char		*end;
	long		 n;
	long long	 t;

	/* Digits only: strtol alone would take signs, spaces and hex prefixes. */
	if (value[0] < '0' || value[0] > '9')
		return -1;
	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || *end != ' ' || end[1] < '0' || end[1] > '9' || n < 1 ||
	    n > 1000000)
		return -1;
	t = strtoll(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || t < 1)
		return -1;
	*count = n;
	*at = (double)t;
	return 0;
}

double
pace_announce_window(long count, double at, double now, int calls, int burst, int rate)
{
	double	w;

	if (rate <= 0 || now - at > PACE_ANNOUNCED_FOR || at - now > PACE_ANNOUNCED_SKEW)
		return 0;
	w = ((double)count * calls - burst) / rate;
	if (w <= 0)
		return 0;
	return w < PACE_SPREAD_MOST ? w : PACE_SPREAD_MOST;
}

double
pace_announce_credit(long count, int calls, int burst, double window)
{
	if (count < 1 || calls < 1 || window <= 0)
		return 0;
	return burst / 2.0 * window / ((double)count * calls);
}

double
pace_announce_front(long count, int calls, int burst)
{
	double	f;

	if (count < 1 || calls < 1 || burst < 1)
		return 0;
	f = burst / 2.0 / ((double)count * calls);
	return f < 0.5 ? f : 0.5;
}

int
pace_spread(struct pace *p, double now, double window, double credit, double front,
    double rate)
{
	if (p->started || window <= 0)
		return 0;
	p->spread = window;
	p->spread_set = now;
	p->credit = credit;
	p->front = front > 0 && front < 1 ? front : 0;
	p->base = rate > 0 && 2 / rate < PACE_FIRST ? 2 / rate : 0;
	return 1;
}

double
pace_start(struct pace *p, double now, double u)
{
	double	c, x;

	if (!p->started) {
		p->started = 1;
		if (p->spread > 0) {
			c = now - p->spread_set;
			c = c < p->credit ? c : p->credit;
			/* One draw decides both: below the front share a turn at the start, else spread. */
			x = u < p->front ? 0 : (u - p->front) / (1 - p->front);
			p->first = now - c + x * p->spread;
		}
	}
	return p->first > now ? p->first - now : 0;
}

void
pace_held(struct pace *p, double seconds)
{
	if (seconds > 0)
		p->held += seconds;
}

double
pace_window(const struct pace *p, double now)
{
	double	e = 0, w, most;

	if (p->contended && now > p->since)
		e = now - p->since;
	w = PACE_FIRST;
	/* Days later a throttling answer is a crowd again (a mass scale-in, say). */
	if (p->base > 0 && now < p->spread_set + p->spread + PACE_SPREAD_TAIL)
		w = p->base;
	w += PACE_GROW * e;
	most = PACE_TAIL * e > PACE_MOST ? PACE_TAIL * e : PACE_MOST;
	return w < most ? w : most;
}

double
pace_cubic(double rate_max, double t)
{
	double	k;

	/* botocore: W(t) = C (t - K)^3 + W_max, K = cbrt(W_max (1 - beta) / C). */
	k = cbrt(rate_max * (1 - PACE_CUBIC_BETA) / PACE_CUBIC_C);
	return PACE_CUBIC_C * pow(t - k, 3) + rate_max;
}

void
pace_throttled(struct pace *p, double now, double u)
{
	double	w;

	if (!p->contended) {
		p->contended = 1;
		p->since = now;
	}
	w = pace_window(p, now);
	p->rate_max = p->rate > 0 ? p->rate : 1 / w;
	p->rate = 1 / w;
	p->last_throttle = now;
	p->throttles++;
	/* Jitter spreads the clients this answer reached over the window. */
	p->next = now + w * (PACE_FLOOR + (1 - PACE_FLOOR) * u);
}

void
pace_answered(struct pace *p, double now, double u)
{
	double	r;

	if (!p->contended)
		return;
	r = pace_cubic(p->rate_max, now - p->last_throttle);
	if (r < p->rate)
		r = p->rate;	/* the curve's dip below the cut is not a second cut */
	if (r >= PACE_FREE) {
		p->contended = 0;
		p->rate = p->rate_max = 0;
		p->next = 0;
		return;
	}
	p->rate = r;
	p->next = now + (PACE_FLOOR + (1 - PACE_FLOOR) * u) / r;
}
