/*
 * fuzz_rollrec.c - the rollout tag: rollrec_parse, and the round trip
 * rollrec_encode -> rollrec_parse, which must give the same value.
 *
 * Input: the tag's value (anyone who may tag the group writes it, and the
 * CI then scales groups by it).
 * Checks: what rollrec_parse accepts has every field, 1 <= step <= nsteps <=
 * 2 x ROLLREC_MAX_PCT, 1 <= size <= ROLLREC_MAX_SIZE, 0 <= bake <=
 * ROLLREC_MAX_BAKE, times in 0..ROLLREC_MAX_TIME; a refusal keeps nothing;
 * the encoded value parses back and encodes to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "rollrec.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rollrec	 r, r2;
	char		*text, *v1, *v2;

	text = fuzz_cstring(data, len);
	if (rollrec_parse(text, &r) != 0) {
		FUZZ_CHECK(r.version == NULL && r.live == NULL && r.steps == NULL,
		    "a refusal kept fields");
		free(text);
		return 0;
	}
	FUZZ_CHECK(r.version != NULL && r.live != NULL && r.idle != NULL && r.phase != NULL &&
	    r.steps != NULL, "fields missing");
	FUZZ_CHECK(r.step >= 1 && r.step <= r.nsteps && r.nsteps <= 2 * ROLLREC_MAX_PCT,
	    "step %d/%d", r.step, r.nsteps);
	FUZZ_CHECK(r.size >= 1 && r.size <= ROLLREC_MAX_SIZE, "size %d", r.size);
	FUZZ_CHECK(r.bake >= 0 && r.bake <= ROLLREC_MAX_BAKE, "bake %d", r.bake);
	FUZZ_CHECK(r.since >= 0 && r.since <= ROLLREC_MAX_TIME && r.hist >= 0 &&
	    r.hist <= ROLLREC_MAX_TIME, "since %lld hist %lld", r.since, r.hist);
	v1 = rollrec_encode(&r);
	FUZZ_CHECK(rollrec_parse(v1, &r2) == 0, "'%s' does not parse back", v1);
	v2 = rollrec_encode(&r2);
	FUZZ_CHECK(strcmp(v1, v2) == 0, "'%s' became '%s'", v1, v2);
	free(v2);
	free(v1);
	rollrec_clear(&r2);
	rollrec_clear(&r);
	free(text);
	return 0;
}
