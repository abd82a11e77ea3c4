/* history.c - one past rollout as the value of a group tag (at most 256 characters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "util.h"

void
history_clear(struct history *h)
{
	if (h == NULL)
		return;
	free(h->version);
	free(h->sha256);
	free(h->outcome);
	free(h->from);
	free(h->to);
	free(h->by);
	memset(h, 0, sizeof *h);
}

/* Step times are offsets from the start, so six steps fit in a few dozen characters. */
char *
history_encode(const struct history *h)
{
	struct buf	b;
	size_t		i, keep;
	char		*s;

	memset(&b, 0, sizeof b);
	buf_addf(&b, "%s %s %s from=%s t=", h->version, h->sha256 != NULL ? h->sha256 : "-",
	    h->outcome, h->from);
	for (i = 0; i < h->nsteps; i++) {
		keep = b.len;
		if (i > 0)
			buf_addc(&b, ',');
		if (h->begin[i] >= 0)
			buf_addf(&b, "%lld", h->begin[i] - h->started);
		buf_addc(&b, '-');
		if (h->end[i] >= 0)
			buf_addf(&b, "%lld", h->end[i] - h->started);
		/* Step times that leave no room for " by=" go: a cut inside t= would not parse. */
		if (b.len + 4 > HISTORY_MAX && keep + 4 <= HISTORY_MAX) {
			b.len = keep;
			b.data[keep] = '\0';
			break;
		}
	}
	buf_addf(&b, " by=%s", h->by != NULL ? h->by : "?");
	s = buf_take(&b);
	/* The identity comes last: it is the part that may be cut. */
	if (strlen(s) > HISTORY_MAX)
		s[HISTORY_MAX] = '\0';
	return s;
}

int
history_fits(const struct history *h)
{
	size_t	n;

	/* The longest outcome, no step times, and " by=" with the identity cut to nothing. */
	n = strlen(h->version) + 1 + (h->sha256 != NULL ? strlen(h->sha256) : 1) + 1 +
	    strlen("rolled-back") + strlen(" from=") + strlen(h->from) + strlen(" t=") +
	    strlen(" by=");
	return n <= HISTORY_MAX;
}

/* A step time: empty (-1), or up to nine digits of seconds after the start. */
static int
parse_offset(const char *s, long long started, long long *t)
{
	size_t	n = strspn(s, "0123456789");

	if (*s == '\0') {
		*t = -1;
		return 0;
	}
	if (s[n] != '\0' || n > 9)
		return -1;
	*t = started + atoll(s);
	return 0;
}

static int
parse_times(struct history *h, char *t)
{
	char	*w, *save = NULL, *dash;

	for (w = strtok_r(t, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		if (h->nsteps == HISTORY_STEPS || (dash = strchr(w, '-')) == NULL)
			return -1;
		*dash = '\0';
		if (parse_offset(w, h->started, &h->begin[h->nsteps]) != 0 ||
		    parse_offset(dash + 1, h->started, &h->end[h->nsteps]) != 0)
			return -1;
		h->nsteps++;
	}
	return 0;
}

int
history_parse(const char *key, const char *value, struct history *h)
{
	char	*copy, *by, *w, *save = NULL, *end;
	int	 n = 0, ret = -1;

	memset(h, 0, sizeof *h);
	if (strncmp(key, HISTORY_PREFIX, strlen(HISTORY_PREFIX)) != 0)
		return -1;
	/* Unix seconds, bounded so that a start plus an offset cannot overflow. */
	h->started = strtoll(key + strlen(HISTORY_PREFIX), &end, 10);
	if (*end != '\0' || h->started <= 0 || h->started > HISTORY_MAX_TIME)
		return -1;
	copy = xstrdup(value);
	if ((by = strstr(copy, " by=")) != NULL) {
		h->by = xstrdup(by + 4);
		*by = '\0';
	}
	for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (strncmp(w, "from=", 5) == 0) {
			free(h->from);	/* the last one counts */
			h->from = xstrdup(w + 5);
		}
		else if (strncmp(w, "t=", 2) == 0) {
			if (parse_times(h, w + 2) != 0)
				goto out;
		} else if (n < 3) {
			/* Version, digest ("-": none) and outcome, in that order. */
			if (n == 0)
				h->version = xstrdup(w);
			else if (n == 1 && strcmp(w, "-") != 0)
				h->sha256 = xstrdup(w);
			else if (n == 2)
				h->outcome = xstrdup(w);
			n++;
		}
	}
	if (n == 3 && h->from != NULL)
		ret = 0;
out:
	free(copy);
	if (ret != 0)
		history_clear(h);
	return ret;
}

int
history_mark(struct history *h, size_t step, int end, long long t)
{
	if (step >= HISTORY_STEPS)
		return -1;
	while (h->nsteps <= step) {
		h->begin[h->nsteps] = h->end[h->nsteps] = -1;
		h->nsteps++;
	}
	if (end)
		h->end[step] = t;
	else
		h->begin[step] = t;
	return 0;
}
