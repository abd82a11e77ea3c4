/* config.c - the agent's INI configuration, parsed with inih through one table of options. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "log.h"
#include "util.h"

enum opt_type {
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_SIZE,
	OPT_ENUM,
	OPT_LEVEL,
};

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

static const char *const version_sources[] = { "group", "instance", "imds", NULL };

#define O(f) offsetof(struct config, f)
static const struct opt opts[] = {
	{ "agent", "log_level", OPT_LEVEL, O(log_level), 0, 0, "info", NULL,
	  "error, warn, info or debug", 1 },
	{ "agent", "state_dir", OPT_STRING, O(state_dir), 0, 0, "/var/lib/asg-agent", NULL,
	  "releases, current, state.json and release.env live here", 0 },
	{ "agent", "deadline", OPT_INT, O(deadline), 10, 86400, "600", NULL,
	  "seconds the whole boot path may take before it fails closed", 0 },

	{ "aws", "region", OPT_STRING, O(region), 0, 0, "", NULL,
	  "region; empty: AWS_REGION, AWS_DEFAULT_REGION, then IMDS", 0 },
	{ "aws", "imds_endpoint", OPT_STRING, O(imds_endpoint), 0, 0, "http://169.254.169.254", NULL,
	  "IMDS base URL; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides it", 0 },
	{ "aws", "endpoint_url", OPT_STRING, O(endpoint_url), 0, 0, "", NULL,
	  "one endpoint for every AWS service; the AWS_ENDPOINT_URL* variables override it", 0 },
	{ "aws", "imds_timeout", OPT_INT, O(imds_timeout), 1, 3600, "120", NULL,
	  "seconds to keep retrying while IMDS is not up yet", 0 },
	{ "aws", "api_timeout", OPT_INT, O(api_timeout), 1, 3600, "60", NULL,
	  "seconds one AWS API call may spend retrying throttling and 5xx answers", 0 },
	{ "aws", "max_rate", OPT_INT, O(max_rate), 0, 1000, "10", NULL,
	  "AWS requests per second this agent sends at most (0: no limit)", 0 },

	{ "version", "tag", OPT_STRING, O(version_tag), 0, 0, "asg-agent:version", NULL,
	  "tag whose value names the version to run", 0 },
	{ "version", "source", OPT_ENUM, O(version_source), 0, 0, "group", version_sources,
	  "group (the ASG's own tag), instance (the instance's copy) or imds (IMDS tags only)", 0 },
	{ "version", "launch_copy", OPT_BOOL, O(version_launch_copy), 0, 1, "yes", NULL,
	  "source = group: on an instance's first boot, use the copy of the group's tags it got "
	  "at launch when IMDS or EC2 shows it; no: always ask Auto Scaling", 0 },
	{ "version", "wait", OPT_INT, O(version_wait), 1, 86400, "300", NULL,
	  "seconds to wait for the tag to appear before failing closed", 0 },

	{ "artifact", "url", OPT_STRING, O(artifact_url), 0, 0, "", NULL,
	  "s3://BUCKET/KEY or https:// URL; takes {version} {group} {region} {instance_id}", 0 },
	{ "artifact", "sha256_tag", OPT_STRING, O(sha256_tag), 0, 0, "asg-agent:sha256", NULL,
	  "tag holding the artifact's SHA-256 (hex); empty to not use one", 0 },
	{ "artifact", "public_key", OPT_STRING, O(public_key), 0, 0, "", NULL,
	  "PEM public key that signs artifacts (ECDSA P-256 or RSA); empty: no signature", 0 },
	{ "artifact", "signature_url", OPT_STRING, O(signature_url), 0, 0, "{url}.sig", NULL,
	  "where the detached signature is; {url} is the artifact URL", 0 },
	{ "artifact", "keep", OPT_INT, O(keep), 1, 100, "3", NULL,
	  "releases kept in state_dir/releases", 0 },
	{ "artifact", "max_size", OPT_SIZE, O(max_size), 1024, 1LL << 50, "4G", NULL,
	  "largest unpacked release (bytes; K, M, G, T suffixes)", 0 },
	{ "artifact", "allow_unverified", OPT_BOOL, O(allow_unverified), 0, 1, "no", NULL,
	  "run an artifact with neither digest nor signature (never in production)", 0 },

	{ "app", "unit", OPT_STRING, O(app_unit), 0, 0, "", NULL,
	  "systemd unit started with systemctl; or set command", 0 },
	{ "app", "command", OPT_STRING, O(app_command), 0, 0, "", NULL,
	  "argv run by the agent in the release dir (no shell); or set unit", 0 },
	{ "app", "pre_start", OPT_STRING, O(pre_start), 0, 0, "", NULL,
	  "program inside the release run before the app starts", 0 },
	{ "app", "pre_start_timeout", OPT_INT, O(pre_start_timeout), 1, 3600, "120", NULL,
	  "seconds pre_start may run", 0 },
	{ "app", "health_url", OPT_STRING, O(health_url), 0, 0, "http://127.0.0.1:8080/health", NULL,
	  "the app's local health check; 2xx is healthy", 0 },
	{ "app", "health_timeout", OPT_INT, O(health_timeout), 1, 86400, "300", NULL,
	  "seconds the app may take to turn healthy", 1 },
	{ "app", "stop_timeout", OPT_INT, O(stop_timeout), 1, 3600, "30", NULL,
	  "seconds between SIGTERM and SIGKILL when stopping a command", 1 },
	{ "app", "health_interval", OPT_INT, O(health_interval), 1, 300, "5", NULL,
	  "seconds between health probes once serving", 1 },
	{ "app", "unhealthy_after", OPT_INT, O(unhealthy_after), 1, 100, "3", NULL,
	  "failed probes in a row before the health endpoint turns 503", 1 },
	{ "app", "unhealthy_grace", OPT_INT, O(unhealthy_grace), 0, 86400, "60", NULL,
	  "seconds an unhealthy app may take to recover before the instance is replaced", 1 },
	{ "app", "replace_unhealthy", OPT_BOOL, O(replace_unhealthy), 0, 1, "yes", NULL,
	  "call SetInstanceHealth Unhealthy after the grace, so the ASG replaces us", 1 },
	{ "app", "warm_start", OPT_BOOL, O(warm_start), 0, 1, "no", NULL,
	  "in a warm pool, also start the app once (then stop it) before the hook completes", 0 },

	{ "health", "listen", OPT_STRING, O(health_listen), 0, 0, "0.0.0.0:8081", NULL,
	  "address:port of the load balancer's health endpoint; empty to disable", 0 },
	{ "health", "path", OPT_STRING, O(health_path), 0, 0, "/healthz", NULL,
	  "path of the health endpoint", 0 },

	{ "lifecycle", "launch_hook", OPT_STRING, O(launch_hook), 0, 0, "", NULL,
	  "launch lifecycle hook name; empty: found with DescribeLifecycleHooks", 0 },
	{ "lifecycle", "terminate_hook", OPT_STRING, O(terminate_hook), 0, 0, "", NULL,
	  "terminate lifecycle hook name; empty: found with DescribeLifecycleHooks", 1 },
	{ "lifecycle", "heartbeat", OPT_INT, O(heartbeat), 5, 7200, "60", NULL,
	  "seconds between RecordLifecycleActionHeartbeat calls during a long boot or drain", 1 },
	{ "lifecycle", "poll", OPT_INT, O(poll), 1, 60, "2", NULL,
	  "seconds between reads of the target lifecycle state from IMDS once serving", 1 },
	{ "lifecycle", "drain", OPT_INT, O(drain), 0, 3600, "30", NULL,
	  "seconds between the health endpoint turning 503 and the app being stopped", 1 },
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
	if (*cfg->health_path != '/')
		buf_addf(&ctx->errors, "%s:%d: path: must start with '/'\n",
		    ctx->path, opt_line(ctx, "health", "path"));
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
