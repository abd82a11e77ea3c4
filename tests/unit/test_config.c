/* test_config.c - the option table: defaults, values, and FILE:LINE errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char *
write_tmp(const char *text)
{
	char	*path = xstrdup("/tmp/asg-test-config-XXXXXX");
	int	 fd;

	if ((fd = mkstemp(path)) == -1 || write(fd, text, strlen(text)) !=
	    (ssize_t)strlen(text))
		fatal("mkstemp");
	close(fd);
	return path;
}

/* Load text; return the error output (or "" when it loaded). */
static char *
load(const char *text, struct config *cfg)
{
	char	*path = write_tmp(text), *errors = NULL, *out;

	if (config_load(cfg, path, 0, &errors) == 0)
		errors = xstrdup("");
	/* Replace the random file name so the tests can compare. */
	out = xstrdup(errors);
	{
		struct buf	 b = { NULL, 0, 0 };
		const char	*p = errors, *hit;
		size_t		 plen = strlen(path);

		while ((hit = strstr(p, path)) != NULL) {
			buf_add(&b, p, (size_t)(hit - p));
			buf_adds(&b, "F");
			p = hit + plen;
		}
		buf_adds(&b, p);
		free(out);
		out = buf_take(&b);
	}
	unlink(path);
	free(path);
	free(errors);
	return out;
}

static void
expect_error(const char *text, const char *want, const char *name)
{
	struct config	 cfg;
	char		*got = load(text, &cfg);

	tap_str(got, want, "%s", name);
	free(got);
	config_free(&cfg);
}

static void
test_defaults(void)
{
	struct config	cfg;

	config_defaults(&cfg);
	tap_int(cfg.log_level, LOGL_INFO, "default log_level is info");
	tap_str(cfg.state_dir, "/var/lib/asg-agent", "default state_dir");
	tap_int(cfg.deadline, 600, "default deadline 600");
	tap_str(cfg.imds_endpoint, "http://169.254.169.254", "default imds_endpoint");
	tap_int(cfg.imds_timeout, 120, "default imds_timeout 120");
	tap_str(cfg.version_tag, "asg-agent:version", "default version tag");
	tap_int(cfg.version_source, VERSION_SOURCE_GROUP, "default version source group");
	tap_ll(cfg.max_size, 4LL << 30, "default max_size 4G");
	tap_int(cfg.allow_unverified, 0, "allow_unverified off by default");
	tap_str(cfg.health_listen, "0.0.0.0:8081", "default health listen");
	tap_str(cfg.signature_url, "{url}.sig", "default signature_url");
	config_free(&cfg);
}

static void
test_values(void)
{
	struct config	 cfg;
	char		*errs;

	errs = load("; comment\n[agent]\nlog_level = debug\ndeadline = 30\n"
	    "[aws]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:5000\n"
	    "[version]\nsource = imds\nwait = 7\n"
	    "[artifact]\nurl = s3://b/app/{version}.tar.gz\nmax_size = 512M\n"
	    "allow_unverified = yes\nkeep = 5\n"
	    "[app]\ncommand = ./run --port 8080\n", &cfg);
	tap_str(errs, "", "a valid file loads without errors");
	tap_int(cfg.log_level, LOGL_DEBUG, "log_level debug");
	tap_int(cfg.deadline, 30, "deadline 30");
	tap_str(cfg.region, "eu-west-1", "region");
	tap_str(cfg.endpoint_url, "http://127.0.0.1:5000", "endpoint_url");
	tap_int(cfg.version_source, VERSION_SOURCE_IMDS, "source imds");
	tap_int(cfg.version_wait, 7, "wait 7");
	tap_ll(cfg.max_size, 512LL << 20, "max_size 512M");
	tap_int(cfg.allow_unverified, 1, "allow_unverified yes");
	tap_int(cfg.keep, 5, "keep 5");
	tap_str(cfg.app_command, "./run --port 8080", "command kept whole");
	free(errs);
	config_free(&cfg);
}

static void
test_errors(void)
{
	expect_error("[agent]\nlog_level = info\nbogus = 1\n",
	    "F:3: unknown key 'bogus' in [agent]\n", "unknown key");
	expect_error("[agent]\n\n[nope]\nx = 1\n",
	    "F:4: unknown section [nope]\n", "unknown section");
	expect_error("[agent]\ndeadline = soon\n",
	    "F:2: deadline: 'soon' is not a whole number\n", "not a number");
	expect_error("[agent]\ndeadline = 5\n",
	    "F:2: deadline: 5 is out of range (10 to 86400)\n", "below range");
	expect_error("[artifact]\nkeep = 1000\n",
	    "F:2: keep: 1000 is out of range (1 to 100)\n", "above range");
	expect_error("[artifact]\nallow_unverified = maybe\n",
	    "F:2: allow_unverified: 'maybe' is not yes or no\n", "bad boolean");
	expect_error("[artifact]\nmax_size = 3X\n",
	    "F:2: max_size: '3X' is not a size (like 512M or 4G)\n", "bad size");
	expect_error("[version]\nsource = guess\n",
	    "F:2: source: 'guess' is not one of group (the ASG's own tag), instance "
	    "(the instance's copy) or imds (IMDS tags only)\n", "bad enum");
	expect_error("[agent]\nlog_level = loud\n",
	    "F:2: log_level: 'loud' is not error, warn, info or debug\n", "bad level");
	expect_error("[agent]\ndeadline = 20\ndeadline = 30\n",
	    "F:3: deadline: set twice in [agent]\n", "duplicate key");
	expect_error("[agent\ndeadline = 20\n",
	    "F:2: deadline: key outside of any section\n"
	    "F:1: syntax error (expected [section] or key = value)\n", "syntax error");
	expect_error("deadline = 20\n",
	    "F:1: deadline: key outside of any section\n", "key outside a section");
	expect_error("[app]\nunit = app.service\ncommand = ./app\n",
	    "F:3: [app] unit and command are both set; choose one\n", "unit and command");
	expect_error("[health]\npath = /metrics\n",
	    "F:2: [health] path and metrics_path are both /metrics; they must differ\n",
	    "path onto the default metrics path");
	expect_error("[health]\nmetrics_path = /healthz\n",
	    "F:2: [health] path and metrics_path are both /healthz; they must differ\n",
	    "metrics path onto the default path");
	expect_error("[health]\nmetrics_path = metrics\n",
	    "F:2: metrics_path: must start with '/'\n", "relative metrics path");
	expect_error("[agent]\nbad = 1\n[aws]\nregion = x\nworse = 2\n",
	    "F:2: unknown key 'bad' in [agent]\nF:5: unknown key 'worse' in [aws]\n",
	    "every problem is reported");
}

/* Long values (presigned URLs) load whole; a line past the limit is refused whole. */
static void
test_long_lines(void)
{
	struct config	 cfg;
	struct buf	 b = { NULL, 0, 0 };
	char		*errs, *text;
	int		 i;

	buf_adds(&b, "[app]\ncommand = ./run");
	for (i = 0; i < 100; i++)
		buf_adds(&b, " --flag");
	buf_adds(&b, "\n");
	text = buf_take(&b);
	errs = load(text, &cfg);
	tap_str(errs, "", "a 700-byte line loads");
	tap_size(cfg.app_command != NULL ? strlen(cfg.app_command) : 0, 705, "and is kept whole");
	free(errs);
	free(text);
	config_free(&cfg);
	buf_adds(&b, "[app]\ncommand = ");
	for (i = 0; i < 9000; i++)
		buf_addc(&b, 'x');
	buf_adds(&b, "\n[agent]\nbogus = 1\n");
	text = buf_take(&b);
	errs = load(text, &cfg);
	tap_str(errs, "F:2: line longer than 8189 bytes\nF:4: unknown key 'bogus' in [agent]\n",
	    "a 9000-byte line is refused on its own line");
	free(errs);
	free(text);
	config_free(&cfg);
}

static void
test_missing(void)
{
	struct config	 cfg;
	char		*errors = NULL;

	tap_int(config_load(&cfg, "/nonexistent/agent.conf", 1, &errors), 0,
	    "missing default file is fine");
	config_free(&cfg);
	tap_int(config_load(&cfg, "/nonexistent/agent.conf", 0, &errors), -1,
	    "missing given file is an error");
	tap_has(errors, "No such file", "and the error says why");
	free(errors);
	config_free(&cfg);
}

/* What one of the config_write_* functions prints. */
static char *
written(void (*fn)(FILE *))
{
	char	*mem = NULL;
	size_t	 memlen = 0;
	FILE	*m;

	if ((m = open_memstream(&mem, &memlen)) == NULL)
		fatal("open_memstream");
	fn(m);
	fclose(m);
	return mem;
}

/* The shipped example must be exactly what the table says (asg-agent config-reference). */
static void
test_example(void)
{
	const char	*srcdir = getenv("ASG_SRCDIR");
	char		*path, *mem, *file = NULL;
	size_t		 n;
	FILE		*f;
	struct buf	 b = { NULL, 0, 0 };
	char		 chunk[4096];

	path = xasprintf("%s/agent.conf.example", srcdir != NULL ? srcdir : ".");
	if ((f = fopen(path, "r")) == NULL) {
		tap_skip("not found", "%s matches the option table", path);
		free(path);
		return;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	file = buf_take(&b);
	mem = written(config_write_example);
	tap_str(file, mem, "agent.conf.example matches the option table "
	    "(else: make update-conf-reference)");
	free(file);
	free(mem);
	free(path);
}

/* One option's entry in the man page's reference, from its .TP to the next. */
static char *
man_entry_of(const char *man, const char *key)
{
	char		*head = xasprintf(".TP\n.BI %s \" = \" ", key);
	const char	*start = strstr(man, head), *end;

	free(head);
	if (start == NULL)
		return xstrdup("(no entry)");
	end = strstr(start + 1, "\n.TP\n");
	return end == NULL ? xstrdup(start) : xstrndup(start, (size_t)(end - start) + 1);
}

/* The roff the binary prints for asg-agent.conf(5): escaping, filling, types, defaults. */
static void
test_man(void)
{
	char		*man = written(config_write_man), *reload = written(config_write_man_reload);
	char		*got;
	const char	*want;

	want = ".SS [agent]\n.TP\n.BI log_level";
	got = xstrndup(man, strlen(want));
	tap_str(got, want, "the reference starts with [agent] log_level");
	free(got);
	got = man_entry_of(man, "state_dir");
	tap_str(got, ".TP\n.BI state_dir \" = \" string\n"
	    "releases, current, state.json and release.env live here.\n.br\n"
	    "Type: string.\nDefault: \\fB/var/lib/asg\\-agent\\fR.\nRead at start only.\n",
	    "a string: its default in bold with the hyphen escaped");
	free(got);
	got = man_entry_of(man, "max_size");
	tap_str(got, ".TP\n.BI max_size \" = \" size\n"
	    "largest unpacked release (bytes; K, M, G, T suffixes).\n.br\n"
	    "Type: size, 1K to 1024T.\nDefault: \\fB4G\\fR.\nRead at start only.\n",
	    "a size: its range with suffixes");
	free(got);
	got = man_entry_of(man, "launch_copy");
	tap_str(got, ".TP\n.BI launch_copy \" = \" yes|no\n"
	    "source = group: on an instance's first boot, use the copy of the group's tags\n"
	    "it got at launch when IMDS or EC2 shows it; no: always ask Auto Scaling.\n"
	    ".br\nType: boolean.\nDefault: \\fByes\\fR.\nRead at start only.\n",
	    "the help filled to 78 columns");
	free(got);
	got = man_entry_of(man, "terminate_hook");
	tap_str(got, ".TP\n.BI terminate_hook \" = \" string\n"
	    "terminate lifecycle hook name; empty: named by the group's tag\n"
	    "asg\\-agent:terminate\\-hook, else found with DescribeLifecycleHooks.\n"
	    ".br\nType: string.\nDefault: empty.\nReloaded by SIGHUP.\n",
	    "an empty default, reloaded by SIGHUP");
	free(got);
	want = ".IP \\(bu 2\n[agent] log_level\n.IP \\(bu 2\n[app] health_timeout\n";
	got = xstrndup(reload, strlen(want));
	tap_str(got, want, "the SIGHUP list starts with log_level and health_timeout");
	free(got);
	free(man);
	free(reload);
}

int
main(void)
{
	tap_run("defaults", test_defaults);
	tap_run("values", test_values);
	tap_run("errors", test_errors);
	tap_run("long lines", test_long_lines);
	tap_run("missing file", test_missing);
	tap_run("example", test_example);
	tap_run("man page", test_man);
	return tap_done();
}
