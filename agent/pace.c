/* pace.c - adaptive pacing of one API bucket: a learned rate, after the AWS SDKs' adaptive mode. */
#include <math.h>
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
	return p->contended && p->next > now ? p->next - now : 0;
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
	w = PACE_FIRST + PACE_GROW * e;
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
