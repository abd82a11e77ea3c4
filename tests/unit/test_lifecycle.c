/* test_lifecycle.c - what rollout and publish tag for instances: hooks, the deregistration delay. */
#include <stdio.h>
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

/* The deregistration delay's tag: whole seconds 0 to 3600, nothing else. */
static void
test_dereg_parse(void)
{
	const char	*bad[] = { "", "-1", "+5", " 5", "5 ", "5s", "0x10", "3601",
			    "99999999999999999999", "1e3", "5.0" };
	size_t		 i;

	tap_int(lifecycle_dereg_parse("0"), 0, "0 s: the action at once");
	tap_int(lifecycle_dereg_parse("300"), 300, "AWS's default");
	tap_int(lifecycle_dereg_parse("3600"), 3600, "AWS's most");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		tap_int(lifecycle_dereg_parse(bad[i]), -1, "refused: '%s'", bad[i]);
	tap_int(lifecycle_dereg_parse(NULL), -1, "no tag");
}

static const char attrs_doc[] =
    "<DescribeTargetGroupAttributesResponse><DescribeTargetGroupAttributesResult><Attributes>"
    "<member><Key>stickiness.enabled</Key><Value>false</Value></member>"
    "<member><Key>deregistration_delay.timeout_seconds</Key><Value>120</Value></member>"
    "<member><Key>slow_start.duration_seconds</Key><Value>0</Value></member>"
    "</Attributes></DescribeTargetGroupAttributesResult></DescribeTargetGroupAttributesResponse>";

/* DescribeTargetGroupAttributes: the delay among the other attributes; none is -1. */
static void
test_parse_dereg(void)
{
	struct xml_node	*root = NULL;
	const char	 none[] = "<DescribeTargetGroupAttributesResponse><Attributes><member>"
			    "<Key>stickiness.enabled</Key><Value>false</Value></member>"
			    "</Attributes></DescribeTargetGroupAttributesResponse>";

	tap_int(xml_parse(attrs_doc, strlen(attrs_doc), &root, NULL), 0, "the answer parses");
	tap_int(lifecycle_parse_dereg(root), 120, "the delay");
	xml_free(root);
	root = NULL;
	tap_int(xml_parse(none, strlen(none), &root, NULL), 0, "an answer without it parses");
	tap_int(lifecycle_parse_dereg(root), -1, "no delay");
	xml_free(root);
}

/* A Classic Load Balancer's answer, as the API reference shows it. */
static const char *
draining_doc(const char *enabled, const char *timeout)
{
	static char	buf[1024];

	snprintf(buf, sizeof buf, "<DescribeLoadBalancerAttributesResponse xmlns=\""
	    "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/\">"
	    "<DescribeLoadBalancerAttributesResult><LoadBalancerAttributes>"
	    "<CrossZoneLoadBalancing><Enabled>true</Enabled></CrossZoneLoadBalancing>"
	    "<ConnectionDraining>%s%s%s%s%s%s</ConnectionDraining>"
	    "<ConnectionSettings><IdleTimeout>60</IdleTimeout></ConnectionSettings>"
	    "</LoadBalancerAttributes></DescribeLoadBalancerAttributesResult>"
	    "</DescribeLoadBalancerAttributesResponse>",
	    enabled != NULL ? "<Enabled>" : "", enabled != NULL ? enabled : "",
	    enabled != NULL ? "</Enabled>" : "", timeout != NULL ? "<Timeout>" : "",
	    timeout != NULL ? timeout : "", timeout != NULL ? "</Timeout>" : "");
	return buf;
}

static int
draining(const char *enabled, const char *timeout)
{
	struct xml_node	*root = NULL;
	const char	*doc = draining_doc(enabled, timeout);
	int		 d = -2;

	if (xml_parse(doc, strlen(doc), &root, NULL) == 0)
		d = lifecycle_parse_draining(root);
	xml_free(root);
	return d;
}

/* Connection draining: its timeout when on, 0 when off, -1 for an answer without it. */
static void
test_parse_draining(void)
{
	tap_int(draining("true", "300"), 300, "draining on: its timeout");
	tap_int(draining("true", "1"), 1, "the least timeout");
	tap_int(draining("false", "300"), 0, "draining off: let go at once");
	tap_int(draining("false", NULL), 0, "off without a timeout");
	tap_int(draining("true", NULL), -1, "on without a timeout");
	tap_int(draining("true", "3601"), -1, "a timeout above the tag's range");
	tap_int(draining("true", "-5"), -1, "a negative timeout");
	tap_int(draining("yes", "300"), -1, "an Enabled that is not a boolean");
	tap_int(draining(NULL, NULL), -1, "no ConnectionDraining settings");
	tap_int(lifecycle_parse_draining(NULL), -1, "no answer");
}

int
main(void)
{
	tap_run("round trip", test_round_trip);
	tap_run("edges", test_edges);
	tap_run("refused", test_refused);
	tap_run("parse hooks", test_parse_hooks);
	tap_run("deregistration delay", test_dereg_parse);
	tap_run("parse deregistration delay", test_parse_dereg);
	tap_run("parse connection draining", test_parse_draining);
	return tap_done();
}
