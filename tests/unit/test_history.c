/* test_history.c - a past rollout as a group tag's value: round trip, the 256-character cut, refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "util.h"

#include "tap.h"

static void
filled(struct history *h)
{
	memset(h, 0, sizeof *h);
	h->started = 1796534895;
	h->version = xstrdup("2.0.0");
	h->sha256 = xstrdup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	h->outcome = xstrdup("running");
	h->from = xstrdup("web-blue");
	h->by = xstrdup("arn:aws:sts::123456789012:assumed-role/ci/job-7");
}

static void
test_round_trip(void)
{
	struct history	h, back;
	char		*v;

	filled(&h);
	history_mark(&h, 0, 0, h.started + 1);
	history_mark(&h, 0, 1, h.started + 9);
	history_mark(&h, 1, 0, h.started + 10);
	v = history_encode(&h);
	tap_str(v, "2.0.0 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa running "
	    "from=web-blue t=1-9,10- by=arn:aws:sts::123456789012:assumed-role/ci/job-7",
	    "step times are offsets from the start; a step not ended has no end");
	tap_int(history_parse("asg-agent:history:1796534895", v, &back), 0, "it parses back");
	tap_ll(back.started, h.started, "the start comes from the key");
	tap_str(back.version, "2.0.0", "version");
	tap_str(back.sha256, h.sha256, "digest");
	tap_str(back.from, "web-blue", "the old group");
	tap_str(back.by, h.by, "who");
	tap_size(back.nsteps, 2, "two steps");
	tap_ll(back.end[0], h.started + 9, "step 1 ended");
	tap_ll(back.begin[1], h.started + 10, "step 2 began");
	tap_ll(back.end[1], -1, "step 2 has not ended");
	history_clear(&back);
	free(v);
	free(h.sha256);
	h.sha256 = NULL;
	v = history_encode(&h);
	tap_int(history_parse("asg-agent:history:1796534895", v, &back), 0, "no digest parses");
	tap_null(back.sha256, "no digest: NULL");
	history_clear(&back);
	free(v);
	history_clear(&h);
}

static void
test_cut_to_fit(void)
{
	struct history	h, back;
	char		*v, by[400];

	filled(&h);
	memset(by, 'r', sizeof by - 1);
	by[sizeof by - 1] = '\0';
	free(h.by);
	h.by = xstrdup(by);
	v = history_encode(&h);
	tap_size(strlen(v), HISTORY_MAX, "a long identity is cut to the tag's 256 characters");
	tap_int(history_parse("asg-agent:history:1796534895", v, &back), 0, "and still parses");
	tap_str(back.version, "2.0.0", "with everything before the identity");
	history_clear(&back);
	free(v);
	tap_int(history_mark(&h, HISTORY_STEPS, 0, 1), -1, "no step past HISTORY_STEPS");
	history_clear(&h);
}

/* Ten steps of long bakes and a long group name: times, not the entry, are lost. */
static void
test_steps_cut_to_fit(void)
{
	struct history	h, back;
	char		*v;
	size_t		i;

	filled(&h);
	free(h.from);
	h.from = xstrdup("web-production-eu-west-1-blue-0123456789abcdef");
	for (i = 0; i < 10; i++) {
		history_mark(&h, i, 0, h.started + 1000000 + (long long)i * 200000);
		history_mark(&h, i, 1, h.started + 1100000 + (long long)i * 200000);
	}
	v = history_encode(&h);
	tap_true(strlen(v) <= HISTORY_MAX, "at most %d characters (%zu)", HISTORY_MAX, strlen(v));
	tap_int(history_parse("asg-agent:history:1796534895", v, &back), 0,
	    "it still parses ('%s')", v);
	tap_str(back.sha256, h.sha256, "the digest is kept");
	tap_str(back.from, h.from, "the old group is kept");
	tap_true(back.nsteps > 0 && back.nsteps < 10, "the first steps' times kept (%zu of 10)",
	    back.nsteps);
	for (i = 0; i < back.nsteps; i++) {
		tap_ll(back.begin[i], h.begin[i], "step %zu's begin", i + 1);
		tap_ll(back.end[i], h.end[i], "step %zu's end (none cut short)", i + 1);
	}
	tap_true(back.by != NULL && strncmp(h.by, back.by, strlen(back.by)) == 0,
	    "the identity, cut ('%s')", back.by != NULL ? back.by : "(none)");
	history_clear(&back);
	free(v);
	history_clear(&h);
}

static void
test_refuses(void)
{
	struct history	h;

	tap_int(history_parse("asg-agent:version", "2.0.0 - running from=a t= by=x", &h), -1,
	    "another tag");
	tap_int(history_parse("asg-agent:history:x", "2.0.0 - running from=a t= by=x", &h), -1,
	    "a key without a time");
	tap_int(history_parse("asg-agent:history:5", "2.0.0 - from=a", &h), -1,
	    "a value without its outcome");
	tap_int(history_parse("asg-agent:history:5", "2.0.0 - running from=a t=1,2", &h), -1,
	    "step times without a dash");
	tap_int(history_parse("asg-agent:history:5", "2.0.0 - running from=a t=1-99999999999",
	    &h), -1, "a step time past nine digits");
	tap_int(history_parse("asg-agent:history:5", "2.0.0 - running from=a t=-5-", &h), -1,
	    "a negative step time");
	tap_int(history_parse("asg-agent:history:999999999999", "2.0.0 - running from=a t=",
	    &h), -1, "a start past HISTORY_MAX_TIME");
	tap_int(history_parse("asg-agent:history:5", "2.0.0 - running from=a t= by=x", &h), 0,
	    "no steps yet is fine");
	history_clear(&h);
}

/* A long old group: the tag would have cut inside from=, which still parsed, wrong. */
static void
test_fits(void)
{
	struct history	h;
	char		name[200];

	filled(&h);
	tap_true(history_fits(&h), "a usual rollout fits");
	memset(name, 'g', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	free(h.from);
	h.from = xstrdup(name);
	tap_true(!history_fits(&h), "a 199-character old group with a digest does not");
	free(h.sha256);
	h.sha256 = NULL;
	tap_true(history_fits(&h), "... without the digest it does");
	history_clear(&h);
}

int
main(void)
{
	tap_run("round trip", test_round_trip);
	tap_run("cut to fit", test_cut_to_fit);
	tap_run("steps cut to fit", test_steps_cut_to_fit);
	tap_run("refuses", test_refuses);
	tap_run("fits", test_fits);
	return tap_done();
}
