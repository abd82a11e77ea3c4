/* boot.c - `asg-agent run`: from a fresh instance to a serving app, or a clean ABANDON. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "app.h"
#include "appprobe.h"
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
#include "sdproto.h"
#include "sigv4.h"
#include "state.h"
#include "tags.h"
#include "util.h"

#define BOOT_POLL_BASE		0.25	/* first tag poll ceiling, seconds */
#define BOOT_POLL_CAP		2.0	/* times the slowdown when throttled */
#define BOOT_ABANDON_RETRY	300.0	/* seconds an unanswered ABANDON is asked again */
#define BOOT_PROBE_INTERVAL	0.10	/* app health probes: local, no jitter needed */
#define BOOT_PROBE_EAGER	0.025	/* until the first answer, in the first seconds */
#define BOOT_PROBE_EAGER_FOR	2.0
#define BOOT_EARLY_BEAT		120	/* hooks this short get a heartbeat at once */
#define BOOT_HEALTHY_IN_A_ROW	2
#define BOOT_START_TIMEOUT	120	/* seconds for a RestartUnit job */

volatile sig_atomic_t		boot_stop;
volatile sig_atomic_t		boot_signals;
volatile sig_atomic_t		boot_reload;
volatile sig_atomic_t		boot_hurry;
static volatile sig_atomic_t	boot_deadline_hit;

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
		boot_reload = 1;
		return;
	case SIGALRM:
		boot_deadline_hit = 1;
		break;
	default:
		if (++boot_signals > 1)
			boot_hurry = 1;
		break;
	}
	boot_stop = 1;
}

char *
boot_expand(const char *tmpl, const char *const vars[][2], int encode, char **cause)
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
		/* A group named "a?b" must not turn a path into a query. */
		if (encode && strcmp(vars[i][0], "url") != 0)
			sigv4_uri_encode(&b, vars[i][1], strlen(vars[i][1]), 0);
		else
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
	const char	*vars[][2] = {
		{ "version", "1" }, { "group", "g" }, { "region", "r" },
		{ "instance_id", "i" }, { "url", "u" }, { NULL, NULL }
	};
	char		*s;

	if (*cfg->artifact_url == '\0')
		return set_cause(cause, "%s: [artifact] url is not set", cfg->path);
	if ((s = boot_expand(cfg->artifact_url, vars, 0, cause)) == NULL)
		return set_cause(cause, "%s: [artifact] url %s", cfg->path, *cause);
	free(s);
	if ((s = boot_expand(cfg->signature_url, vars, 0, cause)) == NULL)
		return set_cause(cause, "%s: [artifact] signature_url %s", cfg->path, *cause);
	free(s);
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

/* The journal's fields follow the state: phase, running step, version, instance, group. */
static void
log_fields(const struct state *st)
{
	const struct state_step	*s = st->nsteps > 0 ? &st->steps[st->nsteps - 1] : NULL;

	log_set_field(LOGF_PHASE, state_phase_name(st->phase));
	log_set_field(LOGF_STEP, s != NULL && s->seconds < 0 ? s->name : NULL);
	log_set_field(LOGF_VERSION, st->version);
	log_set_field(LOGF_INSTANCE, st->instance_id);
	log_set_field(LOGF_GROUP, st->group);
}

/* Write the state file; failures to save are logged, not fatal. */
void
boot_save(struct boot *b)
{
	char	*cause = NULL;
	size_t	 i;

	log_fields(&b->st);
	if (b->state_path == NULL)
		return;
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

/* A message to systemd (sd_notify(3)); outside a notify service there is no one to tell. */
static void
sd_tell(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (sdproto_notify(msg) < 0)
		log_debug("cannot notify systemd (%s): %s", getenv("NOTIFY_SOCKET"),
		    strerror(errno));
	free(msg);
}

void
boot_notify(struct boot *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	sd_tell("STATUS=%s", msg);
	log_info("%s", msg);
	free(msg);
}

/* Enter a phase: a timeline step, a STATUS= line, and the state file. */
void
boot_phase(struct boot *b, int ph, const char *step, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	b->st.phase = ph;
	if (step != NULL)
		state_step_begin(&b->st, step);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_fields(&b->st);
	boot_notify(b, "%s: %s", state_phase_name(ph), msg);
	free(msg);
	boot_save(b);
}

/*
 * Heartbeats for hook, as often as its HeartbeatTimeout needs (a third of
 * it, at most [lifecycle] heartbeat), the first one now.
 */
void
boot_heartbeats(struct boot *b, const char *hook, int hook_timeout)
{
	double	interval = b->cfg->heartbeat;

	if (hook_timeout > 0 && hook_timeout / 3.0 < interval)
		interval = hook_timeout / 3.0;
	b->hb_hook = hook;
	b->hb_interval = interval;
	/*
	 * The hook's clock started at launch, before we ran: a short timeout
	 * gets a heartbeat now; a long one the first after an interval, which
	 * spares the API (and a fleet's shared quota) a call on every fast boot.
	 */
	if (hook_timeout > 0 && hook_timeout <= BOOT_EARLY_BEAT) {
		b->next_heartbeat = 0;
		boot_tick(b);
	} else
		b->next_heartbeat = mono_now() + interval;
}

/*
 * Called from every wait and as download bytes arrive: heartbeats for a long
 * boot or drain, and systemd's start timeout pushed out while we progress.
 */
void
boot_tick(void *arg)
{
	struct boot	*b = arg;
	char		*cause = NULL;
	double		 now = mono_now();
	enum outcome	 r;

	if (now - b->last_extend > 10) {
		sd_tell("EXTEND_TIMEOUT_USEC=60000000");
		b->last_extend = now;
	}
	if (b->hb_hook == NULL || now < b->next_heartbeat || b->group == NULL)
		return;
	b->next_heartbeat = now + b->hb_interval;
	r = lifecycle_heartbeat(&b->aws, b->group, b->hb_hook, b->instance_id, &cause);
	if (r == OUTCOME_FATAL || outcome_retryable(r))
		log_warn("lifecycle heartbeat for %s: %s", b->hb_hook, cause);
	else if (r == OUTCOME_NOT_FOUND) {
		log_info("lifecycle hook %s has no pending action: no more heartbeats",
		    b->hb_hook);
		b->hb_hook = NULL;
	} else
		log_debug("lifecycle heartbeat sent for hook %s", b->hb_hook);
	free(cause);
}

/* Sleep in small slices so heartbeats and signals are never late. */
void
boot_wait(struct boot *b, double seconds)
{
	double	end = mono_now() + seconds, left;

	while (!boot_stop && (left = end - mono_now()) > 0) {
		sleep_for(left < 0.25 ? left : 0.25, (volatile int *)&boot_stop);
		boot_tick(b);
	}
}

/*
 * The boot's own retry loops ask again at the tag polls' pace, until the
 * boot is stopped (its deadline too) or the given deadline passes.
 */
static void
boot_retry(struct boot *b, struct retry *r, double deadline, int tick)
{
	retry_init(r, BOOT_POLL_BASE, BOOT_POLL_CAP, deadline);
	r->stop = (volatile int *)&boot_stop;
	if (tick) {
		r->tick = boot_tick;
		r->tick_arg = b;
	}
}

/* The instance id, the region, credentials, and whether we boot into a warm pool. */
static int
step_identity(struct boot *b, char **cause)
{
	const struct creds	*c;
	char			*nl, *target;

	boot_phase(b, PHASE_WAITING_FOR_IMDS, "imds", "asking IMDS who we are");
	if (imds_get(&b->imds, "meta-data/instance-id", &b->instance_id, cause) != OUTCOME_OK)
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
	if ((target = serve_target_state(b)) != NULL) {
		state_set(&b->st.target_state, target);
		b->warm = strncmp(target, "Warmed:", 7) == 0;
		free(target);
	}
	state_step_detail(&b->st, "%s, %s, credentials from %s%s", b->instance_id,
	    b->aws.region, b->creds.source, b->warm ? ", warm pool" : "");
	boot_save(b);
	return 0;
}

/* Find the launch hook as soon as the group is known: heartbeats, and ABANDON if the tag never comes. */
static int
step_hook(struct boot *b, char **cause)
{
	struct retry	r;
	enum outcome	o;
	int		timeout = 0;

	if (b->hook_checked || b->group == NULL)
		return 0;
	b->hook_checked = 1;
	if (*b->cfg->launch_hook != '\0')
		b->hook = xstrdup(b->cfg->launch_hook);
	else {
		boot_retry(b, &r, HUGE_VAL, 1);
		/* Throttled for a whole api_timeout is normal in a big scale-out: ask again. */
		while ((o = lifecycle_find_hook(&b->aws, b->group, LIFECYCLE_LAUNCHING,
		    &b->hook, &timeout, cause)) != OUTCOME_OK) {
			if (!outcome_retryable(o) || boot_stop)
				return set_cause(cause, "DescribeLifecycleHooks: %s", *cause);
			log_warn("DescribeLifecycleHooks (will retry): %s", *cause);
			if (retry_pause(&r, o, 1) != 0)
				return set_cause(cause, "DescribeLifecycleHooks: %s", *cause);
		}
	}
	if (b->hook != NULL) {
		state_setf(&b->st.lifecycle, "launch hook %s pending", b->hook);
		boot_heartbeats(b, b->hook, timeout);
	} else
		state_set(&b->st.lifecycle, "no launch hook on the group");
	return 0;
}

/*
 * The group, when the tags did not name it (the version from IMDS tags with
 * source = imds): CONTINUE, ABANDON and heartbeats need it. An instance in no
 * group has no hook to complete.
 */
static int
step_group(struct boot *b, char **cause)
{
	struct retry	 r;
	enum outcome	 o;
	char		*g = NULL;

	if (b->group != NULL || b->group_checked)
		return 0;
	b->group_checked = 1;
	boot_retry(b, &r, HUGE_VAL, 1);
	while (outcome_retryable(o = tags_instance_group(&b->aws, b->instance_id, &g, NULL,
	    cause)) && !boot_stop) {
		log_warn("DescribeAutoScalingInstances (will retry): %s", *cause);
		if (retry_pause(&r, o, 1) != 0)
			break;
	}
	if (outcome_retryable(o) || o == OUTCOME_FATAL)
		return set_cause(cause, "DescribeAutoScalingInstances: %s", *cause);
	if (o == OUTCOME_OK) {
		b->group = g;
		state_set(&b->st.group, g);
	}
	return step_hook(b, cause);
}

/* The worse of two tag results: final error, then throttled, then retry, then success. */
static enum outcome
worse(enum outcome a, enum outcome b)
{
	if (a == OUTCOME_FATAL || b == OUTCOME_FATAL)
		return OUTCOME_FATAL;
	if (a == OUTCOME_THROTTLED || b == OUTCOME_THROTTLED)
		return OUTCOME_THROTTLED;
	if (a == OUTCOME_RETRY || b == OUTCOME_RETRY)
		return OUTCOME_RETRY;
	return OUTCOME_OK;
}

/*
 * Whether the instance's tags (from IMDS or EC2) hold a usable launch-time
 * copy of the group's version tag: the version, and the digest too when one
 * is configured, so that the two never come from different places.
 */
static int
launch_copy(const struct boot *b, const struct tags *t)
{
	const char	*v;

	if (!b->cfg->version_launch_copy || !b->launch_fresh || b->group == NULL)
		return 0;
	if ((v = tags_get(t, b->cfg->version_tag)) == NULL || *v == '\0')
		return 0;
	if (*b->cfg->sha256_tag == '\0')
		return 1;
	return (v = tags_get(t, b->cfg->sha256_tag)) != NULL && *v != '\0';
}

/*
 * One round of looking for the group and the version tags, cheapest source
 * first. Fills b->group, b->version and b->sha256 as they become known.
 * Returns OUTCOME_OK (look at b->version), a retryable outcome or OUTCOME_FATAL.
 */
static enum outcome
poll_tags(struct boot *b, int *imds_tags, char **cause)
{
	const char	*keys[4], *v, *src_name = NULL, *src_via = "";
	struct tags	 t;
	char		*g = NULL, *err = NULL;
	enum outcome	 r, r2, ret = OUTCOME_FATAL;
	int		 source = b->cfg->version_source, n = 0;

	keys[n++] = b->cfg->version_tag;
	if (*b->cfg->sha256_tag != '\0')
		keys[n++] = b->cfg->sha256_tag;
	keys[n++] = TAG_GROUP_NAME;
	keys[n] = NULL;
	memset(&t, 0, sizeof t);

	/* IMDS tags cost no API quota: always try them first while they answer. */
	if (*imds_tags) {
		r = tags_from_imds(&b->imds, keys, &t, cause);
		if (r == OUTCOME_FATAL)
			goto out;
		if (r == OUTCOME_NOT_FOUND) {
			*imds_tags = 0;
			if (source == VERSION_SOURCE_IMDS) {
				set_cause(cause, "[version] source = imds, but this instance "
				    "has no tags in IMDS (InstanceMetadataTags is off)");
				goto out;
			}
		} else {
			if (b->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
				b->group = xstrdup(v);
			if (source != VERSION_SOURCE_GROUP) {
				src_name = "instance tag";
				src_via = " (IMDS)";
			} else if (launch_copy(b, &t)) {
				src_name = "group tag";
				src_via = " as copied at launch (IMDS)";
			}
		}
	}
	if (src_name == NULL && source != VERSION_SOURCE_IMDS &&
	    (source == VERSION_SOURCE_INSTANCE || b->group == NULL)) {
		tags_free(&t);
		r = tags_from_instance(&b->aws, b->instance_id, keys, &t, &err);
		if (r == OUTCOME_OK) {
			if (b->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
				b->group = xstrdup(v);
			if (source == VERSION_SOURCE_INSTANCE) {
				src_name = "instance tag";
				src_via = " (EC2 DescribeTags)";
			} else if (launch_copy(b, &t)) {
				src_name = "group tag";
				src_via = " as copied at launch (EC2 DescribeTags)";
			}
		} else if (source == VERSION_SOURCE_INSTANCE) {
			ret = r;
			set_cause(cause, "EC2 DescribeTags: %s", err);
			goto out;
		}
		/* For the group name alone, DescribeAutoScalingInstances may still answer. */
		if (b->group == NULL) {
			r2 = tags_instance_group(&b->aws, b->instance_id, &g, NULL, cause);
			if (r2 == OUTCOME_OK)
				b->group = g;
			else if (r != OUTCOME_OK && r2 != OUTCOME_NOT_FOUND) {
				ret = worse(r, r2);
				set_cause(cause, "EC2 DescribeTags: %s; "
				    "DescribeAutoScalingInstances: %s", err, *cause);
				goto out;
			} else if (r2 != OUTCOME_NOT_FOUND) {
				ret = r2;
				goto out;
			}
		}
	}
	if (source == VERSION_SOURCE_GROUP && src_name == NULL) {
		if (b->group == NULL) {
			ret = OUTCOME_OK;	/* not in a group yet: poll again */
			goto out;
		}
		tags_free(&t);
		if ((r = tags_from_group(&b->aws, b->group, keys, &t, cause)) != OUTCOME_OK) {
			ret = r;
			goto out;
		}
		src_name = "group tag";
	}
	if (src_name != NULL && (v = tags_get(&t, b->cfg->version_tag)) != NULL &&
	    *v != '\0') {
		free(b->version);
		b->version = xstrdup(v);
		state_setf(&b->st.version_source, "%s %s%s", src_name,
		    b->cfg->version_tag, src_via);
		free(b->sha256);
		b->sha256 = NULL;
		if (*b->cfg->sha256_tag != '\0' &&
		    (v = tags_get(&t, b->cfg->sha256_tag)) != NULL && *v != '\0')
			b->sha256 = xstrdup(v);
	}
	ret = OUTCOME_OK;
out:
	tags_free(&t);
	free(err);
	return ret;
}

/* Whether the version found so far can be verified with what is configured. */
static int
verifiable(const struct boot *b)
{
	return b->sha256 != NULL || *b->cfg->public_key != '\0' || b->cfg->allow_unverified;
}

/* Poll until the version tag really appears (with its digest); never guess. */
static int
step_version(struct boot *b, char **cause)
{
	struct retry	 r;
	double		 delay, deadline;
	enum outcome	 res;
	int		 imds_tags = 1;
	char		*err = NULL, *safe;

	boot_phase(b, PHASE_WAITING_FOR_TAG, "version-tag", "waiting for tag %s",
	    b->cfg->version_tag);
	deadline = mono_now() + b->cfg->version_wait;
	retry_init(&r, BOOT_POLL_BASE, BOOT_POLL_CAP, deadline);
	for (;;) {
		state_step_poll(&b->st);
		res = poll_tags(b, &imds_tags, &err);
		if (b->group != NULL && b->st.group == NULL) {
			state_set(&b->st.group, b->group);
			if (step_hook(b, cause) != 0)
				goto fail;
			boot_save(b);
		}
		if (res == OUTCOME_FATAL) {
			/* Auth and validation errors will not fix themselves. */
			set_cause(cause, "reading tags: %s", err);
			goto fail;
		}
		if (outcome_retryable(res))
			log_warn("reading tags (will retry): %s", err);
		if (b->version != NULL && verifiable(b))
			break;
		if (boot_stop) {
			set_cause(cause, "stopped while waiting for tag %s", b->cfg->version_tag);
			goto fail;
		}
		/* Throttled answers stretch the polling for the whole fleet's sake. */
		if ((delay = retry_pause_for(&r, res, aws_slowdown(&b->aws), mono_now())) < 0 ||
		    mono_now() + delay >= deadline) {
			if (b->version != NULL)
				set_cause(cause, "tag %s is %s but it has no %s tag after %d s and "
				    "no public_key is configured: nothing to verify it with",
				    b->cfg->version_tag, b->version, b->cfg->sha256_tag,
				    b->cfg->version_wait);
			else
				set_cause(cause, "tag %s did not appear within %d s (%s)%s%s; "
				    "refusing to guess a version", b->cfg->version_tag,
				    b->cfg->version_wait, b->group != NULL ? b->group :
				    "group unknown", outcome_retryable(res) ? ": " : "",
				    outcome_retryable(res) ? err : "");
			goto fail;
		}
		boot_wait(b, delay);
	}
	free(err);
	if (!release_version_ok(b->version)) {
		safe = str_vis(b->version);
		set_cause(cause, "tag %s has an unusable version '%s' (allowed: letters, "
		    "digits, . _ + -)", b->cfg->version_tag, safe);
		free(safe);
		return -1;
	}
	state_set(&b->st.version, b->version);
	state_step_detail(&b->st, "%s from %s", b->version, b->st.version_source);
	boot_save(b);
	return 0;
fail:
	free(err);
	return -1;
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
	int		 encode;

	*sig_url = NULL;
	/* S3 keys are encoded when signed; URLs get their values encoded here. */
	encode = strncmp(b->cfg->artifact_url, "s3://", 5) != 0;
	if ((*url = boot_expand(b->cfg->artifact_url, vars, encode, cause)) == NULL)
		return set_cause(cause, "[artifact] url %s", *cause);
	if (*b->cfg->public_key == '\0')
		return 0;
	vars[4][1] = *url;
	encode = strncmp(b->cfg->signature_url, "s3://", 5) != 0;
	if ((*sig_url = boot_expand(b->cfg->signature_url, vars, encode, cause)) == NULL)
		return set_cause(cause, "[artifact] signature_url %s", *cause);
	return 0;
}

/* Whether an installed release may be used as it is, without a download. */
static int
reusable(const struct boot *b, const char *have)
{
	if (have == NULL)	/* installed unverified */
		return b->cfg->allow_unverified;
	if (b->sha256 != NULL)
		return strcasecmp(have, b->sha256) == 0;
	/* Verified by signature when installed; the same key still applies. */
	return *b->cfg->public_key != '\0' || b->cfg->allow_unverified;
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
	if (release_present(b->cfg->state_dir, b->version, &have) == 1 && reusable(b, have)) {
		b->st.downloaded = 0;
		state_set(&b->st.sha256, have);
		state_set(&b->st.verification, have != NULL ? "verified when installed" :
		    "UNVERIFIED (installed earlier, allow_unverified = yes)");
		boot_phase(b, PHASE_INSTALLING, "install", "release %s is already installed",
		    b->version);
		ret = 0;
		goto out;
	}
	boot_phase(b, PHASE_FETCHING, "fetch", "fetching %s", url);
	if (release_staging(b->cfg->state_dir, b->version, &staging, cause) != 0)
		goto out;
	memset(&spec, 0, sizeof spec);
	spec.url = url;
	spec.sha256 = b->sha256;
	spec.signature_url = sig_url;
	spec.public_key = *b->cfg->public_key != '\0' ? b->cfg->public_key : NULL;
	spec.max_size = b->cfg->max_size;
	spec.stop = (volatile int *)&boot_stop;
	spec.tick = boot_tick;
	spec.tick_arg = b;
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
	boot_phase(b, PHASE_INSTALLING, "install", "installing %s", b->version);
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

/*
 * After a crash or restart of the agent: is the app an earlier agent started
 * for this very version still running and healthy? Then keep it.
 */
static int
try_adopt(struct boot *b, const struct state *old)
{
	char	*err = NULL;
	int	 ok;

	if (old == NULL || old->version == NULL || strcmp(old->version, b->version) != 0 ||
	    (old->phase != PHASE_SERVING && old->phase != PHASE_WAITING_FOR_HEALTH))
		return 0;
	if (b->app.unit == NULL && !state_process_alive(old, old->app_pid, old->app_pid_start))
		return 0;
	if (b->app.unit != NULL && app_check(&b->app, &err) != 0) {
		free(err);
		return 0;
	}
	ok = appprobe_healthy(b->cfg->health_url, 2.0, &err) == 1;
	free(err);
	if (!ok)
		return 0;
	if (b->app.unit == NULL) {
		app_adopt(&b->app, old->app_pid);
		b->st.app_pid = old->app_pid;
		b->st.app_pid_start = old->app_pid_start;
	}
	return 1;
}

static int
step_start(struct boot *b, const struct state *old, char **cause)
{
	char	*current, *desc, *err = NULL;
	int	 ret = -1;

	current = xasprintf("%s/current", b->cfg->state_dir);
	boot_phase(b, PHASE_STARTING, "start", "starting %s",
	    *b->cfg->app_unit != '\0' ? b->cfg->app_unit : b->cfg->app_command);
	if (app_write_env(b->cfg->state_dir, b->version, current, b->instance_id, cause) != 0)
		goto out;
	if (!b->app_ready) {
		if (app_init(&b->app, b->cfg->app_unit, b->cfg->app_command, current,
		    b->version, b->instance_id, cause) != 0)
			goto out;
		b->app.stop = (volatile int *)&boot_stop;
		b->app.tick = boot_tick;
		b->app.tick_arg = b;
		b->app_ready = 1;
	}
	if (try_adopt(b, old)) {
		b->app_started = 1;
		desc = app_describe(&b->app);
		state_setf(&b->st.app, "%s, kept running from before the agent restarted", desc);
		state_step_detail(&b->st, "app already running and healthy: kept");
		free(desc);
		ret = 0;
		goto out;
	}
	/* Something answering already would make the health check lie. */
	if (b->app.unit == NULL && appprobe_healthy(b->cfg->health_url, 1.0, &err) == 1) {
		set_cause(cause, "something already answers %s before the app was started",
		    b->cfg->health_url);
		goto out;
	}
	if (*b->cfg->pre_start != '\0') {
		state_step_detail(&b->st, "pre_start %s", b->cfg->pre_start);
		if (app_pre_start(&b->app, b->cfg->pre_start, b->cfg->pre_start_timeout,
		    (volatile int *)&boot_stop, cause) != 0)
			goto out;
	}
	if (app_start(&b->app, BOOT_START_TIMEOUT, cause) != 0)
		goto out;
	b->app_started = 1;
	if (b->app.unit == NULL) {
		b->st.app_pid = (int)b->app.pid;
		b->st.app_pid_start = state_process_start((int)b->app.pid);
	}
	desc = app_describe(&b->app);
	state_set(&b->st.app, desc);
	free(desc);
	ret = 0;
out:
	free(err);
	free(current);
	return ret;
}

/* Probe the app until it answers healthy twice in a row. */
static int
step_health(struct boot *b, char **cause)
{
	double	 start = mono_now(), deadline = start + b->cfg->health_timeout;
	char	*err = NULL;
	int	 good = 0, ret = -1;

	boot_phase(b, PHASE_WAITING_FOR_HEALTH, "health", "waiting for %s",
	    b->cfg->health_url);
	for (;;) {
		if (app_check(&b->app, &err) != 0) {
			set_cause(cause, "%s before it turned healthy", err);
			goto out;
		}
		state_step_poll(&b->st);
		if (appprobe_healthy(b->cfg->health_url, 2.0, &err) == 1) {
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
		/*
		 * A just-started app is asked often until it first answers; the
		 * second, confirming probe always comes a full interval later.
		 */
		boot_wait(b, good == 0 && mono_now() - start < BOOT_PROBE_EAGER_FOR ?
		    BOOT_PROBE_EAGER : BOOT_PROBE_INTERVAL);
	}
	state_set(&b->st.health, "healthy");
	b->st.last_probe_ok = wall_now();
	ret = 0;
out:
	free(err);
	return ret;
}

enum outcome
boot_complete(struct boot *b, const char *result)
{
	char		*cause = NULL;
	enum outcome	 r;

	if (b->hook == NULL || b->completed)
		return OUTCOME_OK;
	/* In a big scale-out this call can wait on throttling for a while: say so. */
	state_setf(&b->st.lifecycle, "sending %s for launch hook %s", result, b->hook);
	boot_save(b);
	r = lifecycle_complete(&b->aws, b->group, b->hook, b->instance_id, result, &cause);
	if (r == OUTCOME_OK) {
		state_setf(&b->st.lifecycle, "%s sent for launch hook %s", result, b->hook);
		log_info("lifecycle: %s sent for hook %s", result, b->hook);
		b->completed = 1;
	} else if (r == OUTCOME_NOT_FOUND) {
		state_setf(&b->st.lifecycle, "launch hook %s already completed (no %s needed)",
		    b->hook, result);
		log_info("lifecycle: hook %s has no pending action", b->hook);
		b->completed = 1;
	} else {
		state_setf(&b->st.lifecycle, "%s for launch hook %s FAILED (retrying): %s",
		    result, b->hook, cause);
		log_error("lifecycle %s: %s", result, cause);
	}
	if (b->completed && b->hb_hook == b->hook)
		b->hb_hook = NULL;
	free(cause);
	return r;
}

/* Fail closed: 503, stop the app, ABANDON so the ASG replaces us now. */
static int
fail(struct boot *b, const char *cause)
{
	struct retry	 r;
	enum outcome	 o;
	char		*err = NULL;

	/* Logged once, as what it is: `journalctl ASG_AGENT_PHASE=failed` finds it. */
	log_set_field(LOGF_PHASE, state_phase_name(PHASE_FAILED));
	log_error("boot failed in %s: %s", state_phase_name(b->st.phase), cause);
	if (b->health != NULL)
		health_set(b->health, 0, "failed");
	state_set(&b->st.error, cause);
	state_set(&b->st.health, "unhealthy: boot failed");
	boot_stop_app(b, "app");
	/*
	 * A stop signal is the instance going away, not a bad release. A fleet
	 * failing together shares one Auto Scaling bucket: keep asking rather
	 * than leave the instance to the hook's timeout.
	 */
	boot_retry(b, &r, mono_now() + BOOT_ABANDON_RETRY, 0);
	if (boot_signals == 0 && b->st.phase == PHASE_WAITING_FOR_TAG &&
	    step_group(b, &err) != 0)
		log_warn("cannot ABANDON: %s", err);
	while (boot_signals == 0 && outcome_retryable(o = boot_complete(b, "ABANDON"))) {
		boot_save(b);
		if (retry_pause(&r, o, 1) != 0)
			break;
	}
	state_step_end(&b->st);
	b->st.phase = PHASE_FAILED;
	sd_tell("STATUS=failed: %s", cause);
	boot_save(b);
	free(err);
	return 1;
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
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* mkdir -p: the state dir may sit on a fresh volume. */
static int
make_dirs(const char *path, char **cause)
{
	char	*copy, *p;
	int	 ret = -1;

	if (*path != '/')
		return set_cause(cause, "state_dir '%s' is not an absolute path", path);
	copy = xstrdup(path);
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

static void
deadline_timer(int seconds)
{
	struct itimerval	it;

	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = seconds;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* IMDS, the credential chain and the API client, all giving up when we are stopped. */
static void
clients(struct boot *b)
{
	imds_init(&b->imds, b->cfg->imds_endpoint, b->cfg->imds_timeout);
	b->imds.stop = (volatile int *)&boot_stop;
	creds_init(&b->creds, &b->imds);
	aws_init(&b->aws, &b->imds, &b->creds, NULL, b->cfg->endpoint_url, b->cfg->api_timeout);
	b->aws.stop = (volatile int *)&boot_stop;
	b->aws.max_rate = b->cfg->max_rate;
}

void
boot_stop_app(struct boot *b, const char *what)
{
	char	*err = NULL;

	if (!b->app_started)
		return;
	if (app_stop(&b->app, b->cfg->stop_timeout, &err) != 0)
		log_warn("stopping the %s: %s", what, err);
	free(err);
	b->app_started = 0;
	b->st.app_pid = 0;
}

/* The boot path from the version tag on; run again when a warm instance leaves its pool. */
static int
boot_path(struct boot *b, const struct state *old, char **cause)
{
	if (step_version(b, cause) != 0 || step_group(b, cause) != 0 ||
	    step_hook(b, cause) != 0 ||
	    step_release(b, cause) != 0 || step_activate(b, cause) != 0)
		return -1;
	if (b->warm && !b->cfg->warm_start)
		return 0;
	if (step_start(b, old, cause) != 0 || step_health(b, cause) != 0)
		return -1;
	return 0;
}

/*
 * A warm-pool instance: the release is installed (and was started once when
 * warm_start is set); complete the hook and wait, not serving, until the
 * instance leaves the pool.
 */
static int
warm_wait(struct boot *b, char **cause)
{
	char	*target;

	boot_stop_app(b, "warm-start app");
	deadline_timer(0);
	boot_complete(b, "CONTINUE");
	boot_phase(b, PHASE_WARMED, "warm-pool", "in the warm pool with %s installed",
	    b->version);
	/* Our start is done as far as systemd is concerned: no endless "activating". */
	sd_tell("READY=1");
	while (!boot_stop) {
		if (!b->completed)
			boot_complete(b, "CONTINUE");
		boot_wait(b, b->cfg->poll);
		if ((target = serve_target_state(b)) == NULL)
			continue;
		state_set(&b->st.target_state, target);
		if (strncmp(target, "Warmed:", 7) != 0) {
			log_info("left the warm pool (target state %s)", target);
			free(target);
			return 1;
		}
		free(target);
	}
	return set_cause(cause, "stopped in the warm pool");
}

int
boot_run(struct config *cfg)
{
	struct boot	 b;
	struct state	 old, *oldp = NULL;
	char		*cause = NULL;
	int		 ret = 1, r;

	memset(&b, 0, sizeof b);
	memset(&old, 0, sizeof old);
	b.cfg = cfg;
	state_init(&b.st);
	signals();
	if (make_dirs(cfg->state_dir, &cause) != 0) {
		log_error("%s", cause);
		sd_tell("STATUS=failed: %s", cause);
		goto out;
	}
	b.state_path = xasprintf("%s/state.json", cfg->state_dir);
	if (state_load(&old, b.state_path, NULL) == 0)
		oldp = &old;
	if (boot_check_config(cfg, &cause) != 0) {
		/* Replace any state of an earlier run, so status tells the truth. */
		ret = fail(&b, cause);
		goto out;
	}
	clients(&b);
	boot_save(&b);	/* a status from an earlier run must not be mistaken for ours */
	/* The whole boot path has a deadline; SIGALRM stops whatever is running then. */
	deadline_timer(cfg->deadline);
	if (*cfg->health_listen != '\0') {
		if (health_start(cfg->health_listen, cfg->health_path, &b.health, &cause) != 0) {
			ret = fail(&b, cause);
			goto out;
		}
		health_set(b.health, 0, "booting");
	}
	state_set(&b.st.health, "booting (503)");
	if (step_identity(&b, &cause) != 0)
		goto failed;
	/*
	 * Tags copied at launch are as current as the group's own only on the
	 * instance's first boot: after a reboot or a stay in a warm pool they
	 * may be days old. A state file from another instance (baked into the
	 * AMI) does not count.
	 */
	b.launch_fresh = oldp == NULL || oldp->instance_id == NULL ||
	    strcmp(oldp->instance_id, b.instance_id) != 0;
	for (;;) {
		if (boot_path(&b, oldp, &cause) != 0)
			goto failed;
		if (!b.warm)
			break;
		if ((r = warm_wait(&b, &cause)) != 1) {
			/* Stopped in the pool (the instance stops or hibernates): fine. */
			state_step_end(&b.st);
			boot_save(&b);
			ret = 0;
			goto out;
		}
		/* Out of the pool: the launch hook fires again; boot from the installed release. */
		b.warm = 0;
		b.launch_fresh = 0;
		b.completed = 0;
		b.hook_checked = 0;
		b.group_checked = 0;
		free(b.hook);
		b.hook = NULL;
		free(b.version);
		free(b.sha256);
		b.version = b.sha256 = NULL;
		state_set(&b.st.group, NULL);
		deadline_timer(cfg->deadline);
	}
	/* Healthy: stop the deadline, tell the load balancer and the ASG. */
	deadline_timer(0);
	if (b.health != NULL)
		health_set(b.health, 1, NULL);
	boot_complete(&b, "CONTINUE");
	state_step_end(&b.st);
	b.st.phase = PHASE_SERVING;
	state_step_begin(&b.st, "serving");
	boot_save(&b);
	sd_tell("READY=1\nSTATUS=serving %s (boot took %.3f s)", b.version,
	    wall_now() - b.st.boot_start);
	log_info("serving %s (boot took %.3f s)", b.version, wall_now() - b.st.boot_start);
	ret = serve_run(&b);
	goto out;
failed:
	if (boot_deadline_hit)
		set_cause(&cause, "boot deadline of %d s passed (%s)", cfg->deadline,
		    cause != NULL ? cause : "no cause");
	ret = fail(&b, cause != NULL ? cause : "unknown failure");
out:
	deadline_timer(0);
	if (b.app_started)
		app_stop(&b.app, cfg->stop_timeout, NULL);
	if (b.app_ready)
		app_free(&b.app);
	health_stop(b.health);
	aws_free(&b.aws);
	creds_free(&b.creds);
	imds_free(&b.imds);
	state_free(&b.st);
	state_free(&old);
	free(b.state_path);
	free(b.instance_id);
	free(b.group);
	free(b.hook);
	free(b.version);
	free(b.sha256);
	free(cause);
	return ret;
}

int
boot_prefetch(struct config *cfg, const char *version, const char *sha256,
    const char *group, char **cause)
{
	struct boot	 b;
	struct tags	 t;
	const char	*keys[3], *v;
	int		 n = 0, ret = -1;

	memset(&b, 0, sizeof b);
	memset(&t, 0, sizeof t);
	b.cfg = cfg;
	state_init(&b.st);	/* never saved: the boot's state file is not ours */
	signals();
	if (make_dirs(cfg->state_dir, cause) != 0)
		goto out;
	clients(&b);
	if (aws_resolve_region(&b.aws, cfg->region, cause) != 0)
		goto out;
	if (group != NULL) {
		b.group = xstrdup(group);
		keys[n++] = cfg->version_tag;
		if (*cfg->sha256_tag != '\0')
			keys[n++] = cfg->sha256_tag;
		keys[n] = NULL;
		if (tags_from_group(&b.aws, group, keys, &t, cause) != OUTCOME_OK) {
			set_cause(cause, "reading the tags of group %s: %s", group, *cause);
			goto out;
		}
		if ((v = tags_get(&t, cfg->version_tag)) == NULL || *v == '\0') {
			set_cause(cause, "group %s has no tag %s", group, cfg->version_tag);
			goto out;
		}
		b.version = xstrdup(v);
		if (*cfg->sha256_tag != '\0' && (v = tags_get(&t, cfg->sha256_tag)) != NULL &&
		    *v != '\0')
			b.sha256 = xstrdup(v);
	} else {
		b.version = xstrdup(version);
		b.sha256 = sha256 != NULL ? xstrdup(sha256) : NULL;
	}
	if (!release_version_ok(b.version)) {
		set_cause(cause, "unusable version '%s'", b.version);
		goto out;
	}
	if (!verifiable(&b)) {
		set_cause(cause, "nothing to verify %s with: give --sha256, tag the group "
		    "with %s, or configure [artifact] public_key", b.version, cfg->sha256_tag);
		goto out;
	}
	if (step_release(&b, cause) != 0 || step_activate(&b, cause) != 0)
		goto out;
	log_info("prefetched %s into %s (%s)", b.version, b.st.release_dir,
	    b.st.downloaded ? b.st.verification : "already installed");
	ret = 0;
out:
	tags_free(&t);
	aws_free(&b.aws);
	creds_free(&b.creds);
	imds_free(&b.imds);
	state_free(&b.st);
	free(b.group);
	free(b.version);
	free(b.sha256);
	return ret;
}
