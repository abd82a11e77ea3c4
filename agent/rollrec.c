/* rollrec.c - where a rollout is, as the value of the rollout tag on both its groups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rollrec.h"
#include "util.h"

void
rollrec_clear(struct rollrec *r)
{
	if (r == NULL)
		return;
	free(r->version);
	free(r->live);
	free(r->idle);
	free(r->phase);
	free(r->steps);
	memset(r, 0, sizeof *r);
}

/* A whole decimal number in [lo, hi]: the tag drives capacity, so "12abc" is not 12. */
static int
number(const char *s, long long lo, long long hi, long long *v)
{
	char	*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v < lo || *v > hi)
		return -1;
	return 0;
}

static int
int_field(const char *s, long long lo, long long hi, int *out)
{
	long long	v;

	if (number(s, lo, hi, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* "K/N", 1 <= K <= N <= the most steps --steps can make. */
static int
step_field(const char *s, struct rollrec *r)
{
	char	*copy = xstrdup(s), *slash;
	int	 ret = -1;

	if ((slash = strchr(copy, '/')) == NULL)
		goto out;
	*slash = '\0';
	if (int_field(copy, 1, 2 * ROLLREC_MAX_PCT, &r->step) != 0 ||
	    int_field(slash + 1, r->step, 2 * ROLLREC_MAX_PCT, &r->nsteps) != 0)
		goto out;
	ret = 0;
out:
	free(copy);
	return ret;
}

static void
replace_str(char **p, const char *s)
{
	free(*p);
	*p = xstrdup(s);
}

/* One "key=value" word (or the version); -1 for a value that does not read. */
static int
word(const char *w, struct rollrec *r)
{
	long long	v;

	/* A word given twice: the last one counts. */
	if (strncmp(w, "live=", 5) == 0)
		replace_str(&r->live, w + 5);
	else if (strncmp(w, "idle=", 5) == 0)
		replace_str(&r->idle, w + 5);
	else if (strncmp(w, "step=", 5) == 0)
		return step_field(w + 5, r);
	else if (strncmp(w, "phase=", 6) == 0)
		replace_str(&r->phase, w + 6);
	else if (strncmp(w, "size=", 5) == 0)
		return int_field(w + 5, 1, ROLLREC_MAX_SIZE, &r->size);
	else if (strncmp(w, "steps=", 6) == 0)
		replace_str(&r->steps, w + 6);
	else if (strncmp(w, "bake=", 5) == 0)
		return int_field(w + 5, 0, ROLLREC_MAX_BAKE, &r->bake);
	else if (strncmp(w, "since=", 6) == 0) {
		if (number(w + 6, 0, ROLLREC_MAX_TIME, &v) != 0)
			return -1;
		r->since = v;
	} else if (strncmp(w, "hist=", 5) == 0) {
		if (number(w + 5, 0, ROLLREC_MAX_TIME, &v) != 0)
			return -1;
		r->hist = v;
	} else if (strncmp(w, "min=", 4) == 0)
		return int_field(w + 4, 0, ROLLREC_MAX_SIZE, &r->min);
	else if (r->version == NULL)
		r->version = xstrdup(w);
	/* Other words are a later version's: ignored. */
	return 0;
}

/* Only the last step ends "switched" (or is finished); the others end "baked". */
static int
phase_known(const char *p, int last)
{
	if (strcmp(p, "scaling") == 0 || strcmp(p, "baking") == 0 ||
	    strcmp(p, "rolling-back") == 0)
		return 1;
	if (last)
		return strcmp(p, "switched") == 0 || strcmp(p, "finishing") == 0;
	return strcmp(p, "baked") == 0;
}

int
rollrec_parse(const char *s, struct rollrec *r)
{
	char	*copy = xstrdup(s), *w, *save = NULL;
	int	 ret = -1;

	memset(r, 0, sizeof *r);
	r->min = -1;
	for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (word(w, r) != 0) {
			log_debug("rollout tag: bad word '%s'", w);
			goto out;
		}
	}
	if (r->version == NULL || r->live == NULL || r->idle == NULL || r->phase == NULL ||
	    r->steps == NULL || r->step == 0 || r->size == 0 ||
	    !phase_known(r->phase, r->step == r->nsteps)) {
		log_debug("rollout tag: a field is missing or the phase is unknown");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		rollrec_clear(r);
	free(copy);
	return ret;
}

char *
rollrec_encode(const struct rollrec *r)
{
	char	min[24] = "";

	if (r->min >= 0)
		snprintf(min, sizeof min, " min=%d", r->min);
	return xasprintf("%s live=%s idle=%s step=%d/%d phase=%s size=%d steps=%s bake=%d "
	    "since=%lld hist=%lld%s", r->version, r->live, r->idle, r->step, r->nsteps, r->phase,
	    r->size, r->steps, r->bake, r->since, r->hist, min);
}

int
rollrec_steps(const char *s, int *pct, size_t *n, char **cause)
{
	char	*copy, *w, *save = NULL, *end;
	long	 v, last = 0;
	int	 ret = -1;

	*n = 0;
	if (s == NULL || strcmp(s, "-") == 0)
		return 0;
	copy = xstrdup(s);
	for (w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		v = strtol(w, &end, 10);
		if (*end != '\0' || v <= last || v > 100 || *n == ROLLREC_MAX_PCT) {
			set_cause(cause, "bad --steps '%s': at most %d rising percentages up "
			    "to 100", s, ROLLREC_MAX_PCT);
			goto out;
		}
		pct[(*n)++] = (int)(last = v);
	}
	if (last != 100) {
		set_cause(cause, "bad --steps '%s': the last step must be 100", s);
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}
