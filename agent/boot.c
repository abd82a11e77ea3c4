/* boot.c - `asg-agent run`: from a fresh instance to a serving app, or a clean ABANDON. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "app.h"
#include "artifact.h"
#include "aws.h"
#include "boot.h"
#include "config.h"
#include "creds.h"
#include "health.h"
#include "imds.h"
#include "lifecycle.h"
#include "log.h"
#include "release.h"
#include "retry.h"
#include "state.h"
#include "tags.h"
#include "util.h"

#define BOOT_POLL_BASE		0.25	/* first tag poll ceiling, seconds */
#define BOOT_POLL_CAP		5.0
#define BOOT_PROBE_MIN		0.10	/* app health probes every 100-250 ms */
#define BOOT_PROBE_MAX		0.25
#define BOOT_HEALTHY_IN_A_ROW	2
#define BOOT_START_TIMEOUT	120	/* seconds for a StartUnit job */

static volatile sig_atomic_t	boot_stop;	/* SIGTERM/SIGINT, or the deadline */
static volatile sig_atomic_t	boot_signal;
static volatile sig_atomic_t	boot_deadline_hit;

struct boot {
	struct config		*cfg;
	struct state		 st;
	char			*state_path;
	struct imds		 imds;
	struct creds_provider	 creds;
	struct aws		 aws;
	struct health_server	*health;
	struct app		 app;
	int			 app_ready;	/* app_init succeeded */
	int			 app_started;
	char			*instance_id;
	char			*group;
	char			*hook;		/* launch hook, or NULL */
	char			*version;
	char			*sha256;	/* expected digest from the tag */
	int			 completed;	/* lifecycle action settled */
	int			 hook_checked;	/* launch hook looked up */
	double			 next_heartbeat;
	double			 last_extend;
};

static void
on_signal(int sig)
{
	if (sig == SIGALRM)
		boot_deadline_hit = 1;
	else
		boot_signal = sig;
	boot_stop = 1;
}

char *
boot_expand(const char *tmpl, const char *const vars[][2], char **cause)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*p, *end;
	size_t		 i, len;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '{') {
			buf_addc(&b, *p);
			continue;
		}
		if ((end = strchr(p, '}')) == NULL) {
			set_cause(cause, "'%s': unclosed '{'", tmpl);
			goto fail;
		}
		len = (size_t)(end - p - 1);
		for (i = 0; vars[i][0] != NULL; i++) {
			if (strlen(vars[i][0]) == len && strncmp(vars[i][0], p + 1, len) == 0)
				break;
		}
		if (vars[i][0] == NULL) {
			set_cause(cause, "'%s': unknown variable {%.*s}", tmpl, (int)len, p + 1);
			goto fail;
		}
		if (vars[i][1] == NULL) {
			set_cause(cause, "'%s': {%s} is not known yet", tmpl, vars[i][0]);
			goto fail;
		}
		buf_adds(&b, vars[i][1]);
		p = end;
	}
	return buf_take(&b);
fail:
	buf_free(&b);
	return NULL;
}

int
boot_check_config(const struct config *cfg, char **cause)
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

/* Write the state file and tell systemd; failures to save are logged, not fatal. */
static void
save(struct boot *b)
{
	char	*cause = NULL;
	size_t	 i;

	for (i = 0; i < b->aws.ncounters && (int)i < STATE_MAX_COUNTERS; i++) {
		state_set(&b->st.counters[i].action, b->aws.counters[i].action);
		b->st.counters[i].calls = b->aws.counters[i].calls;
		b->st.counters[i].throttled = b->aws.counters[i].throttled;
	}
	b->st.ncounters = (int)i;
	b->st.updated = wall_now();
	if (state_save(&b->st, b->state_path, &cause) != 0) {
		log_warn("cannot save state: %s", cause);
		free(cause);
	}
}

static void
notify_status(struct boot *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", msg);
	log_info("%s", msg);
	free(msg);
}

/* Enter a phase: a timeline step, a STATUS= line, and the state file. */
static void
phase(struct boot *b, int ph, const char *step, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	b->st.phase = ph;
	if (step != NULL)
		state_step_begin(&b->st, step);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	notify_status(b, "%s: %s", state_phase_name(ph), msg);
	free(msg);
	save(b);
}

/*
 * Called from every wait: heartbeats for a long boot, and systemd's start
 * timeout pushed out while we are still making progress.
 */
static void
tick(struct boot *b)
{
	char	*cause = NULL;
	double	 now = mono_now();

	if (now - b->last_extend > 10) {
		sd_notify(0, "EXTEND_TIMEOUT_USEC=60000000");
		b->last_extend = now;
	}
	if (b->hook == NULL || b->completed || now < b->next_heartbeat)
		return;
	b->next_heartbeat = now + b->cfg->heartbeat;
	if (lifecycle_heartbeat(&b->aws, b->group, b->hook, b->instance_id, &cause) ==
	    LIFECYCLE_ERROR)
		log_warn("lifecycle heartbeat: %s", cause);
	else
		log_debug("lifecycle heartbeat sent for hook %s", b->hook);
	free(cause);
}

/* Sleep in small slices so heartbeats and signals are never late. */
static void
wait_a_bit(struct boot *b, double seconds)
{
	double	end = mono_now() + seconds, left;

	while (!boot_stop && (left = end - mono_now()) > 0) {
		sleep_for(left < 0.5 ? left : 0.5, (volatile int *)&boot_stop);
		tick(b);
	}
}

/* The instance id, the region and working credentials. */
static int
step_identity(struct boot *b, char **cause)
{
	const struct creds	*c;
	char			*nl;

	phase(b, PHASE_WAITING_FOR_IMDS, "imds", "asking IMDS who we are");
	if (imds_get(&b->imds, "meta-data/instance-id", &b->instance_id, cause) != IMDS_OK)
		return set_cause(cause, "instance id: %s", *cause != NULL ? *cause :
		    "IMDS has no instance-id");
	if ((nl = strpbrk(b->instance_id, "\r\n")) != NULL)
		*nl = '\0';
	state_set(&b->st.instance_id, b->instance_id);
	if (aws_resolve_region(&b->aws, b->cfg->region, cause) != 0)
		return -1;
	state_set(&b->st.region, b->aws.region);
	if (creds_get(&b->creds, &c, cause) != 0)
		return set_cause(cause, "credentials: %s", *cause);
	state_step_detail(&b->st, "%s, %s, credentials from %s", b->instance_id,
	    b->aws.region, b->creds.source);
	save(b);
	return 0;
}

/*
 * One round of looking for the group and the version tags, cheapest source
 * first. Fills b->group, b->version and b->sha256 as they become known.
 */
static int
poll_tags(struct boot *b, int *imds_tags, char **cause)
{
	const char	*keys[4], *v;
	struct tags	 t;
	char		*g = NULL;
	const char	*src_name = NULL;
	int		 source = b->cfg->version_source, r, n = 0;

	keys[n++] = b->cfg->version_tag;
	if (*b->cfg->sha256_tag != '\0')
		keys[n++] = b->cfg->sha256_tag;
	keys[n++] = TAG_GROUP_NAME;
	keys[n] = NULL;
	memset(&t, 0, sizeof t);

	/* IMDS tags cost no API quota: always try them first while they answer. */
	if (*imds_tags) {
		r = tags_from_imds(&b->imds, keys, &t, cause);
		if (r == TAGS_ERROR)
			return -1;
		if (r == TAGS_UNAVAILABLE) {
			*imds_tags = 0;
			if (source == VERSION_SOURCE_IMDS)
				return set_cause(cause, "[version] source = imds, but this "
				    "instance has no tags in IMDS (InstanceMetadataTags is off)");
		} else {
			if (b->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
				b->group = xstrdup(v);
			if (source != VERSION_SOURCE_GROUP)
				src_name = "instance tag (IMDS)";
		}
	}
	if (src_name == NULL && source != VERSION_SOURCE_IMDS &&
	    (source == VERSION_SOURCE_INSTANCE || b->group == NULL)) {
		tags_free(&t);
		if (tags_from_instance(&b->aws, b->instance_id, keys, &t, cause) != TAGS_OK)
			return -1;
		if (b->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
			b->group = xstrdup(v);
		if (source == VERSION_SOURCE_INSTANCE)
			src_name = "instance tag (EC2 DescribeTags)";
	}
	if (b->group == NULL && source != VERSION_SOURCE_IMDS) {
		r = tags_instance_group(&b->aws, b->instance_id, &g, NULL, cause);
		if (r == TAGS_ERROR)
			return -1;
		b->group = g;
	}
	if (source == VERSION_SOURCE_GROUP) {
		if (b->group == NULL)
			goto out;
		tags_free(&t);
		if (tags_from_group(&b->aws, b->group, keys, &t, cause) != TAGS_OK)
			return -1;
		src_name = "group tag";
	}
	if (src_name != NULL && (v = tags_get(&t, b->cfg->version_tag)) != NULL &&
	    *v != '\0') {
		b->version = xstrdup(v);
		state_setf(&b->st.version_source, "%s %s", src_name, b->cfg->version_tag);
		if (*b->cfg->sha256_tag != '\0' && (v = tags_get(&t, b->cfg->sha256_tag)) != NULL)
			b->sha256 = xstrdup(v);
	}
out:
	tags_free(&t);
	return 0;
}

/* Find the launch hook as soon as the group is known: heartbeats, and ABANDON if the tag never comes. */
static int
step_hook(struct boot *b, char **cause)
{
	if (b->hook_checked)
		return 0;
	if (b->group == NULL) {
		state_set(&b->st.lifecycle, "no group known: no lifecycle action");
		return 0;
	}
	b->hook_checked = 1;
	if (*b->cfg->launch_hook != '\0')
		b->hook = xstrdup(b->cfg->launch_hook);
	else if (lifecycle_find_hook(&b->aws, b->group, LIFECYCLE_LAUNCHING, &b->hook,
	    cause) != 0)
		return set_cause(cause, "DescribeLifecycleHooks: %s", *cause);
	if (b->hook != NULL) {
		state_setf(&b->st.lifecycle, "launch hook %s pending", b->hook);
		b->next_heartbeat = mono_now() + b->cfg->heartbeat;
	} else
		state_set(&b->st.lifecycle, "no launch hook on the group");
	return 0;
}

/* Poll until the version tag really appears; never guess. */
static int
step_version(struct boot *b, char **cause)
{
	struct retry	 r;
	double		 delay, deadline;
	int		 imds_tags = 1;
	char		*err = NULL;

	phase(b, PHASE_WAITING_FOR_TAG, "version-tag", "waiting for tag %s",
	    b->cfg->version_tag);
	deadline = mono_now() + b->cfg->version_wait;
	retry_init(&r, BOOT_POLL_BASE, BOOT_POLL_CAP, deadline);
	for (;;) {
		state_step_poll(&b->st);
		if (poll_tags(b, &imds_tags, &err) != 0) {
			/* Auth and validation errors will not fix themselves. */
			set_cause(cause, "reading tags: %s", err);
			free(err);
			return -1;
		}
		if (b->group != NULL && b->st.group == NULL) {
			state_set(&b->st.group, b->group);
			if (step_hook(b, cause) != 0)
				return -1;
			save(b);
		}
		if (b->version != NULL)
			break;
		if (boot_stop)
			return set_cause(cause, "stopped while waiting for tag %s",
			    b->cfg->version_tag);
		if ((delay = retry_next(&r, mono_now())) < 0 || mono_now() + delay >= deadline)
			return set_cause(cause, "tag %s did not appear within %d s (%s); "
			    "refusing to guess a version", b->cfg->version_tag,
			    b->cfg->version_wait, b->group != NULL ? b->group :
			    "group unknown");
		wait_a_bit(b, delay);
	}
	if (!release_version_ok(b->version))
		return set_cause(cause, "tag %s has an unusable version '%s' (allowed: "
		    "letters, digits, . _ + -)", b->cfg->version_tag, b->version);
	if (b->sha256 == NULL && *b->cfg->sha256_tag != '\0' && *b->cfg->public_key == '\0' &&
	    !b->cfg->allow_unverified)
		return set_cause(cause, "version %s has no %s tag and no public_key is "
		    "configured: nothing to verify it with", b->version, b->cfg->sha256_tag);
	state_set(&b->st.version, b->version);
	state_step_detail(&b->st, "%s from %s", b->version, b->st.version_source);
	save(b);
	return 0;
}

/* Expand the artifact and signature URLs for this boot. */
static int
artifact_urls(struct boot *b, char **url, char **sig_url, char **cause)
{
	const char	*vars[][2] = {
		{ "version", b->version }, { "group", b->group },
		{ "region", b->aws.region }, { "instance_id", b->instance_id },
		{ "url", NULL }, { NULL, NULL }
	};

	*sig_url = NULL;
	if ((*url = boot_expand(b->cfg->artifact_url, vars, cause)) == NULL)
		return set_cause(cause, "[artifact] url %s", *cause);
	if (*b->cfg->public_key == '\0')
		return 0;
	vars[4][1] = *url;
	if ((*sig_url = boot_expand(b->cfg->signature_url, vars, cause)) == NULL)
		return set_cause(cause, "[artifact] signature_url %s", *cause);
	return 0;
}

/* Fetch and install the release, unless a verified copy is already here. */
static int
step_release(struct boot *b, char **cause)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	char			*url = NULL, *sig_url = NULL, *staging = NULL, *have = NULL;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	if (artifact_urls(b, &url, &sig_url, cause) != 0)
		goto out;
	state_set(&b->st.artifact, url);
	if (release_present(b->cfg->state_dir, b->version, &have) == 1 &&
	    (b->sha256 == NULL || (have != NULL && strcasecmp(have, b->sha256) == 0)) &&
	    (have != NULL || b->cfg->allow_unverified || *b->cfg->public_key != '\0')) {
		b->st.downloaded = 0;
		state_set(&b->st.sha256, have);
		state_set(&b->st.verification, "verified when installed");
		phase(b, PHASE_INSTALLING, "install", "release %s is already installed",
		    b->version);
		ret = 0;
		goto out;
	}
	phase(b, PHASE_FETCHING, "fetch", "fetching %s", url);
	if (release_staging(b->cfg->state_dir, b->version, &staging, cause) != 0)
		goto out;
	memset(&spec, 0, sizeof spec);
	spec.url = url;
	spec.sha256 = b->sha256;
	spec.signature_url = sig_url;
	spec.public_key = *b->cfg->public_key != '\0' ? b->cfg->public_key : NULL;
	spec.max_size = b->cfg->max_size;
	spec.stop = (volatile int *)&boot_stop;
	if (artifact_fetch(&b->aws, &spec, staging, &res, cause) != 0)
		goto out;
	state_step_detail(&b->st, "%lld bytes (%s), %lld unpacked in %ld entries%s",
	    res.bytes, res.format != NULL ? res.format : "?", res.unpacked, res.entries,
	    res.resumes > 0 ? ", resumed" : "");
	b->st.downloaded = 1;
	state_set(&b->st.sha256, res.sha256);
	state_setf(&b->st.verification, "%s%s%s",
	    res.digest_ok ? "sha256 tag" : "",
	    res.digest_ok && res.signature_ok ? " + " : "",
	    res.signature_ok ? "signature" : (res.digest_ok ? "" : "UNVERIFIED"));
	phase(b, PHASE_INSTALLING, "install", "installing %s", b->version);
	if (release_commit(b->cfg->state_dir, b->version, staging,
	    res.digest_ok || res.signature_ok ? res.sha256 : NULL, cause) != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0 && staging != NULL)
		artifact_rmtree(staging, NULL);
	artifact_result_free(&res);
	free(staging);
	free(have);
	free(url);
	free(sig_url);
	return ret;
}

static int
step_activate(struct boot *b, char **cause)
{
	char	*err = NULL;

	if (release_activate(b->cfg->state_dir, b->version, cause) != 0)
		return -1;
	free(b->st.release_dir);
	b->st.release_dir = release_dir(b->cfg->state_dir, b->version);
	if (release_prune(b->cfg->state_dir, b->cfg->keep, &err) != 0) {
		log_warn("pruning old releases: %s", err);
		free(err);
	}
	return 0;
}

static int
step_start(struct boot *b, char **cause)
{
	char	*current, *desc;
	int	 ret = -1;

	current = xasprintf("%s/current", b->cfg->state_dir);
	phase(b, PHASE_STARTING, "start", "starting %s",
	    *b->cfg->app_unit != '\0' ? b->cfg->app_unit : b->cfg->app_command);
	if (app_write_env(b->cfg->state_dir, b->version, current, b->instance_id, cause) != 0)
		goto out;
	if (app_init(&b->app, b->cfg->app_unit, b->cfg->app_command, current, b->version,
	    b->instance_id, cause) != 0)
		goto out;
	b->app_ready = 1;
	if (*b->cfg->pre_start != '\0') {
		state_step_detail(&b->st, "pre_start %s", b->cfg->pre_start);
		if (app_pre_start(&b->app, b->cfg->pre_start, b->cfg->pre_start_timeout,
		    (volatile int *)&boot_stop, cause) != 0)
			goto out;
	}
	if (app_start(&b->app, BOOT_START_TIMEOUT, cause) != 0)
		goto out;
	b->app_started = 1;
	desc = app_describe(&b->app);
	state_set(&b->st.app, desc);
	free(desc);
	ret = 0;
out:
	free(current);
	return ret;
}

/* Probe the app until it answers healthy twice in a row. */
static int
step_health(struct boot *b, char **cause)
{
	double	 deadline = mono_now() + b->cfg->health_timeout;
	char	*err = NULL;
	int	 good = 0, ret = -1;

	phase(b, PHASE_WAITING_FOR_HEALTH, "health", "waiting for %s", b->cfg->health_url);
	for (;;) {
		if (app_check(&b->app, &err) != 0) {
			set_cause(cause, "%s before it turned healthy", err);
			goto out;
		}
		state_step_poll(&b->st);
		if (health_probe(b->cfg->health_url, 2.0, &err) == 1) {
			if (++good >= BOOT_HEALTHY_IN_A_ROW)
				break;
		} else
			good = 0;
		if (boot_stop) {
			set_cause(cause, "stopped while waiting for the app to turn healthy");
			goto out;
		}
		if (mono_now() >= deadline) {
			set_cause(cause, "app not healthy within %d s: %s", b->cfg->health_timeout,
			    err != NULL ? err : "no answer");
			goto out;
		}
		wait_a_bit(b, BOOT_PROBE_MIN + retry_random() * (BOOT_PROBE_MAX - BOOT_PROBE_MIN));
	}
	state_set(&b->st.health, "healthy");
	ret = 0;
out:
	free(err);
	return ret;
}

static void
complete(struct boot *b, const char *result)
{
	char	*cause = NULL;
	int	 r;

	if (b->hook == NULL || b->completed)
		return;
	r = lifecycle_complete(&b->aws, b->group, b->hook, b->instance_id, result, &cause);
	if (r == LIFECYCLE_DONE) {
		state_setf(&b->st.lifecycle, "%s sent for launch hook %s", result, b->hook);
		log_info("lifecycle: %s sent for hook %s", result, b->hook);
		b->completed = 1;
	} else if (r == LIFECYCLE_NOT_PENDING) {
		state_setf(&b->st.lifecycle, "launch hook %s already completed (no %s needed)",
		    b->hook, result);
		log_info("lifecycle: hook %s has no pending action", b->hook);
		b->completed = 1;
	} else {
		state_setf(&b->st.lifecycle, "%s for launch hook %s FAILED: %s", result,
		    b->hook, cause);
		log_error("lifecycle %s: %s", result, cause);
	}
	free(cause);
}

/* Fail closed: 503, stop the app, ABANDON so the ASG replaces us now. */
static int
fail(struct boot *b, const char *cause)
{
	char	*err = NULL;
	int	 step_was = b->st.phase;

	log_error("boot failed in %s: %s", state_phase_name(step_was), cause);
	if (b->health != NULL)
		health_set(b->health, 0, "failed");
	state_set(&b->st.error, cause);
	state_set(&b->st.health, "unhealthy: boot failed");
	if (b->app_started) {
		if (app_stop(&b->app, b->cfg->stop_timeout, &err) != 0)
			log_warn("stopping the app: %s", err);
		free(err);
		b->app_started = 0;
	}
	if (boot_signal == 0)
		complete(b, "ABANDON");
	state_step_end(&b->st);
	b->st.phase = PHASE_FAILED;
	notify_status(b, "failed: %s", cause);
	save(b);
	return 1;
}

/* After the boot: supervise the app until a signal asks us to stop. */
static int
serve(struct boot *b)
{
	char	*err = NULL;
	int	 ret = 0;

	while (!boot_stop) {
		if (app_check(&b->app, &err) != 0) {
			b->app_started = 0;
			ret = fail(b, err);
			free(err);
			return ret;
		}
		sleep_for(0.5, (volatile int *)&boot_stop);
	}
	phase(b, PHASE_STOPPED, "stop", "stopping on signal %d", (int)boot_signal);
	if (b->health != NULL)
		health_set(b->health, 0, "stopping");
	if (app_stop(&b->app, b->cfg->stop_timeout, &err) != 0) {
		log_warn("stopping the app: %s", err);
		free(err);
	}
	b->app_started = 0;
	state_step_end(&b->st);
	save(b);
	return 0;
}

static void
signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* mkdir -p: the state dir may sit on a fresh volume. */
static int
make_dirs(const char *path, char **cause)
{
	char	*copy = xstrdup(path), *p;
	int	 ret = -1;

	for (p = copy + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(copy, 0755) == -1 && errno != EEXIST) {
			set_cause(cause, "mkdir %s: %s", copy, strerror(errno));
			goto out;
		}
		*p = '/';
	}
	if (mkdir(copy, 0755) == -1 && errno != EEXIST) {
		set_cause(cause, "mkdir %s: %s", copy, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

int
boot_run(struct config *cfg)
{
	struct boot		 b;
	struct itimerval	 it;
	char			*cause = NULL;
	int			 ret = 1;

	memset(&b, 0, sizeof b);
	b.cfg = cfg;
	state_init(&b.st);
	signals();
	if (boot_check_config(cfg, &cause) != 0 || make_dirs(cfg->state_dir, &cause) != 0) {
		log_error("%s", cause);
		sd_notifyf(0, "STATUS=failed: %s", cause);
		goto out;
	}
	b.state_path = xasprintf("%s/state.json", cfg->state_dir);
	imds_init(&b.imds, cfg->imds_endpoint, cfg->imds_timeout);
	b.imds.stop = (volatile int *)&boot_stop;
	creds_init(&b.creds, &b.imds);
	aws_init(&b.aws, &b.imds, &b.creds, NULL, cfg->endpoint_url, cfg->api_timeout);
	b.aws.stop = (volatile int *)&boot_stop;
	save(&b);	/* a status from an earlier run must not be mistaken for ours */
	/* The whole boot path has a deadline; SIGALRM stops whatever is running then. */
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = cfg->deadline;
	setitimer(ITIMER_REAL, &it, NULL);
	if (*cfg->health_listen != '\0') {
		if (health_start(cfg->health_listen, cfg->health_path, &b.health, &cause) != 0) {
			ret = fail(&b, cause);
			goto out;
		}
		health_set(b.health, 0, "booting");
	}
	state_set(&b.st.health, "booting (503)");
	if (step_identity(&b, &cause) != 0 || step_version(&b, &cause) != 0 ||
	    step_hook(&b, &cause) != 0 || step_release(&b, &cause) != 0 ||
	    step_activate(&b, &cause) != 0 || step_start(&b, &cause) != 0 ||
	    step_health(&b, &cause) != 0) {
		if (boot_deadline_hit)
			set_cause(&cause, "boot deadline of %d s passed (%s)", cfg->deadline,
			    cause != NULL ? cause : "no cause");
		ret = fail(&b, cause != NULL ? cause : "unknown failure");
		goto out;
	}
	/* Healthy: stop the deadline, tell the load balancer and the ASG. */
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
	if (b.health != NULL)
		health_set(b.health, 1, NULL);
	complete(&b, "CONTINUE");
	state_step_end(&b.st);
	b.st.phase = PHASE_SERVING;
	state_step_begin(&b.st, "serving");
	save(&b);
	sd_notifyf(0, "READY=1\nSTATUS=serving %s (boot took %.3f s)", b.version,
	    wall_now() - b.st.boot_start);
	log_info("serving %s (boot took %.3f s)", b.version, wall_now() - b.st.boot_start);
	ret = serve(&b);
out:
	if (b.app_started)
		app_stop(&b.app, cfg->stop_timeout, NULL);
	if (b.app_ready)
		app_free(&b.app);
	health_stop(b.health);
	aws_free(&b.aws);
	creds_free(&b.creds);
	imds_free(&b.imds);
	state_free(&b.st);
	free(b.state_path);
	free(b.instance_id);
	free(b.group);
	free(b.hook);
	free(b.version);
	free(b.sha256);
	free(cause);
	return ret;
}
