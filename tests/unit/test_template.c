/* test_template.c - the config's URL templates: variables, encoding, and the refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

#include "tap.h"

static const char *const vars[][2] = {
	{ "version", "1.2.3" }, { "group", "web a?b" }, { "region", "eu-west-1" },
	{ "instance_id", NULL }, { "url", "https://h/x y" }, { NULL, NULL }
};

static void
expands(const char *tmpl, int encode, const char *want, const char *name)
{
	char	*got, *cause = NULL;

	got = tmpl_expand(tmpl, vars, encode, &cause);
	if (!tap_str(got, want, "%s", name) && cause != NULL)
		tap_diag("  cause: %s", cause);
	free(got);
	free(cause);
}

static void
refuses(const char *tmpl, const char *want_cause, const char *name)
{
	char	*got, *cause = NULL;

	got = tmpl_expand(tmpl, vars, 0, &cause);
	tap_null(got, "%s: no expansion", name);
	tap_has(cause, want_cause, "%s: the cause says why", name);
	free(got);
	free(cause);
}

static void
test_expands(void)
{
	expands("s3://b/app-{version}.tar.gz", 0, "s3://b/app-1.2.3.tar.gz",
	    "s3 URL: {version} as it is");
	expands("s3://b/{group}/{version}", 0, "s3://b/web a?b/1.2.3",
	    "s3 URL: no encoding (the key is encoded when signed)");
	expands("https://h/{group}/{version}", 1, "https://h/web%20a%3Fb/1.2.3",
	    "https URL: values percent-encoded, a '?' cannot start a query");
	expands("{url}.sig", 1, "https://h/x y.sig", "{url} is never encoded again");
	expands("no variables", 1, "no variables", "a template without variables");
	expands("{region}{region}", 0, "eu-west-1eu-west-1", "a variable twice");
}

static void
test_refuses(void)
{
	refuses("s3://b/{version", "unclosed '{'", "an unclosed brace is refused");
	refuses("s3://b/{colour}", "unknown variable {colour}", "an unknown variable is refused");
	refuses("s3://b/{instance_id}", "{instance_id} is not known yet",
	    "a variable without a value yet is refused");
	refuses("s3://b/{}", "unknown variable {}", "an empty name is refused");
}

int
main(void)
{
	tap_run("expands", test_expands);
	tap_run("refuses", test_refuses);
	return tap_done();
}
