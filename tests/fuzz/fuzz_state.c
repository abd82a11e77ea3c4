/*
 * fuzz_state.c - state_dir/state.json: state_from_json, and the round trip
 * state_to_json -> state_from_json, which must give the same JSON.
 *
 * Input: a state file as `asg-agent status` reads it (possibly written by
 * another agent version, possibly truncated by a crash).
 * Checks: what state_from_json accepts, state_to_json writes (plain and
 * pretty); that JSON is read back, and written again, byte for byte the same.
 */
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "util.h"

#include "fuzz.h"

static void
check_state(const struct state *st)
{
	int	i;

	FUZZ_CHECK(st->phase >= 0 && st->phase < PHASE_COUNT, "phase %d", st->phase);
	FUZZ_CHECK(st->nsteps >= 0 && st->nsteps <= STATE_MAX_STEPS, "nsteps %d", st->nsteps);
	FUZZ_CHECK(st->ncounters >= 0 && st->ncounters <= STATE_MAX_COUNTERS,
	    "ncounters %d", st->ncounters);
	for (i = 0; i < st->nsteps; i++)
		FUZZ_CHECK(st->steps[i].name != NULL, "step %d has no name", i);
	for (i = 0; i < st->ncounters; i++)
		FUZZ_CHECK(st->counters[i].action != NULL, "counter %d has no action", i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct state	 st, st2, st3;
	char		*text, *cause = NULL, *j1, *j2, *pretty, *j3;

	text = fuzz_cstring(data, len);
	if (state_from_json(&st, text, &cause) != 0) {
		FUZZ_CHECK(cause != NULL, "failure without a cause");
		free(cause);
		free(text);
		return 0;
	}
	FUZZ_CHECK(cause == NULL, "success with a cause");
	check_state(&st);

	j1 = state_to_json(&st, 0);
	FUZZ_CHECK(state_from_json(&st2, j1, &cause) == 0, "own JSON rejected: %s\n%s",
	    cause, j1);
	check_state(&st2);
	j2 = state_to_json(&st2, 0);
	FUZZ_CHECK(strcmp(j1, j2) == 0, "round trip differs:\n%s\n%s", j1, j2);

	/* The pretty form (what state_save writes) reads back the same. */
	pretty = state_to_json(&st2, 1);
	FUZZ_CHECK(state_from_json(&st3, pretty, &cause) == 0, "pretty JSON rejected: %s",
	    cause);
	j3 = state_to_json(&st3, 0);
	FUZZ_CHECK(strcmp(j1, j3) == 0, "pretty round trip differs:\n%s\n%s", j1, j3);

	free(j1);
	free(j2);
	free(j3);
	free(pretty);
	state_free(&st);
	state_free(&st2);
	state_free(&st3);
	free(text);
	return 0;
}
