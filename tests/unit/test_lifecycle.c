/* test_lifecycle.c - the hook tags ("NAME TIMEOUT") that rollout and publish write and instances read. */
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "tap.h"

/* What rollout writes reads back the same. */
static void
test_round_trip(void)
{
	struct lifecycle_hook	 h = { "launch/blue_1-a", 900 }, back;
	char			*v = lifecycle_hook_encode(&h);

	tap_str(v, "launch/blue_1-a 900", "encoded");
	tap_int(lifecycle_hook_parse(v, &back), 0, "parses");
	tap_str(back.name, "launch/blue_1-a", "name back");
	tap_int(back.timeout, 900, "timeout back");
	free(back.name);
	free(v);
}

/* The edges AWS allows: names of 1 and 255 characters, timeouts of 30 and 7200 s. */
static void
test_edges(void)
{
	struct lifecycle_hook	 h;
	char			 name[300];

	tap_int(lifecycle_hook_parse("x 30", &h), 0, "one-character name, 30 s");
	tap_int(h.timeout, 30, "30 s");
	free(h.name);
	tap_int(lifecycle_hook_parse("x 7200", &h), 0, "7200 s");
	free(h.name);
	memset(name, 'a', 255);
	strcpy(name + 255, " 60");
	tap_int(lifecycle_hook_parse(name, &h), 0, "255-character name");
	tap_size(strlen(h.name), 255, "the whole name");
	free(h.name);
}

/* Anything else is refused and leaves nothing to free: the instance then asks AWS. */
static void
test_refused(void)
{
	static const char	*bad[] = {
		"", "launch", "launch ", " 900", "launch 29", "launch 7201", "launch 900 ",
		"launch  900", "launch -900", "launch +900", "launch 9x", "launch 0x10",
		"la unch 900", "launch\t900", "launch;rm 900", "launch 99999999999999999999",
		"läunch 900", "launch\n 900",
	};
	struct lifecycle_hook	 h;
	char			 name[300];
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		h.name = (char *)"untouched";
		tap_int(lifecycle_hook_parse(bad[i], &h), -1, "refused: '%s'", bad[i]);
		tap_null(h.name, "nothing to free after '%s'", bad[i]);
	}
	tap_int(lifecycle_hook_parse(NULL, &h), -1, "no tag");
	memset(name, 'a', 256);
	strcpy(name + 256, " 60");
	tap_int(lifecycle_hook_parse(name, &h), -1, "a 256-character name");
}

int
main(void)
{
	tap_run("round trip", test_round_trip);
	tap_run("edges", test_edges);
	tap_run("refused", test_refused);
	return tap_done();
}
