/* config.c - the agent's INI configuration, parsed with inih through one table of options. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "log.h"
#include "template.h"
#include "util.h"

enum opt_type {
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_SIZE,
	OPT_ENUM,
	OPT_LEVEL,
};

/* Rows name their fields (like tmux's options-table.c): unused ones are zero. */
struct opt {
	const char	*section;
	const char	*key;
	enum opt_type	 type;
	size_t		 offset;
	long long	 min;
	long long	 max;
	const char	*def;		/* parsed like a value from the file */
	const char	*const *choices;	/* OPT_ENUM */
	const char	*help;
	int		 reload;	/* SIGHUP may change it while running */
};

static const char *const retry_modes[] = { "adaptive", "standard", NULL };
static const char *const version_sources[] = { "group", "instance", "imds", NULL };

#define O(f) offsetof(struct config, f)
static const struct opt opts[] = {
	{ .section = "agent",
	  .key = "log_level",
	  .type = OPT_LEVEL,
	  .offset = O(log_level),
	  .def = "info",
	  .help = "error, warn, info or debug",
	  .reload = 1
	},
	{ .section = "agent",
	  .key = "state_dir",
	  .type = OPT_STRING,
	  .offset = O(state_dir),
	  .def = "/var/lib/asg-agent",
	  .help = "releases, current, state.json and release.env live here"
	},
	{ .section = "agent",
	  .key = "deadline",
	  .type = OPT_INT,
	  .offset = O(deadline),
	  .min = 10,
	  .max = 86400,
	  .def = "600",
	  .help = "seconds the whole boot path may take before it fails closed"
	},
	{ .section = "agent",
	  .key = "memory_limit",
	  .type = OPT_SIZE,
	  .offset = O(memory_limit),
	  .min = 32LL << 20,
	  .max = 1LL << 50,
	  .def = "256M",
	  .help = "data segment limit (RLIMIT_DATA) of run, fetch and prefetch: a runaway "
		  "allocation fails the boot with ABANDON before the OOM killer comes"
	},

	{ .section = "aws",
	  .key = "region",
	  .type = OPT_STRING,
	  .offset = O(region),
	  .def = "",
	  .help = "region; empty: AWS_REGION, AWS_DEFAULT_REGION, then IMDS"
	},
	{ .section = "aws",
	  .key = "imds_endpoint",
	  .type = OPT_STRING,
	  .offset = O(imds_endpoint),
	  .def = "http://169.254.169.254",
	  .help = "IMDS base URL; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides it"
	},
	{ .section = "aws",
	  .key = "endpoint_url",
	  .type = OPT_STRING,
	  .offset = O(endpoint_url),
	  .def = "",
	  .help = "one endpoint for every AWS service; the AWS_ENDPOINT_URL* variables "
		  "override it"
	},
	{ .section = "aws",
	  .key = "imds_timeout",
	  .type = OPT_INT,
	  .offset = O(imds_timeout),
	  .min = 1,
	  .max = 3600,
	  .def = "120",
	  .help = "seconds to keep retrying while IMDS is not up yet"
	},
	{ .section = "aws",
	  .key = "api_timeout",
	  .type = OPT_INT,
	  .offset = O(api_timeout),
	  .min = 1,
	  .max = 3600,
	  .def = "60",
	  .help = "seconds one AWS API call may spend retrying throttling and 5xx answers "
	    "(5 at most once serving, so that the app's checks go on)"
	},
	{ .section = "aws",
	  .key = "max_rate",
	  .type = OPT_INT,
	  .offset = O(max_rate),
	  .min = 0,
	  .max = 1000,
	  .def = "10",
	  .help = "AWS API requests per second this agent sends at most, S3 transfers not "
	      "counted (0: no limit)"
	},
	{ .section = "aws",
	  .key = "retry_mode",
	  .type = OPT_ENUM,
	  .offset = O(retry_mode),
	  .def = "adaptive",
	  .choices = retry_modes,
	  .help = "adaptive (a throttling answer holds every call to that API for a "
		  "window that grows while AWS keeps throttling, and the rate is learned "
		  "back) or standard (each call backs off on its own)"
	},
	{ .section = "aws",
	  .key = "autoscaling_burst",
	  .type = OPT_INT,
	  .offset = O(autoscaling_burst),
	  .min = 0,
	  .max = 100000,
	  .def = "40",
	  .help = "requests the account's Auto Scaling bucket holds, as far as known (AWS "
	      "does not publish it): with autoscaling_rate, how far an announced "
	      "scale-out (tag asg-agent:scale-out) spreads its instances' first calls"
	},
	{ .section = "aws",
	  .key = "autoscaling_rate",
	  .type = OPT_INT,
	  .offset = O(autoscaling_rate),
	  .min = 0,
	  .max = 10000,
	  .def = "5",
	  .help = "requests per second that refill the account's Auto Scaling bucket, as "
	      "far as known (0: never spread first calls, even when announced)"
	},

	{ .section = "version",
	  .key = "tag",
	  .type = OPT_STRING,
	  .offset = O(version_tag),
	  .def = "asg-agent:version",
	  .help = "tag whose value names the version to run"
	},
	{ .section = "version",
	  .key = "source",
	  .type = OPT_ENUM,
	  .offset = O(version_source),
	  .def = "group",
	  .choices = version_sources,
	  .help = "group (the ASG's own tag), instance (the instance's copy) or imds "
		  "(IMDS tags only)"
	},
	{ .section = "version",
	  .key = "launch_copy",
	  .type = OPT_BOOL,
	  .offset = O(version_launch_copy),
	  .max = 1,
	  .def = "yes",
	  .help = "source = group: on an instance's first boot, use the copy of the "
		  "group's tags it got at launch when IMDS or EC2 shows it; no: always "
		  "ask Auto Scaling"
	},
	{ .section = "version",
	  .key = "wait",
	  .type = OPT_INT,
	  .offset = O(version_wait),
	  .min = 1,
	  .max = 86400,
	  .def = "300",
	  .help = "seconds to wait for the tag to appear before failing closed"
	},

	{ .section = "artifact",
	  .key = "url",
	  .type = OPT_STRING,
	  .offset = O(artifact_url),
	  .def = "",
	  .help = "s3://BUCKET/KEY or https:// URL; takes {version} {group} {region} "
		  "{instance_id}"
	},
	{ .section = "artifact",
	  .key = "sha256_tag",
	  .type = OPT_STRING,
	  .offset = O(sha256_tag),
	  .def = "asg-agent:sha256",
	  .help = "tag holding the artifact's SHA-256 (hex), or manifest:HEX pinning its "
		  "chunk manifest; empty to not use one"
	},
	{ .section = "artifact",
	  .key = "public_key",
	  .type = OPT_STRING,
	  .offset = O(public_key),
	  .def = "",
	  .help = "PEM public key that signs artifacts (ECDSA P-256 or RSA); empty: no signature"
	},
	{ .section = "artifact",
	  .key = "signature_url",
	  .type = OPT_STRING,
	  .offset = O(signature_url),
	  .def = "{url}.sig",
	  .help = "where the detached signature is; {url} is the artifact URL"
	},
	{ .section = "artifact",
	  .key = "keep",
	  .type = OPT_INT,
	  .offset = O(keep),
	  .min = 1,
	  .max = 100,
	  .def = "3",
	  .help = "releases kept in state_dir/releases"
	},
	{ .section = "artifact",
	  .key = "max_size",
	  .type = OPT_SIZE,
	  .offset = O(max_size),
	  .min = 1024,
	  .max = 1LL << 50,
	  .def = "4G",
	  .help = "largest unpacked release (bytes; K, M, G, T suffixes)"
	},
	{ .section = "artifact",
	  .key = "connections",
	  .type = OPT_INT,
	  .offset = O(connections),
	  .min = 1,
	  .max = 16,
	  .def = "3",
	  .help = "connections fetching the chunks of an artifact at once (fewer when their "
		  "chunks and thread stacks would pass half of memory_limit)"
	},
	{ .section = "artifact",
	  .key = "allow_unverified",
	  .type = OPT_BOOL,
	  .offset = O(allow_unverified),
	  .max = 1,
	  .def = "no",
	  .help = "run an artifact with neither digest nor signature (never in production)"
	},

	{ .section = "app",
	  .key = "unit",
	  .type = OPT_STRING,
	  .offset = O(app_unit),
	  .def = "",
	  .help = "systemd unit started with systemctl; or set command"
	},
	{ .section = "app",
	  .key = "command",
	  .type = OPT_STRING,
	  .offset = O(app_command),
	  .def = "",
	  .help = "argv run by the agent in the release dir (no shell); or set unit"
	},
	{ .section = "app",
	  .key = "pre_start",
	  .type = OPT_STRING,
	  .offset = O(pre_start),
	  .def = "",
	  .help = "program inside the release run before the app starts"
	},
	{ .section = "app",
	  .key = "pre_start_timeout",
	  .type = OPT_INT,
	  .offset = O(pre_start_timeout),
	  .min = 1,
	  .max = 3600,
	  .def = "120",
	  .help = "seconds pre_start may run"
	},
	{ .section = "app",
	  .key = "health_url",
	  .type = OPT_STRING,
	  .offset = O(health_url),
	  .def = "http://127.0.0.1:8080/health",
	  .help = "the app's local health check; 2xx is healthy"
	},
	{ .section = "app",
	  .key = "health_timeout",
	  .type = OPT_INT,
	  .offset = O(health_timeout),
	  .min = 1,
	  .max = 86400,
	  .def = "300",
	  .help = "seconds the app may take to turn healthy",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "stop_timeout",
	  .type = OPT_INT,
	  .offset = O(stop_timeout),
	  .min = 1,
	  .max = 3600,
	  .def = "30",
	  .help = "seconds between SIGTERM and SIGKILL to a command's process group",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "health_interval",
	  .type = OPT_INT,
	  .offset = O(health_interval),
	  .min = 1,
	  .max = 300,
	  .def = "5",
	  .help = "seconds between health probes once serving",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "probe_timeout",
	  .type = OPT_INT,
	  .offset = O(probe_timeout),
	  .min = 1,
	  .max = 60,
	  .def = "2",
	  .help = "seconds one health probe of the app may take (at boot, and once serving at "
		  "most [app] health_interval); a slower answer counts as a failed probe",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "unhealthy_after",
	  .type = OPT_INT,
	  .offset = O(unhealthy_after),
	  .min = 1,
	  .max = 100,
	  .def = "3",
	  .help = "failed probes in a row before the health endpoint turns 503",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "unhealthy_grace",
	  .type = OPT_INT,
	  .offset = O(unhealthy_grace),
	  .min = 0,
	  .max = 86400,
	  .def = "60",
	  .help = "seconds an unhealthy app may take to recover before the instance is replaced",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "replace_unhealthy",
	  .type = OPT_BOOL,
	  .offset = O(replace_unhealthy),
	  .max = 1,
	  .def = "yes",
	  .help = "call SetInstanceHealth Unhealthy after the grace, so the ASG replaces us",
	  .reload = 1
	},
	{ .section = "app",
	  .key = "warm_start",
	  .type = OPT_BOOL,
	  .offset = O(warm_start),
	  .max = 1,
	  .def = "no",
	  .help = "in a warm pool, also start the app once (then stop it) before the "
		  "hook completes"
	},

	{ .section = "health",
	  .key = "listen",
	  .type = OPT_STRING,
	  .offset = O(health_listen),
	  .def = "0.0.0.0:8081",
	  .help = "address:port of the load balancer's health endpoint; empty to disable"
	},
	{ .section = "health",
	  .key = "path",
	  .type = OPT_STRING,
	  .offset = O(health_path),
	  .def = "/healthz",
	  .help = "path of the health endpoint"
	},
	{ .section = "health",
	  .key = "metrics_path",
	  .type = OPT_STRING,
	  .offset = O(metrics_path),
	  .def = "/metrics",
	  .help = "path of the Prometheus metrics on the health endpoint; empty to disable"
	},
	{ .section = "health",
	  .key = "lb_healthy_threshold",
	  .type = OPT_INT,
	  .offset = O(lb_healthy_threshold),
	  .min = 1,
	  .max = 10,
	  .def = "5",
	  .help = "the target group's HealthyThresholdCount (a Classic Load Balancer's "
		  "HealthyThreshold): load-balancer checks in a row before it counts the "
		  "instance healthy (AWS's default is 5 for a target group, 10 for a Classic "
		  "Load Balancer)"
	},

	{ .section = "metrics",
	  .key = "cloudwatch",
	  .type = OPT_BOOL,
	  .offset = O(cloudwatch),
	  .max = 1,
	  .def = "no",
	  .help = "send the time-to-healthy milestones to CloudWatch (PutMetricData, namespace "
		  "ASGAgent, dimension AutoScalingGroupName) after CONTINUE and when the load "
		  "balancer counts the instance healthy"
	},

	{ .section = "lifecycle",
	  .key = "launch_hook",
	  .type = OPT_STRING,
	  .offset = O(launch_hook),
	  .def = "",
	  .help = "launch lifecycle hook name; empty: named by the group's tag "
	      "asg-agent:launch-hook, else found with DescribeLifecycleHooks"
	},
	{ .section = "lifecycle",
	  .key = "terminate_hook",
	  .type = OPT_STRING,
	  .offset = O(terminate_hook),
	  .def = "",
	  .help = "terminate lifecycle hook name; empty: named by the group's tag "
	      "asg-agent:terminate-hook, else found with DescribeLifecycleHooks",
	  .reload = 1
	},
	{ .section = "lifecycle",
	  .key = "heartbeat",
	  .type = OPT_INT,
	  .offset = O(heartbeat),
	  .min = 5,
	  .max = 7200,
	  .def = "60",
	  .help = "seconds between RecordLifecycleActionHeartbeat calls during a long "
		  "boot or drain",
	  .reload = 1
	},
	{ .section = "lifecycle",
	  .key = "poll",
	  .type = OPT_INT,
	  .offset = O(poll),
	  .min = 1,
	  .max = 60,
	  .def = "2",
	  .help = "seconds between reads of the target lifecycle state from IMDS once serving",
	  .reload = 1
	},
	{ .section = "lifecycle",
	  .key = "drain",
	  .type = OPT_INT,
	  .offset = O(drain),
	  .min = 0,
	  .max = 3600,
	  .def = "30",
	  .help = "seconds between the health endpoint turning 503 and the app being stopped (at "
		  "least: on a scale-in with a terminate hook the app serves until the load balancer "
		  "has drained the instance)",
	  .reload = 1
	},
};
#undef O

/* Longest line of the file, comments included (inih's default is 200). */
#define CONFIG_MAX_LINE	8192

struct load_ctx {
	struct config	*cfg;
	const char	*path;
	FILE		*f;
	int		 line;
	struct buf	 errors;
	int		 set_at[nitems(opts)];	/* line each option was set on */
};

static int
parse_size(const char *s, long long *out)
{
	char		*end;
	long long	 v, mult = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno != 0 || v < 0)
		return -1;
	switch (*end) {
	case 'K': case 'k': mult = 1LL << 10; end++; break;
	case 'M': case 'm': mult = 1LL << 20; end++; break;
	case 'G': case 'g': mult = 1LL << 30; end++; break;
	case 'T': case 't': mult = 1LL << 40; end++; break;
	}
	if (*end != '\0' || v > LLONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* Parse one value into its field; returns -1 with a message in *msg. */
static int
opt_set(const struct opt *o, struct config *cfg, const char *value, char **msg)
{
	void		*field = (char *)cfg + o->offset;
	char		*end;
	long long	 v;
	size_t		 i;

	switch (o->type) {
	case OPT_STRING:
		/* An old file's "name ; note" would now keep the note: said, not kept silently. */
		if (strcmp(o->key, "command") != 0 && (strstr(value, " ;") != NULL ||
		    strstr(value, "\t;") != NULL)) {
			return set_cause(msg, "%s: '%s': ';' after a space is not a comment (a "
			    "value is the rest of its line)", o->key, value);
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case OPT_INT:
	case OPT_SIZE:
		if (o->type == OPT_INT) {
			errno = 0;
			v = strtoll(value, &end, 10);
			if (*value == '\0' || *end != '\0' || errno != 0)
				return set_cause(msg, "%s: '%s' is not a whole number",
				    o->key, value);
		} else if (parse_size(value, &v) != 0)
			return set_cause(msg, "%s: '%s' is not a size (like 512M or 4G)",
			    o->key, value);
		if (v < o->min || v > o->max)
			return set_cause(msg, "%s: %s is out of range (%lld to %lld)",
			    o->key, value, o->min, o->max);
		if (o->type == OPT_INT)
			*(int *)field = (int)v;
		else
			*(long long *)field = v;
		return 0;
	case OPT_BOOL:
		if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0)
			*(int *)field = 1;
		else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
		    strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0)
			*(int *)field = 0;
		else
			return set_cause(msg, "%s: '%s' is not yes or no", o->key, value);
		return 0;
	case OPT_ENUM:
		for (i = 0; o->choices[i] != NULL; i++) {
			if (strcmp(value, o->choices[i]) == 0) {
				*(int *)field = (int)i;
				return 0;
			}
		}
		return set_cause(msg, "%s: '%s' is not one of %s", o->key, value, o->help);
	case OPT_LEVEL:
		if ((v = log_level_parse(value)) == -1)
			return set_cause(msg, "%s: '%s' is not error, warn, info or debug",
			    o->key, value);
		*(int *)field = (int)v;
		return 0;
	}
	fatal("bad option type");
}

void
config_defaults(struct config *cfg)
{
	size_t	 i;
	char	*msg = NULL;

	memset(cfg, 0, sizeof *cfg);
	for (i = 0; i < nitems(opts); i++) {
		if (opt_set(&opts[i], cfg, opts[i].def, &msg) != 0)
			fatal("bad default for %s.%s: %s", opts[i].section, opts[i].key, msg);
	}
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < nitems(opts); i++) {
		if (opts[i].type == OPT_STRING)
			free(*(char **)((char *)cfg + opts[i].offset));
	}
	free(cfg->path);
	memset(cfg, 0, sizeof *cfg);
}

/*
 * inih does not pass line numbers to the handler, so count them as it reads.
 * A line longer than inih's buffer is refused whole: left to inih, its rest
 * would be parsed as a line of its own.
 */
static char *
load_reader(char *str, int num, void *arg)
{
	struct load_ctx	*ctx = arg;
	size_t		 len;
	int		 c;

	if (fgets(str, num, ctx->f) == NULL)
		return NULL;
	ctx->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(ctx->f)) {
		buf_addf(&ctx->errors, "%s:%d: line longer than %d bytes\n", ctx->path,
		    ctx->line, num - 3);
		while ((c = getc(ctx->f)) != EOF && c != '\n')
			;
		str[0] = '\0';
	}
	return str;
}

static int
load_handler(void *arg, const char *section, const char *key, const char *value)
{
	struct load_ctx	*ctx = arg;
	char		*msg = NULL;
	size_t		 i;
	int		 known_section = 0;

	if (key == NULL)
		return 1;	/* a section header alone */
	for (i = 0; i < nitems(opts); i++) {
		if (strcmp(opts[i].section, section) != 0)
			continue;
		known_section = 1;
		if (strcmp(opts[i].key, key) != 0)
			continue;
		if (ctx->set_at[i] != 0)
			buf_addf(&ctx->errors, "%s:%d: %s: set twice in [%s]\n",
			    ctx->path, ctx->line, key, section);
		ctx->set_at[i] = ctx->line;
		if (opt_set(&opts[i], ctx->cfg, value, &msg) != 0) {
			buf_addf(&ctx->errors, "%s:%d: %s\n", ctx->path, ctx->line, msg);
			free(msg);
		}
		return 1;
	}
	if (*section == '\0')
		buf_addf(&ctx->errors, "%s:%d: %s: key outside of any section\n",
		    ctx->path, ctx->line, key);
	else if (!known_section)
		buf_addf(&ctx->errors, "%s:%d: unknown section [%s]\n",
		    ctx->path, ctx->line, section);
	else
		buf_addf(&ctx->errors, "%s:%d: unknown key '%s' in [%s]\n",
		    ctx->path, ctx->line, key, section);
	return 1;
}

/* The line an option was set on (0: not in the file). */
static int
opt_line(const struct load_ctx *ctx, const char *section, const char *key)
{
	size_t	i;

	for (i = 0; i < nitems(opts); i++) {
		if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].key, key) == 0)
			return ctx->set_at[i];
	}
	fatal("no option %s.%s", section, key);
}

/* Checks that span options; each names the line of the key that breaks the rule. */
static void
config_check(struct load_ctx *ctx)
{
	struct config	*cfg = ctx->cfg;
	int		 l1, l2;

	if (*cfg->app_unit != '\0' && *cfg->app_command != '\0') {
		l1 = opt_line(ctx, "app", "unit");
		l2 = opt_line(ctx, "app", "command");
		buf_addf(&ctx->errors, "%s:%d: [app] unit and command are both set; "
		    "choose one\n", ctx->path, l1 > l2 ? l1 : l2);
	}
	if (*cfg->state_dir != '/')
		buf_addf(&ctx->errors, "%s:%d: state_dir: must be an absolute path\n",
		    ctx->path, opt_line(ctx, "agent", "state_dir"));
	if (*cfg->version_tag == '\0')
		buf_addf(&ctx->errors, "%s:%d: tag: must not be empty\n",
		    ctx->path, opt_line(ctx, "version", "tag"));
	if (strncmp(cfg->health_url, "http://", 7) != 0 &&
	    strncmp(cfg->health_url, "https://", 8) != 0)
		buf_addf(&ctx->errors, "%s:%d: health_url: must be an http:// or https:// URL\n",
		    ctx->path, opt_line(ctx, "app", "health_url"));
	if (*cfg->imds_endpoint != '\0' && strncmp(cfg->imds_endpoint, "http://", 7) != 0 &&
	    strncmp(cfg->imds_endpoint, "https://", 8) != 0)
		buf_addf(&ctx->errors, "%s:%d: imds_endpoint: must be an http:// or https:// "
		    "URL\n", ctx->path, opt_line(ctx, "aws", "imds_endpoint"));
	if (*cfg->health_path != '/')
		buf_addf(&ctx->errors, "%s:%d: path: must start with '/'\n",
		    ctx->path, opt_line(ctx, "health", "path"));
	if (*cfg->metrics_path != '\0' && *cfg->metrics_path != '/')
		buf_addf(&ctx->errors, "%s:%d: metrics_path: must start with '/'\n",
		    ctx->path, opt_line(ctx, "health", "metrics_path"));
	else if (*cfg->metrics_path != '\0' &&
	    strcmp(cfg->metrics_path, cfg->health_path) == 0) {
		/* Either key may be the one set (the other a default): name the set one. */
		l1 = opt_line(ctx, "health", "path");
		l2 = opt_line(ctx, "health", "metrics_path");
		buf_addf(&ctx->errors, "%s:%d: [health] path and metrics_path are both "
		    "%s; they must differ\n", ctx->path, l1 > l2 ? l1 : l2, cfg->health_path);
	}
	if (*cfg->artifact_url != '\0' && strncmp(cfg->artifact_url, "s3://", 5) != 0 &&
	    strncmp(cfg->artifact_url, "https://", 8) != 0 &&
	    strncmp(cfg->artifact_url, "http://", 7) != 0)
		buf_addf(&ctx->errors, "%s:%d: url: must start with s3://, https:// or "
		    "http://\n", ctx->path, opt_line(ctx, "artifact", "url"));
}

int
config_load(struct config *cfg, const char *path, int missing_ok, char **errors)
{
	struct load_ctx	 ctx;
	int		 rc, ret = -1;

	config_defaults(cfg);
	cfg->path = xstrdup(path);
	memset(&ctx, 0, sizeof ctx);
	ctx.cfg = cfg;
	ctx.path = path;
	if ((ctx.f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && missing_ok) {
			ret = 0;
			goto out;
		}
		buf_addf(&ctx.errors, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	ini_allow_multiline = false;
	/* A value is the rest of its line: `sh -c "a ; b"` must not lose "; b". */
	ini_allow_inline_comments = false;
	ini_max_line = CONFIG_MAX_LINE;
	rc = ini_parse_stream(load_reader, &ctx, load_handler, &ctx);
	if (rc > 0)
		buf_addf(&ctx.errors, "%s:%d: syntax error (expected [section] or "
		    "key = value)\n", path, rc);
	else if (rc < 0)
		buf_addf(&ctx.errors, "%s: cannot parse (out of memory)\n", path);
	else if (ferror(ctx.f))
		buf_addf(&ctx.errors, "%s: read error\n", path);
	config_check(&ctx);
	ret = ctx.errors.len == 0 ? 0 : -1;
out:
	if (ctx.f != NULL)
		fclose(ctx.f);
	if (ret != 0 && errors != NULL)
		*errors = buf_take(&ctx.errors);
	buf_free(&ctx.errors);
	return ret;
}

void
config_write_example(FILE *f)
{
	const char	*section = NULL;
	size_t		 i;

	fputs("# asg-agent configuration. Every option is shown with its default.\n"
	    "# Unknown sections and keys are errors: check with 'asg-agent check-config'.\n",
	    f);
	for (i = 0; i < nitems(opts); i++) {
		if (section == NULL || strcmp(section, opts[i].section) != 0) {
			section = opts[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "# %s\n#%s = %s\n", opts[i].help, opts[i].key, opts[i].def);
	}
}

/* Width of a text line of the man page, before escaping. */
#define MAN_WIDTH	78

/* Roff text: backslashes and hyphens escaped, a leading request character defused. */
static void
man_text(FILE *f, const char *s, size_t len)
{
	size_t	i;

	if (len > 0 && (s[0] == '.' || s[0] == '\''))
		fputs("\\&", f);
	for (i = 0; i < len; i++) {
		if (s[i] == '\\')
			fputs("\\e", f);
		else if (s[i] == '-')
			fputs("\\-", f);
		else
			fputc(s[i], f);
	}
}

static void
man_line(FILE *f, const char *s, size_t len)
{
	man_text(f, s, len);
	fputc('\n', f);
}

/* Fill text into lines of at most MAN_WIDTH, broken at spaces (a longer word stands alone). */
static void
man_fill(FILE *f, const char *text)
{
	const char	*line = text, *end, *next, *word_end;

	for (;;) {
		line += strspn(line, " ");
		if (*line == '\0')
			return;
		end = line + strcspn(line, " ");
		for (;;) {
			next = end + strspn(end, " ");
			if (*next == '\0')
				break;
			word_end = next + strcspn(next, " ");
			if (word_end - line > MAN_WIDTH)
				break;
			end = word_end;
		}
		man_line(f, line, (size_t)(end - line));
		line = end;
	}
}

/* A size as the file may write it: the largest suffix that divides it exactly. */
static void
size_text(struct buf *b, long long n)
{
	static const char	units[] = "TGMK";
	int			i, shift;

	for (i = 0; units[i] != '\0'; i++) {
		shift = 40 - 10 * i;
		if (n >= 1LL << shift && n % (1LL << shift) == 0) {
			buf_addf(b, "%lld%c", n >> shift, units[i]);
			return;
		}
	}
	buf_addf(b, "%lld", n);
}

/* The choices of an enum joined by sep. */
static void
choices_text(struct buf *b, const struct opt *o, const char *sep)
{
	size_t	i;

	for (i = 0; o->choices[i] != NULL; i++)
		buf_addf(b, "%s%s", i > 0 ? sep : "", o->choices[i]);
}

/* What an entry's heading shows after "key = ": the kind of value. */
static void
opt_value_text(struct buf *b, const struct opt *o)
{
	switch (o->type) {
	case OPT_STRING: buf_adds(b, "string"); return;
	case OPT_INT: buf_adds(b, "n"); return;
	case OPT_SIZE: buf_adds(b, "size"); return;
	case OPT_BOOL: buf_adds(b, "yes|no"); return;
	case OPT_ENUM: choices_text(b, o, "|"); return;
	case OPT_LEVEL: buf_adds(b, "error|warn|info|debug"); return;
	}
	fatal("bad option type");
}

/* An entry's "Type:" line, with the range or the choices. */
static void
opt_type_text(struct buf *b, const struct opt *o)
{
	switch (o->type) {
	case OPT_STRING:
		buf_adds(b, "Type: string.");
		return;
	case OPT_INT:
		buf_addf(b, "Type: integer, %lld to %lld.", o->min, o->max);
		return;
	case OPT_SIZE:
		buf_adds(b, "Type: size, ");
		size_text(b, o->min);
		buf_adds(b, " to ");
		size_text(b, o->max);
		buf_adds(b, ".");
		return;
	case OPT_BOOL:
		buf_adds(b, "Type: boolean.");
		return;
	case OPT_ENUM:
		buf_adds(b, "Type: one of ");
		choices_text(b, o, ", ");
		buf_adds(b, ".");
		return;
	case OPT_LEVEL:
		buf_adds(b, "Type: one of error, warn, info, debug.");
		return;
	}
	fatal("bad option type");
}

/* One option's entry: heading, help, type, default and when it applies. */
static void
man_entry(FILE *f, const struct opt *o)
{
	struct buf	 b = { NULL, 0, 0 };
	char		*help;

	opt_value_text(&b, o);
	fprintf(f, ".TP\n.BI %s \" = \" ", o->key);
	man_line(f, b.data, b.len);
	help = xasprintf("%s.", o->help);
	man_fill(f, help);
	free(help);
	fputs(".br\n", f);
	buf_reset(&b);
	opt_type_text(&b, o);
	man_line(f, b.data, b.len);
	buf_free(&b);
	if (*o->def == '\0')
		fputs("Default: empty.\n", f);
	else {
		fputs("Default: \\fB", f);
		man_text(f, o->def, strlen(o->def));
		fputs("\\fR.\n", f);
	}
	fputs(o->reload ? "Reloaded by SIGHUP.\n" : "Read at start only.\n", f);
}

void
config_write_man(FILE *f)
{
	const char	*section = NULL;
	size_t		 i;

	for (i = 0; i < nitems(opts); i++) {
		if (section == NULL || strcmp(section, opts[i].section) != 0) {
			section = opts[i].section;
			fprintf(f, ".SS [%s]\n", section);
		}
		man_entry(f, &opts[i]);
	}
}

void
config_write_man_reload(FILE *f)
{
	size_t	i;

	for (i = 0; i < nitems(opts); i++) {
		if (opts[i].reload)
			fprintf(f, ".IP \\(bu 2\n[%s] %s\n", opts[i].section, opts[i].key);
	}
}

/* Whether one option has the same value in both configurations. */
static int
opt_equal(const struct opt *o, const struct config *a, const struct config *b)
{
	const void	*fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;

	switch (o->type) {
	case OPT_STRING:
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	case OPT_SIZE:
		return *(const long long *)fa == *(const long long *)fb;
	default:
		return *(const int *)fa == *(const int *)fb;
	}
}

void
config_reload(struct config *cfg, const struct config *next, struct buf *applied,
    struct buf *ignored)
{
	const struct opt	*o;
	void			*field;
	size_t			 i;

	for (i = 0; i < nitems(opts); i++) {
		o = &opts[i];
		if (opt_equal(o, cfg, next))
			continue;
		if (!o->reload) {
			buf_addf(ignored, "%s[%s] %s", ignored->len > 0 ? ", " : "", o->section,
			    o->key);
			continue;
		}
		field = (char *)cfg + o->offset;
		if (o->type == OPT_STRING) {
			free(*(char **)field);
			*(char **)field = xstrdup(*(char *const *)((const char *)next + o->offset));
		} else if (o->type == OPT_SIZE)
			*(long long *)field = *(const long long *)((const char *)next + o->offset);
		else
			*(int *)field = *(const int *)((const char *)next + o->offset);
		buf_addf(applied, "%s[%s] %s", applied->len > 0 ? ", " : "", o->section, o->key);
	}
}

int
config_check_urls(const struct config *cfg, char **cause)
{
	/* The artifact URL is not known to itself: {url} is the signature's alone. */
	const char	*vars[][2] = {
		{ "version", "1" }, { "group", "g" }, { "region", "r" },
		{ "instance_id", "i" }, { NULL, NULL }, { NULL, NULL }
	};
	char		*s;
	int		 bad;

	if ((s = tmpl_expand(cfg->artifact_url, vars, 0, cause)) == NULL)
		return set_cause(cause, "%s: [artifact] url %s", cfg->path, *cause);
	free(s);
	if (*cfg->public_key == '\0')
		return 0;
	vars[4][0] = "url";
	vars[4][1] = "s3://b/k";
	if ((s = tmpl_expand(cfg->signature_url, vars, 0, cause)) == NULL)
		return set_cause(cause, "%s: [artifact] signature_url %s", cfg->path, *cause);
	bad = strncmp(s, "s3://", 5) != 0 && strncmp(s, "https://", 8) != 0 &&
	    strncmp(s, "http://", 7) != 0;
	free(s);
	if (bad)
		return set_cause(cause, "%s: [artifact] signature_url: must start with s3://, "
		    "https://, http:// or {url}", cfg->path);
	return 0;
}

int
config_check_run(const struct config *cfg, char **cause)
{
	if (*cfg->artifact_url == '\0')
		return set_cause(cause, "%s: [artifact] url is not set", cfg->path);
	if (*cfg->app_unit == '\0' && *cfg->app_command == '\0')
		return set_cause(cause, "%s: set [app] unit or [app] command", cfg->path);
	if (*cfg->sha256_tag == '\0' && *cfg->public_key == '\0' && !cfg->allow_unverified)
		return set_cause(cause, "%s: no verification configured: set [artifact] "
		    "sha256_tag and/or public_key (or allow_unverified = yes, never in "
		    "production)", cfg->path);
	if (*cfg->public_key != '\0' && access(cfg->public_key, R_OK) == -1)
		return set_cause(cause, "%s: [artifact] public_key %s: %s", cfg->path,
		    cfg->public_key, strerror(errno));
	return 0;
}
