/*
 * fuzz_history.c - a rollout history tag: history_parse, and the round trip
 * history_encode -> history_parse, which must give the same value.
 *
 * Input: the tag's key, a newline, its value (anyone who may tag the group
 * writes both).
 * Checks: what history_parse accepts has a version, an outcome, the old group
 * and at most HISTORY_STEPS steps; history_encode writes at most HISTORY_MAX
 * characters; a value not cut to fit parses back and encodes to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "history.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct history	 h, h2;
	char		*text, *value, *v1, *v2, key[64];

	text = fuzz_cstring(data, len);
	if ((value = strchr(text, '\n')) == NULL) {
		free(text);
		return 0;
	}
	*value++ = '\0';
	if (history_parse(text, value, &h) != 0) {
		free(text);
		return 0;
	}
	FUZZ_CHECK(h.version != NULL && h.outcome != NULL && h.from != NULL, "fields missing");
	FUZZ_CHECK(h.nsteps <= HISTORY_STEPS, "nsteps %zu", h.nsteps);
	v1 = history_encode(&h);
	FUZZ_CHECK(strlen(v1) <= HISTORY_MAX, "encoded %zu characters", strlen(v1));
	snprintf(key, sizeof key, HISTORY_PREFIX "%lld", h.started);
	if (strlen(v1) < HISTORY_MAX) {
		FUZZ_CHECK(history_parse(key, v1, &h2) == 0, "'%s' does not parse back", v1);
		v2 = history_encode(&h2);
		FUZZ_CHECK(strcmp(v1, v2) == 0, "'%s' became '%s'", v1, v2);
		free(v2);
		history_clear(&h2);
	}
	free(v1);
	history_clear(&h);
	free(text);
	return 0;
}
