/* test_policy.c - the boot's decisions: version source, launch copy, reuse, verification. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "tags.h"
#include "util.h"

#include "tap.h"

/* A configuration from the defaults with the fields these decisions read. */
static void
cfg_make(struct config *cfg, int source, int launch_copy, const char *sha256_tag,
    const char *public_key, int allow_unverified)
{
	config_defaults(cfg);
	cfg->version_source = source;
	cfg->version_launch_copy = launch_copy;
	free(cfg->sha256_tag);
	cfg->sha256_tag = xstrdup(sha256_tag);
	free(cfg->public_key);
	cfg->public_key = xstrdup(public_key);
	cfg->allow_unverified = allow_unverified;
}

static void
test_launch_fresh(void)
{
	tap_int(policy_launch_fresh(NULL, "i-1"), 1, "no saved state");
	tap_int(policy_launch_fresh("i-1", "i-1"), 0, "same instance rebooted");
	tap_int(policy_launch_fresh("i-baked", "i-1"), 1,
	    "state baked into the AMI by another instance");
	tap_int(policy_launch_fresh("i-1", NULL), 1, "our id unknown");
}

static void
test_launch_copy(void)
{
	static const struct {
		const char	*name;
		int		 enabled, fresh, group;
		const char	*sha256_tag, *version, *digest;
		int		 want;
	} cases[] = {
		{ "version alone, no digest configured", 1, 1, 1, "", "v1", NULL, 1 },
		{ "version and digest", 1, 1, 1, "Digest", "v1", "ab", 1 },
		{ "digest configured but not copied", 1, 1, 1, "Digest", "v1", NULL, 0 },
		{ "empty digest tag", 1, 1, 1, "Digest", "v1", "", 0 },
		{ "no version tag", 1, 1, 1, "", NULL, NULL, 0 },
		{ "empty version tag", 1, 1, 1, "", "", NULL, 0 },
		{ "turned off", 0, 1, 1, "", "v1", NULL, 0 },
		{ "not the first boot", 1, 0, 1, "", "v1", NULL, 0 },
		{ "group unknown", 1, 1, 0, "", "v1", NULL, 0 },
	};
	struct config	 cfg;
	struct tags	 t;
	size_t		 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg_make(&cfg, VERSION_SOURCE_GROUP, cases[i].enabled, cases[i].sha256_tag, "", 0);
		memset(&t, 0, sizeof t);
		if (cases[i].version != NULL)
			tags_add(&t, cfg.version_tag, cases[i].version);
		if (cases[i].digest != NULL)
			tags_add(&t, "Digest", cases[i].digest);
		tags_add(&t, "aws:autoscaling:groupName", "g");
		tap_int(policy_launch_copy(&cfg, cases[i].fresh, cases[i].group, &t), cases[i].want,
		    "%s", cases[i].name);
		tags_free(&t);
		config_free(&cfg);
	}
}

static void
test_version_source(void)
{
	static const struct {
		const char	*name;
		int		 source;
		enum tag_origin	 from;
		int		 copy;
		const char	*want_name, *want_via;	/* NULL: does not answer */
	} cases[] = {
		{ "source group: group tags answer", VERSION_SOURCE_GROUP, TAGS_FROM_GROUP, 0,
		    "group tag", "" },
		{ "source group: IMDS tags without a launch copy do not", VERSION_SOURCE_GROUP,
		    TAGS_FROM_IMDS, 0, NULL, NULL },
		{ "source group: fresh launch copy in IMDS", VERSION_SOURCE_GROUP, TAGS_FROM_IMDS,
		    1, "group tag", " as copied at launch (IMDS)" },
		{ "source group: fresh launch copy from EC2", VERSION_SOURCE_GROUP, TAGS_FROM_EC2,
		    1, "group tag", " as copied at launch (EC2 DescribeTags)" },
		{ "source group: EC2 tags without a launch copy do not", VERSION_SOURCE_GROUP,
		    TAGS_FROM_EC2, 0, NULL, NULL },
		{ "source instance: IMDS tags", VERSION_SOURCE_INSTANCE, TAGS_FROM_IMDS, 0,
		    "instance tag", " (IMDS)" },
		{ "source instance: EC2 tags", VERSION_SOURCE_INSTANCE, TAGS_FROM_EC2, 0,
		    "instance tag", " (EC2 DescribeTags)" },
		{ "source instance: group tags never", VERSION_SOURCE_INSTANCE, TAGS_FROM_GROUP, 0,
		    NULL, NULL },
		{ "source imds: IMDS tags", VERSION_SOURCE_IMDS, TAGS_FROM_IMDS, 0,
		    "instance tag", " (IMDS)" },
		{ "source imds: EC2 tags never", VERSION_SOURCE_IMDS, TAGS_FROM_EC2, 1, NULL, NULL },
		{ "source imds: group tags never", VERSION_SOURCE_IMDS, TAGS_FROM_GROUP, 0,
		    NULL, NULL },
	};
	struct config	 cfg;
	const char	*name, *via;
	size_t		 i;
	int		 got;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg_make(&cfg, cases[i].source, 1, "", "", 0);
		got = policy_version_source(&cfg, cases[i].from, cases[i].copy, &name, &via);
		if (cases[i].want_name == NULL)
			tap_int(got, 0, "%s", cases[i].name);
		else if (!tap_ok(got == 1 && strcmp(name, cases[i].want_name) == 0 &&
		    strcmp(via, cases[i].want_via) == 0, "%s", cases[i].name))
			tap_diag("  got:  %d '%s' '%s'\n#   want: 1 '%s' '%s'", got,
			    name != NULL ? name : "(null)", via != NULL ? via : "(null)",
			    cases[i].want_name, cases[i].want_via);
		config_free(&cfg);
	}
}

static void
test_verify_and_reuse(void)
{
	static const struct {
		const char	*name;
		const char	*public_key;
		int		 allow;
		const char	*have, *sha256;
		int		 verifiable, reusable;
	} cases[] = {
		{ "digest only: same digest installed", "", 0, "abc", "abc", 1, 1 },
		{ "digest only: digest compared without case", "", 0, "ABC", "abc", 1, 1 },
		{ "digest only: other digest installed", "", 0, "abc", "def", 1, 0 },
		{ "digest only: installed unverified", "", 0, NULL, "abc", 1, 0 },
		{ "nothing configured, no digest", "", 0, "abc", NULL, 0, 0 },
		{ "key: signature-verified install, no digest tag", "/k.pem", 0, "abc", NULL, 1, 1 },
		{ "key: digest tag still decides", "/k.pem", 0, "abc", "def", 1, 0 },
		{ "key: installed unverified is not reused", "/k.pem", 0, NULL, NULL, 1, 0 },
		{ "allow_unverified: unverified install reused", "", 1, NULL, NULL, 1, 1 },
		{ "allow_unverified: verified install reused", "", 1, "abc", NULL, 1, 1 },
	};
	struct config	 cfg;
	char		 name[128];
	size_t		 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg_make(&cfg, VERSION_SOURCE_GROUP, 1, "Digest", cases[i].public_key,
		    cases[i].allow);
		snprintf(name, sizeof name, "verifiable: %s", cases[i].name);
		tap_int(policy_verifiable(&cfg, cases[i].sha256), cases[i].verifiable, "%s", name);
		snprintf(name, sizeof name, "reusable: %s", cases[i].name);
		tap_int(policy_reusable(&cfg, cases[i].have, cases[i].sha256), cases[i].reusable,
		    "%s", name);
		config_free(&cfg);
	}
}

static void
test_worse(void)
{
	static const struct {
		enum outcome	a, b, want;
	} cases[] = {
		{ OUTCOME_OK, OUTCOME_OK, OUTCOME_OK },
		{ OUTCOME_OK, OUTCOME_NOT_FOUND, OUTCOME_OK },
		{ OUTCOME_RETRY, OUTCOME_OK, OUTCOME_RETRY },
		{ OUTCOME_RETRY, OUTCOME_THROTTLED, OUTCOME_THROTTLED },
		{ OUTCOME_THROTTLED, OUTCOME_FATAL, OUTCOME_FATAL },
		{ OUTCOME_NOT_FOUND, OUTCOME_FATAL, OUTCOME_FATAL },
	};
	char	name[64];
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(name, sizeof name, "(%d, %d)", cases[i].a, cases[i].b);
		tap_int(outcome_worse(cases[i].a, cases[i].b), cases[i].want, "%s", name);
		tap_int(outcome_worse(cases[i].b, cases[i].a), cases[i].want, "%s, swapped", name);
	}
}

int
main(void)
{
	tap_run("launch fresh", test_launch_fresh);
	tap_run("launch copy", test_launch_copy);
	tap_run("version source", test_version_source);
	tap_run("verify and reuse", test_verify_and_reuse);
	tap_run("outcome_worse", test_worse);
	return tap_done();
}
