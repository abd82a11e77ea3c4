/* test_rollrec.c - the rollout tag's value: round trip, strict numbers, refusals, --steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollrec.h"
#include "util.h"

#include "tap.h"

#define GOOD	"2.0.0 live=web-blue idle=web-green step=2/4 phase=baking size=6 " \
		"steps=25,100 bake=300 since=1796534900 hist=1796534895"

static void
test_round_trip(void)
{
	struct rollrec	r, back;
	char		*v;

	tap_int(rollrec_parse(GOOD, &r), 0, "a value the CI wrote parses");
	tap_str(r.version, "2.0.0", "version");
	tap_str(r.live, "web-blue", "live group");
	tap_str(r.idle, "web-green", "idle group");
	tap_int(r.step, 2, "step");
	tap_int(r.nsteps, 4, "of");
	tap_str(r.phase, "baking", "phase");
	tap_int(r.size, 6, "size");
	tap_str(r.steps, "25,100", "steps");
	tap_int(r.bake, 300, "bake");
	tap_ll(r.since, 1796534900LL, "since");
	tap_ll(r.hist, 1796534895LL, "hist");
	v = rollrec_encode(&r);
	tap_str(v, GOOD, "it encodes to the same value");
	tap_int(rollrec_parse(v, &back), 0, "which parses back");
	tap_str(back.phase, r.phase, "the same phase");
	rollrec_clear(&back);
	free(v);
	rollrec_clear(&r);
	rollrec_clear(NULL);
	tap_int(rollrec_parse(GOOD " later=word", &r), 0, "a later version's word is ignored");
	rollrec_clear(&r);
	tap_int(rollrec_parse("2.0.0 live=a idle=b step=1/1 phase=switched size=1 steps=- bake=0 "
	    "since=0 hist=0 size=3", &r), 0, "a word given twice");
	tap_int(r.size, 3, "the last one counts");
	tap_int(r.min, -1, "no min: unknown");
	rollrec_clear(&r);
	tap_int(rollrec_parse(GOOD " min=2", &r), 0, "the old group's MinSize");
	tap_int(r.min, 2, "min");
	v = rollrec_encode(&r);
	tap_str(v, GOOD " min=2", "encoded last");
	free(v);
	rollrec_clear(&r);
	tap_int(rollrec_parse("v live=a idle=b step=1/4 phase=rolling-back size=1 steps=50,100",
	    &r), 0, "rolling back from any step");
	rollrec_clear(&r);
	tap_int(rollrec_parse("v live=a idle=b step=4/4 phase=finishing size=1 steps=50,100",
	    &r), 0, "finishing after the last step");
	rollrec_clear(&r);
}

/* Each bad value alone in an otherwise good record. */
static void
refuse(const char *from, const char *to, const char *what)
{
	struct rollrec	 r;
	char		*v, *at;

	at = strstr(GOOD, from);
	if (at == NULL) {
		tap_ok(0, "%s: '%s' is not in the good value", what, from);
		return;
	}
	v = xasprintf("%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
	tap_int(rollrec_parse(v, &r), -1, "%s ('%s')", what, v);
	tap_null(r.version, "%s: nothing kept", what);
	rollrec_clear(&r);
	free(v);
}

static void
test_refuses(void)
{
	struct rollrec	r;

	refuse("size=6", "size=6abc", "a size with junk after it");
	refuse("size=6", "size=-6", "a negative size");
	refuse("size=6", "size=0", "a size of 0");
	refuse("size=6", "size=100001", "a size past ROLLREC_MAX_SIZE");
	refuse("size=6", "size=99999999999999999999", "a size past long long");
	refuse("size=6", "size=", "an empty size");
	refuse("size=6", "size= 6", "a size with a space");
	refuse("step=2/4", "step=2", "a step without its count");
	refuse("step=2/4", "step=5/4", "a step past the count");
	refuse("step=2/4", "step=0/4", "step 0");
	refuse("step=2/4", "step=2/4x", "a count with junk after it");
	refuse("step=2/4", "step=+2/4", "a step with a sign");
	refuse("step=2/4", "step=2/11", "more steps than --steps can make");
	refuse("bake=300", "bake=-1", "a negative bake");
	refuse("bake=300", "bake=86401", "a bake past a day");
	refuse("bake=300", "bake=3e2", "a bake in another notation");
	refuse("since=1796534900", "since=-1", "a negative since");
	refuse("since=1796534900", "since=1796534900.5", "a fractional since");
	refuse("hist=1796534895", "hist=999999999999", "a hist past the year 5138");
	refuse("phase=baking", "phase=switched", "switched before the last step");
	refuse("phase=baking", "phase=cooking", "an unknown phase");
	refuse("phase=baking", "phase=finishing", "finishing before the last step");
	refuse("hist=1796534895", "hist=1796534895 min=-1", "a negative min");
	refuse("hist=1796534895", "hist=1796534895 min=x", "a min that is not a number");
	refuse(" live=web-blue", "", "no live group");
	refuse(" steps=25,100", "", "no steps");
	refuse(" size=6", "", "no size");
	refuse(" step=2/4", "", "no step");
	tap_int(rollrec_parse("", &r), -1, "an empty value");
	tap_int(rollrec_parse("live=a idle=b step=1/1 phase=switched size=1 steps=- bake=0 "
	    "since=0 hist=0", &r), -1, "no version");
	tap_int(rollrec_parse("2.0.0 live=a idle=b step=1/1 phase=switched size=1 steps=-", &r),
	    0, "bake, since and hist default to 0");
	tap_int(r.bake, 0, "bake");
	rollrec_clear(&r);
}

static void
test_steps(void)
{
	int	 pct[ROLLREC_MAX_PCT];
	size_t	 n = 99;
	char	*cause = NULL;

	tap_int(rollrec_steps(NULL, pct, &n, &cause), 0, "no --steps");
	tap_size(n, 0, "no percentages");
	tap_int(rollrec_steps("-", pct, &n, &cause), 0, "'-' is one step");
	tap_size(n, 0, "no percentages");
	tap_int(rollrec_steps("10,50,100", pct, &n, &cause), 0, "three steps");
	tap_size(n, 3, "three percentages");
	tap_int(pct[0], 10, "the first");
	tap_int(pct[2], 100, "the last");
	tap_int(rollrec_steps("1,2,3,4,100", pct, &n, &cause), 0, "ROLLREC_MAX_PCT steps");
	tap_int(rollrec_steps("1,2,3,4,5,100", pct, &n, &cause), -1, "one more");
	tap_has(cause, "at most 5 rising percentages", "says how many");
	free(cause);
	cause = NULL;
	tap_int(rollrec_steps("50,25,100", pct, &n, &cause), -1, "falling");
	free(cause);
	cause = NULL;
	tap_int(rollrec_steps("50,50,100", pct, &n, &cause), -1, "repeated");
	free(cause);
	cause = NULL;
	tap_int(rollrec_steps("50x,100", pct, &n, &cause), -1, "junk");
	free(cause);
	cause = NULL;
	tap_int(rollrec_steps("25,50", pct, &n, &cause), -1, "not ending at 100");
	tap_has(cause, "the last step must be 100", "says why");
	free(cause);
	cause = NULL;
	tap_int(rollrec_steps("100,", pct, &n, &cause), 0, "a trailing comma is no step");
	tap_size(n, 1, "one percentage");
}

int
main(void)
{
	tap_run("round trip", test_round_trip);
	tap_run("refuses", test_refuses);
	tap_run("--steps", test_steps);
	return tap_done();
}
