/* test_lifecycle.c - the hook tags ("NAME TIMEOUT") that rollout and publish write and instances read. */
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "tap.h"
#include "xml.h"

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

static const char hooks_doc[] =
    "<DescribeLifecycleHooksResponse><DescribeLifecycleHooksResult><LifecycleHooks>"
    "<member><LifecycleHookName>other-tool</LifecycleHookName><LifecycleTransition>"
    "autoscaling:EC2_INSTANCE_LAUNCHING</LifecycleTransition><HeartbeatTimeout>600"
    "</HeartbeatTimeout></member>"
    "<member><LifecycleHookName>ours</LifecycleHookName><LifecycleTransition>"
    "autoscaling:EC2_INSTANCE_LAUNCHING</LifecycleTransition><HeartbeatTimeout>60"
    "</HeartbeatTimeout></member>"
    "<member><LifecycleHookName>bye</LifecycleHookName><LifecycleTransition>"
    "autoscaling:EC2_INSTANCE_TERMINATING</LifecycleTransition><HeartbeatTimeout>300"
    "</HeartbeatTimeout></member>"
    "</LifecycleHooks></DescribeLifecycleHooksResult></DescribeLifecycleHooksResponse>";

/* The first hook of each transition, unless a name asked for is one of the group's. */
static void
test_parse_hooks(void)
{
	struct xml_node		*root = NULL;
	struct lifecycle_hook	 l, t;

	tap_int(xml_parse(hooks_doc, strlen(hooks_doc), &root, NULL), 0, "the answer parses");
	lifecycle_parse_hooks(root, NULL, NULL, &l, &t);
	tap_str(l.name, "other-tool", "no name asked: the first launch hook");
	tap_int(l.timeout, 600, "its timeout");
	tap_str(t.name, "bye", "the terminate hook");
	tap_int(t.timeout, 300, "its timeout");
	free(l.name);
	free(t.name);
	lifecycle_parse_hooks(root, "ours", NULL, &l, &t);
	tap_str(l.name, "ours", "a tag's name that is still a hook of the group wins");
	tap_int(l.timeout, 60, "with its own timeout");
	free(l.name);
	free(t.name);
	lifecycle_parse_hooks(root, "renamed-away", "gone", &l, &t);
	tap_str(l.name, "other-tool", "a name the group no longer has: the first");
	tap_str(t.name, "bye", "the same for the terminate hook");
	free(l.name);
	free(t.name);
	xml_free(root);
}

int
main(void)
{
	tap_run("round trip", test_round_trip);
	tap_run("edges", test_edges);
	tap_run("refused", test_refused);
	tap_run("parse hooks", test_parse_hooks);
	return tap_done();
}
