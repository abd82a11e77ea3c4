/* boot.c - the boot path: from a fresh instance to a healthy app, or a clean ABANDON. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "appprobe.h"
#include "artifact.h"
#include "boot.h"
#include "config.h"
#include "fs.h"
#include "health.h"
#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "milestone.h"
#include "policy.h"
#include "release.h"
#include "retry.h"
#include "template.h"
#include "state.h"
#include "tags.h"
#include "util.h"

#define BOOT_POLL_BASE		0.25	/* first tag poll ceiling, seconds */
#define BOOT_POLL_CAP		2.0	/* times the slowdown when throttled */
#define BOOT_ABANDON_RETRY	300.0	/* seconds an unanswered ABANDON is asked again */
#define BOOT_PROBE_INTERVAL	0.10	/* app health probes: local, no jitter needed */
#define BOOT_PROBE_EAGER	0.025	/* in the first seconds */
#define BOOT_PROBE_EAGER_FOR	2.0
#define BOOT_START_TIMEOUT	120	/* seconds for a RestartUnit job */

/*
 * The boot's own retry loops ask again at the tag polls' pace, until the
 * boot is stopped (its deadline too) or the given deadline passes.
 */
static void
boot_retry(struct agent *a, struct retry *r, double deadline, int tick)
{
	agent_retry(a, r, BOOT_POLL_BASE, BOOT_POLL_CAP, deadline, 0, tick);
}

/* The instance id, the region, credentials, and whether we boot into a warm pool. */
static int
step_identity(struct agent *a, char **cause)
{
	const struct creds	*c;
	char			*nl, *target;

	agent_phase(a, PHASE_WAITING_FOR_IMDS, "imds", "asking IMDS who we are");
	if (imds_get(&a->client.imds, "meta-data/instance-id", &a->instance_id, cause) != OUTCOME_OK)
		return set_cause(cause, "instance id: %s", *cause != NULL ? *cause :
		    "IMDS has no instance-id");
	if ((nl = strpbrk(a->instance_id, "\r\n")) != NULL)
		*nl = '\0';
	state_set(&a->st.instance_id, a->instance_id);
	if (client_region(&a->client, a->cfg, cause) != 0)
		return -1;
	state_set(&a->st.region, a->client.aws.region);
	if (creds_get(&a->client.creds, &c, cause) != 0)
		return set_cause(cause, "credentials: %s", *cause);
	if ((target = agent_target_state(a)) != NULL) {
		state_set(&a->st.target_state, target);
		a->warm = strncmp(target, "Warmed:", 7) == 0;
		free(target);
	}
	state_step_detail(&a->st, "%s, %s, credentials from %s%s", a->instance_id,
	    a->client.aws.region, a->client.creds.source, a->warm ? ", warm pool" : "");
	agent_save(a);
	return 0;
}

/* The scale-out the CI announced (written by rollout), once; a bad value is ignored. */
static void
take_scale_tag(struct agent *a, const struct tags *t)
{
	const char	*v;

	if (a->scale_n != 0 || (v = tags_get(t, PACE_TAG_SCALE_OUT)) == NULL)
		return;
	if (pace_announce_parse(v, &a->scale_n, &a->scale_at) != 0) {
		log_warn("tag %s = '%s' is not 'COUNT UNIXTIME': ignored", PACE_TAG_SCALE_OUT, v);
		a->scale_n = -1;
	}
}

/*
 * An announced scale-out: this instance's first Auto Scaling call takes its
 * turn in a spread over the bucket's refill rather than joining the same
 * second's crowd; calls, the Auto Scaling calls a boot of the fleet makes;
 * hook_timeout, the launch hook's when known (0 if not).
 */
static void
spread_first_call(struct agent *a, int calls, int hook_timeout)
{
	double	w, since, front;
	char	share[64];

	if (a->scale_n <= 0 || !a->client.aws.adaptive)
		return;
	w = pace_announce_window(a->scale_n, a->scale_at, wall_now(), calls,
	    a->cfg->autoscaling_burst, a->cfg->autoscaling_rate);
	/* The boot's deadline and the hook's timeout must outlive the wait for a turn. */
	if (w > a->cfg->deadline / 2.0)
		w = a->cfg->deadline / 2.0;
	if (hook_timeout > 0 && w > hook_timeout / 2.0)
		w = hook_timeout / 2.0;
	if (w <= 0) {
		log_debug("scale-out of %ld announced %.0f s ago: no spread", a->scale_n,
		    wall_now() - a->scale_at);
		return;
	}
	/* From the boot's start: its own work up to the call counts toward its turn. */
	since = wall_now() - a->st.boot_start;
	front = pace_announce_front(a->scale_n, calls, a->cfg->autoscaling_burst);
	if (!pace_spread(&a->client.aws.pace[AWS_AUTOSCALING], mono_now() - (since > 0 ? since :
	    0), w, pace_announce_credit(a->scale_n, calls, a->cfg->autoscaling_burst, w), front,
	    a->cfg->autoscaling_rate)) {
		/* The group's tags or its name came from Auto Scaling: the crowd is past. */
		log_debug("scale-out of %ld: an Auto Scaling call went first, no spread",
		    a->scale_n);
		return;
	}
	/* The front share is the part of the fleet the bucket's burst serves at once. */
	share[0] = '\0';
	if (front > 0)
		snprintf(share, sizeof share, front < 0.01 ? ", %.2g %% of the fleet at its "
		    "start" : ", %.0f %% of the fleet at its start", 100 * front);
	state_setf(&a->st.scale_out, "%ld instances announced %.0f s before; first Auto "
	    "Scaling call spread over %.1f s%s", a->scale_n, wall_now() - a->scale_at, w, share);
	log_info("scale-out of %ld instances: first Auto Scaling call spread over %.1f s",
	    a->scale_n, w);
	agent_save(a);
}

/*
 * The launch hook's name and timeout: from the configuration, the group's
 * tag, or DescribeLifecycleHooks asked within r's time. The boot's step and
 * fail()'s ABANDON both look it up here.
 */
static int
hook_lookup(struct agent *a, struct retry *r, int *timeout, char **cause)
{
	struct lifecycle_hook	launch, term;
	enum outcome		o;

	if (*a->cfg->launch_hook != '\0') {
		a->hook = xstrdup(a->cfg->launch_hook);
		return 0;
	}
	if (a->tag_launch.name != NULL) {
		/* Named by the group's tag: the fleet's shared quota is spared a call per instance. */
		a->hook = xstrdup(a->tag_launch.name);
		*timeout = a->tag_launch.timeout;
		a->hook_tagged = 1;
		log_debug("launch hook %s: from tag %s", a->hook, LIFECYCLE_TAG_LAUNCH);
		return 0;
	}
	/* Throttled for a whole api_timeout is normal in a big scale-out: ask again. */
	while ((o = lifecycle_find_hooks(&a->client.aws, a->group, &launch, &term, cause)) !=
	    OUTCOME_OK) {
		if (!outcome_retryable(o) || a->halt.stop)
			return set_cause(cause, "DescribeLifecycleHooks: %s", *cause);
		log_warn("DescribeLifecycleHooks (will retry): %s", *cause);
		if (retry_pause(r, o, 1) != 0)
			return set_cause(cause, "DescribeLifecycleHooks: %s", *cause);
	}
	a->hook = launch.name;
	*timeout = launch.timeout;
	/* A scale-in soon after uses this answer rather than asking again. */
	free(a->term_hook);
	a->term_hook = term.name;
	a->term_timeout = term.timeout;
	a->hooks_read = mono_now();
	return 0;
}

/* Find the launch hook as soon as the group is known: heartbeats, and ABANDON if the tag never comes. */
static int
step_hook(struct agent *a, char **cause)
{
	struct retry	r;
	int		named, timeout = 0;

	if (a->hook_checked || a->group == NULL)
		return 0;
	named = *a->cfg->launch_hook != '\0' || a->tag_launch.name != NULL;
	spread_first_call(a, named ? 1 : 2, *a->cfg->launch_hook == '\0' && named ?
	    a->tag_launch.timeout : 0);
	if (!named)
		agent_turn(a, "DescribeLifecycleHooks");
	boot_retry(a, &r, HUGE_VAL, 1);
	if (hook_lookup(a, &r, &timeout, cause) != 0)
		return -1;
	a->hook_checked = 1;
	if (a->hook != NULL) {
		state_setf(&a->st.lifecycle, "launch hook %s pending%s", a->hook,
		    a->hook_tagged ? " (named by tag " LIFECYCLE_TAG_LAUNCH ")" : "");
		agent_heartbeats(a, a->hook, timeout, a->hook_tagged ? &a->hook : NULL, 1);
	} else
		state_set(&a->st.lifecycle, "no launch hook on the group");
	return 0;
}

/*
 * The group, from DescribeAutoScalingInstances asked within r's time. Cut
 * short (the deadline), it stays unchecked, so that fail() asks again for
 * its ABANDON.
 */
static int
group_lookup(struct agent *a, struct retry *r, char **cause)
{
	enum outcome	 o;
	char		*g = NULL;

	while (outcome_retryable(o = tags_instance_group(&a->client.aws, a->instance_id, &g, NULL,
	    cause)) && !a->halt.stop) {
		log_warn("DescribeAutoScalingInstances (will retry): %s", *cause);
		if (retry_pause(r, o, 1) != 0)
			break;
	}
	if (outcome_retryable(o))
		return set_cause(cause, "DescribeAutoScalingInstances: %s", *cause);
	a->group_checked = 1;
	if (o == OUTCOME_FATAL)
		return set_cause(cause, "DescribeAutoScalingInstances: %s", *cause);
	if (o == OUTCOME_OK) {
		a->group = g;
		state_set(&a->st.group, g);
	}
	return 0;
}

/*
 * The group, when the tags did not name it (the version from IMDS tags with
 * source = imds): CONTINUE, ABANDON and heartbeats need it. An instance in no
 * group has no hook to complete.
 */
static int
step_group(struct agent *a, char **cause)
{
	struct retry	r;

	if (a->group != NULL || a->group_checked)
		return 0;
	boot_retry(a, &r, HUGE_VAL, 1);
	if (group_lookup(a, &r, cause) != 0)
		return -1;
	return step_hook(a, cause);
}

/* A hook the group's tags name (written by rollout and publish), once; a bad value is ignored. */
static void
take_hook_tag(struct agent *a, const struct tags *t, const char *key, struct lifecycle_hook *h)
{
	const char	*v;

	if (h->name != NULL || (v = tags_get(t, key)) == NULL)
		return;
	if (lifecycle_hook_parse(v, h) != 0 && !a->tag_warned) {
		log_warn("tag %s = '%s' is not 'NAME TIMEOUT': asking DescribeLifecycleHooks", key,
		    v);
		a->tag_warned = 1;
	}
}

/* The load balancers' deregistration delay (rollout and publish tag it), once; a bad one ignored. */
static void
take_dereg_tag(struct agent *a, const struct tags *t)
{
	const char	*v;

	if (a->dereg != -1 || (v = tags_get(t, LIFECYCLE_TAG_DEREG)) == NULL)
		return;
	if ((a->dereg = lifecycle_dereg_parse(v)) < 0) {
		log_warn("tag %s = '%s' is not seconds from 0 to %d: ignored", LIFECYCLE_TAG_DEREG,
		    v, LIFECYCLE_DEREG_MAX);
		a->dereg = -2;
	}
}

/* Whether the instance's tags hold a fresh launch-time copy of the group's. */
static int
fresh_copy(const struct agent *a, const struct tags *t)
{
	return policy_launch_copy(a->cfg, a->launch_fresh, a->group != NULL, t);
}

/*
 * One round of looking for the group and the version tags, cheapest source
 * first. Fills a->group, a->version and a->sha256 as they become known.
 * Returns OUTCOME_OK (look at a->version), a retryable outcome or OUTCOME_FATAL.
 */
static enum outcome
poll_tags(struct agent *a, int *imds_tags, char **cause)
{
	const char	*keys[8], *v, *src_name = NULL, *src_via = "";
	struct tags	 t;
	char		*g = NULL, *err = NULL;
	enum outcome	 r, r2, ret = OUTCOME_FATAL;
	int		 source = a->cfg->version_source, n = 0;

	keys[n++] = a->cfg->version_tag;
	if (*a->cfg->sha256_tag != '\0')
		keys[n++] = a->cfg->sha256_tag;
	keys[n++] = TAG_GROUP_NAME;
	keys[n++] = LIFECYCLE_TAG_LAUNCH;
	keys[n++] = LIFECYCLE_TAG_TERMINATE;
	keys[n++] = PACE_TAG_SCALE_OUT;
	keys[n++] = LIFECYCLE_TAG_DEREG;
	keys[n] = NULL;
	memset(&t, 0, sizeof t);

	/* IMDS tags cost no API quota: always try them first while they answer. */
	if (*imds_tags) {
		r = tags_from_imds(&a->client.imds, keys, &t, cause);
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
			if (a->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
				a->group = xstrdup(v);
			policy_version_source(a->cfg, TAGS_FROM_IMDS, fresh_copy(a, &t),
			    &src_name, &src_via);
		}
	}
	if (src_name == NULL && source != VERSION_SOURCE_IMDS &&
	    (source == VERSION_SOURCE_INSTANCE || a->group == NULL)) {
		tags_free(&t);
		r = tags_from_instance(&a->client.aws, a->instance_id, keys, &t, &err);
		if (r == OUTCOME_OK) {
			if (a->group == NULL && (v = tags_get(&t, TAG_GROUP_NAME)) != NULL)
				a->group = xstrdup(v);
			policy_version_source(a->cfg, TAGS_FROM_EC2, fresh_copy(a, &t),
			    &src_name, &src_via);
		} else if (source == VERSION_SOURCE_INSTANCE) {
			ret = r;
			set_cause(cause, "EC2 DescribeTags: %s", err);
			goto out;
		}
		/* For the group name alone, DescribeAutoScalingInstances may still answer. */
		if (a->group == NULL) {
			r2 = tags_instance_group(&a->client.aws, a->instance_id, &g, NULL, cause);
			if (r2 == OUTCOME_OK)
				a->group = g;
			else if (r != OUTCOME_OK && r2 != OUTCOME_NOT_FOUND) {
				ret = outcome_worse(r, r2);
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
		if (a->group == NULL) {
			ret = OUTCOME_OK;	/* not in a group yet: poll again */
			goto out;
		}
		tags_free(&t);
		if ((r = tags_from_group(&a->client.aws, a->group, keys, &t, cause)) != OUTCOME_OK) {
			ret = r;
			goto out;
		}
		policy_version_source(a->cfg, TAGS_FROM_GROUP, 0, &src_name, &src_via);
	}
	if (src_name != NULL && (v = tags_get(&t, a->cfg->version_tag)) != NULL &&
	    *v != '\0') {
		free(a->version);
		a->version = xstrdup(v);
		state_setf(&a->st.version_source, "%s %s%s", src_name,
		    a->cfg->version_tag, src_via);
		free(a->sha256);
		a->sha256 = NULL;
		if (*a->cfg->sha256_tag != '\0' &&
		    (v = tags_get(&t, a->cfg->sha256_tag)) != NULL && *v != '\0')
			a->sha256 = xstrdup(v);
	}
	take_hook_tag(a, &t, LIFECYCLE_TAG_LAUNCH, &a->tag_launch);
	take_hook_tag(a, &t, LIFECYCLE_TAG_TERMINATE, &a->tag_term);
	take_scale_tag(a, &t);
	take_dereg_tag(a, &t);
	ret = OUTCOME_OK;
out:
	tags_free(&t);
	free(err);
	return ret;
}

/* Poll until the version tag really appears (with its digest); never guess. */
static int
step_version(struct agent *a, char **cause)
{
	struct retry	 r;
	double		 delay, deadline;
	enum outcome	 res;
	int		 imds_tags = 1;
	char		*err = NULL, *safe;

	agent_phase(a, PHASE_WAITING_FOR_TAG, "version-tag", "waiting for tag %s",
	    a->cfg->version_tag);
	deadline = mono_now() + a->cfg->version_wait;
	retry_init(&r, BOOT_POLL_BASE, BOOT_POLL_CAP, deadline);
	for (;;) {
		state_step_poll(&a->st);
		res = poll_tags(a, &imds_tags, &err);
		if (a->group != NULL && a->st.group == NULL) {
			state_set(&a->st.group, a->group);
			if (step_hook(a, cause) != 0)
				goto fail;
			agent_save(a);
		}
		if (res == OUTCOME_FATAL) {
			/* Auth and validation errors will not fix themselves. */
			set_cause(cause, "reading tags: %s", err);
			goto fail;
		}
		if (outcome_retryable(res))
			log_warn("reading tags (will retry): %s", err);
		if (a->version != NULL && policy_verifiable(a->cfg, a->sha256))
			break;
		if (a->halt.stop) {
			set_cause(cause, "stopped while waiting for tag %s", a->cfg->version_tag);
			goto fail;
		}
		/* Throttled answers stretch the polling for the whole fleet's sake. */
		if ((delay = retry_pause_for(&r, res, aws_slowdown(&a->client.aws), mono_now())) < 0 ||
		    mono_now() + delay >= deadline) {
			if (a->version != NULL)
				set_cause(cause, "tag %s is %s but it has no %s tag after %d s and "
				    "no public_key is configured: nothing to verify it with",
				    a->cfg->version_tag, a->version, a->cfg->sha256_tag,
				    a->cfg->version_wait);
			else
				set_cause(cause, "tag %s did not appear within %d s (%s)%s%s; "
				    "refusing to guess a version", a->cfg->version_tag,
				    a->cfg->version_wait, a->group != NULL ? a->group :
				    "group unknown", outcome_retryable(res) ? ": " : "",
				    outcome_retryable(res) ? err : "");
			goto fail;
		}
		agent_wait(a, delay);
	}
	free(err);
	if (!release_version_ok(a->version)) {
		safe = str_vis(a->version);
		set_cause(cause, "tag %s has an unusable version '%s' (allowed: letters, "
		    "digits, . _ + -)", a->cfg->version_tag, safe);
		free(safe);
		return -1;
	}
	state_set(&a->st.version, a->version);
	state_step_detail(&a->st, "%s from %s", a->version, a->st.version_source);
	agent_save(a);
	return 0;
fail:
	free(err);
	return -1;
}

/* Expand the artifact and signature URLs for this boot. */
static int
artifact_urls(struct agent *a, char **url, char **sig_url, char **cause)
{
	const char	*vars[][2] = {
		{ "version", a->version }, { "group", a->group },
		{ "region", a->client.aws.region }, { "instance_id", a->instance_id },
		{ "url", NULL }, { NULL, NULL }
	};
	int		 encode;

	*sig_url = NULL;
	/* S3 keys are encoded when signed; URLs get their values encoded here. */
	encode = strncmp(a->cfg->artifact_url, "s3://", 5) != 0;
	if ((*url = tmpl_expand(a->cfg->artifact_url, vars, encode, cause)) == NULL)
		return set_cause(cause, "[artifact] url %s", *cause);
	if (*a->cfg->public_key == '\0')
		return 0;
	vars[4][1] = *url;
	encode = strncmp(a->cfg->signature_url, "s3://", 5) != 0;
	if ((*sig_url = tmpl_expand(a->cfg->signature_url, vars, encode, cause)) == NULL)
		return set_cause(cause, "[artifact] signature_url %s", *cause);
	return 0;
}

/*
 * Whether an agent serves version from this state dir now: a prefetch
 * beside it must not swap that release's files under its app.
 */
static int
served_now(struct agent *a)
{
	struct state	 st;
	char		*cur = NULL, *path;
	int		 live = 0;

	if (release_current(a->cfg->state_dir, &cur, NULL) != 0 || cur == NULL ||
	    strcmp(cur, a->version) != 0) {
		free(cur);
		return 0;
	}
	free(cur);
	path = xasprintf("%s/state.json", a->cfg->state_dir);
	if (state_load(&st, path, NULL) == 0) {
		/* An agent that crashed leaves its app serving (a command's pid is known). */
		live = (st.phase != PHASE_FAILED && st.phase != PHASE_STOPPED &&
		    state_process_alive(&st, st.pid, st.pid_start)) ||
		    state_process_alive(&st, st.app_pid, st.app_pid_start);
		state_free(&st);
	}
	free(path);
	return live;
}

/* Fetch and install the release, unless a verified copy is already here. */
static int
step_release(struct agent *a, int prefetch, char **cause)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	char			*url = NULL, *sig_url = NULL, *staging = NULL, *have = NULL;
	char			*shown;
	enum release_presence	 pres;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	if (artifact_urls(a, &url, &sig_url, cause) != 0)
		goto out;
	/* status shows it: a presigned URL's signature is not for every reader of the state. */
	shown = http_url_shown(url);
	state_set(&a->st.artifact, shown);
	free(shown);
	pres = release_present(a->cfg->state_dir, a->version, &have);
	if (pres == RELEASE_LOOSE)
		log_warn("release %s was installed by an older agent, which kept the archive's "
		    "write bits: fetching it again", a->version);
	if (pres == RELEASE_PRESENT && policy_reusable(a->cfg, have, a->sha256)) {
		a->st.downloaded = 0;
		state_set(&a->st.sha256, have);
		state_set(&a->st.verification, have != NULL ? "verified when installed" :
		    "UNVERIFIED (installed earlier, allow_unverified = yes)");
		agent_phase(a, PHASE_INSTALLING, "install", "release %s is already installed",
		    a->version);
		ret = 0;
		goto out;
	}
	if (prefetch && pres != RELEASE_ABSENT && served_now(a)) {
		set_cause(cause, "release %s is installed with other bytes than asked (%s) and "
		    "an agent serves it now: prefetch does not swap its files under the app; "
		    "the agent's next boot does", a->version, have != NULL ? have : "unverified");
		goto out;
	}
	agent_phase(a, PHASE_FETCHING, "fetch", "fetching %s", a->st.artifact);
	if (release_staging(a->cfg->state_dir, a->version, &staging, cause) != 0)
		goto out;
	memset(&spec, 0, sizeof spec);
	spec.url = url;
	spec.sha256 = a->sha256;
	spec.signature_url = sig_url;
	spec.public_key = *a->cfg->public_key != '\0' ? a->cfg->public_key : NULL;
	spec.max_size = a->cfg->max_size;
	spec.connections = a->cfg->connections;
	spec.halt = &a->halt;
	spec.tick = agent_tick;
	spec.tick_arg = a;
	if (artifact_fetch(&a->client.aws, &spec, staging, &res, cause) != 0)
		goto out;
	state_step_detail(&a->st, "%lld bytes (%s), %lld unpacked in %ld entries%s",
	    res.bytes, res.format != NULL ? res.format : "?", res.unpacked, res.entries,
	    res.resumes > 0 ? ", resumed" : "");
	a->st.downloaded = 1;
	state_set(&a->st.sha256, res.sha256);
	state_setf(&a->st.verification, "%s%s%s",
	    res.digest_ok ? "sha256 tag" : "",
	    res.digest_ok && res.signature_ok ? " + " : "",
	    res.signature_ok ? "signature" : (res.digest_ok ? "" : "UNVERIFIED"));
	agent_phase(a, PHASE_INSTALLING, "install", "installing %s", a->version);
	/* A manifest pin is recorded as it is, so the next boot can compare the tag. */
	if (release_commit(a->cfg->state_dir, a->version, staging,
	    !res.digest_ok && !res.signature_ok ? NULL : manifest_pin(a->sha256) != NULL ?
	    a->sha256 : res.sha256, cause) != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0 && staging != NULL)
		fs_rmtree(staging, NULL);
	artifact_result_free(&res);
	free(staging);
	free(have);
	free(url);
	free(sig_url);
	return ret;
}

/*
 * Point current at the release, then prune. if_none: only where current is
 * not set yet (prefetch, an image being baked: on a live instance the running
 * app's next restart would run this version instead; the boot activates the
 * version it runs either way).
 */
static int
step_activate(struct agent *a, int if_none, char **cause)
{
	char	*err = NULL, *cur = NULL;

	if (if_none && release_current(a->cfg->state_dir, &cur, cause) != 0)
		return -1;
	if (cur != NULL && strcmp(cur, a->version) != 0)
		log_info("current stays %s: the boot activates the version it runs", cur);
	if (cur == NULL && release_activate(a->cfg->state_dir, a->version, cause) != 0)
		return -1;
	free(cur);
	free(a->st.release_dir);
	a->st.release_dir = release_dir(a->cfg->state_dir, a->version);
	if (release_prune(a->cfg->state_dir, a->cfg->keep, &err) != 0) {
		log_warn("pruning old releases: %s", err);
		free(err);
	}
	return 0;
}

/*
 * Fetch, install and activate under the state dir's lock: another process's
 * prune (a prefetch beside a boot) would empty a staging dir being unpacked.
 */
static int
step_install(struct agent *a, int if_none, char **cause)
{
	int	lock, r, said = 0, ret;

	while ((r = fs_lock_try(a->cfg->state_dir, ".lock", &lock, cause)) == 1) {
		if (!said++)
			log_info("waiting for another asg-agent installing in %s",
			    a->cfg->state_dir);
		if (halt_stopped(&a->halt))
			return set_cause(cause, "stopped waiting for the lock of %s",
			    a->cfg->state_dir);
		/* Heartbeats (and the watchdog) go on while the other install runs. */
		agent_tick(a);
		sleep_for(0.2, &a->halt);
	}
	if (r != 0)
		return -1;
	ret = step_release(a, if_none, cause) != 0 || step_activate(a, if_none, cause) != 0 ?
	    -1 : 0;
	close(lock);
	return ret;
}

/*
 * After a crash or restart of the agent: is the app an earlier agent started
 * for this very version still running and healthy? Then keep it.
 */
static int
try_adopt(struct agent *a, const struct state *old)
{
	char	*err = NULL;
	int	 ok;

	if (old == NULL || old->version == NULL || strcmp(old->version, a->version) != 0 ||
	    (old->phase != PHASE_SERVING && old->phase != PHASE_WAITING_FOR_HEALTH))
		return 0;
	if (a->app.unit == NULL && !state_process_alive(old, old->app_pid, old->app_pid_start))
		return 0;
	/* Fetched again (republished bytes): the release was swapped under the old app. */
	if (a->st.downloaded) {
		if (a->app.unit != NULL)
			return 0;	/* systemctl restart replaces it */
		log_info("the app from before the agent restarted runs files replaced since: "
		    "stopping it");
		app_adopt(&a->app, old->app_pid, old->app_pid_start);
		if (app_stop(&a->app, a->cfg->stop_timeout, &err) != 0) {
			log_warn("%s", err);
			free(err);
		}
		return 0;
	}
	if (a->app.unit != NULL && app_check(&a->app, a->cfg->probe_timeout, &err) != 0) {
		free(err);
		return 0;
	}
	ok = appprobe_healthy(a->cfg->health_url, a->cfg->probe_timeout, &err) == 1;
	free(err);
	if (!ok)
		return 0;
	if (a->app.unit == NULL) {
		app_adopt(&a->app, old->app_pid, old->app_pid_start);
		a->st.app_pid = old->app_pid;
		a->st.app_pid_start = old->app_pid_start;
	}
	return 1;
}

static int
step_start(struct agent *a, const struct state *old, char **cause)
{
	char	*current, *desc, *err = NULL;
	int	 ret = -1;

	current = xasprintf("%s/current", a->cfg->state_dir);
	agent_phase(a, PHASE_STARTING, "start", "starting %s",
	    *a->cfg->app_unit != '\0' ? a->cfg->app_unit : a->cfg->app_command);
	if (app_write_env(a->cfg->state_dir, a->version, current, a->instance_id, cause) != 0)
		goto out;
	if (!a->app_ready) {
		if (app_init(&a->app, a->cfg->app_unit, a->cfg->app_command, current,
		    a->version, a->instance_id, cause) != 0)
			goto out;
		a->app.halt = &a->halt;
		a->app.tick = agent_tick;
		a->app.tick_arg = a;
		a->app_ready = 1;
	}
	if (try_adopt(a, old)) {
		a->app_started = 1;
		desc = app_describe(&a->app);
		state_setf(&a->st.app, "%s, kept running from before the agent restarted", desc);
		state_step_detail(&a->st, "app already running and healthy: kept");
		free(desc);
		ret = 0;
		goto out;
	}
	/* Something answering already would make the health check lie. */
	if (a->app.unit == NULL && appprobe_healthy(a->cfg->health_url, 1.0, &err) == 1) {
		set_cause(cause, "something already answers %s before the app was started",
		    a->cfg->health_url);
		goto out;
	}
	if (*a->cfg->pre_start != '\0') {
		state_step_detail(&a->st, "pre_start %s", a->cfg->pre_start);
		if (app_pre_start(&a->app, a->cfg->pre_start, a->cfg->pre_start_timeout,
		    &a->halt, cause) != 0)
			goto out;
	}
	if (app_start(&a->app, BOOT_START_TIMEOUT, cause) != 0)
		goto out;
	a->app_started = 1;
	if (a->app.unit == NULL) {
		a->st.app_pid = (int)a->app.pid;
		a->st.app_pid_start = state_process_start((int)a->app.pid);
	}
	desc = app_describe(&a->app);
	state_set(&a->st.app, desc);
	free(desc);
	ret = 0;
out:
	free(err);
	free(current);
	return ret;
}

/*
 * Probe the app until it answers healthy. Once is enough: the serving loop
 * goes on probing (and answers 503 when the app fails), and the load
 * balancer sends no traffic before its own healthy threshold. A second
 * probe 100 ms later cost a quarter of a whole boot (bench/realboot).
 */
static int
step_health(struct agent *a, char **cause)
{
	double	 start = mono_now(), deadline = start + a->cfg->health_timeout;
	char	*err = NULL;
	int	 ret = -1;

	agent_phase(a, PHASE_WAITING_FOR_HEALTH, "health", "waiting for %s",
	    a->cfg->health_url);
	for (;;) {
		if (app_check(&a->app, a->cfg->probe_timeout, &err) != 0) {
			set_cause(cause, "%s before it turned healthy", err);
			goto out;
		}
		state_step_poll(&a->st);
		if (appprobe_healthy(a->cfg->health_url, a->cfg->probe_timeout, &err) == 1)
			break;
		if (a->halt.stop) {
			set_cause(cause, "stopped while waiting for the app to turn healthy");
			goto out;
		}
		if (mono_now() >= deadline) {
			set_cause(cause, "app not healthy within %d s: %s", a->cfg->health_timeout,
			    err != NULL ? err : "no answer");
			goto out;
		}
		/* A just-started app is asked often. */
		agent_wait(a, mono_now() - start < BOOT_PROBE_EAGER_FOR ?
		    BOOT_PROBE_EAGER : BOOT_PROBE_INTERVAL);
	}
	state_set(&a->st.health, "healthy");
	a->st.last_probe_ok = wall_now();
	ret = 0;
out:
	free(err);
	return ret;
}

/*
 * What ABANDON needs and the boot had not learned (the tag never came, or
 * the deadline cut a lookup short): the group, then the launch hook's name.
 */
static void
abandon_lookups(struct agent *a, struct retry *r)
{
	char	*err = NULL;
	int	 timeout;

	if (a->halt.signals > 0)
		return;
	if ((a->st.phase == PHASE_WAITING_FOR_TAG && a->group == NULL && !a->group_checked &&
	    a->instance_id != NULL && group_lookup(a, r, &err) != 0) ||
	    (a->hook == NULL && a->hooks_read == 0 && a->group != NULL &&
	    hook_lookup(a, r, &timeout, &err) != 0))
		log_warn("cannot ABANDON: %s", err);
	free(err);
}

/* While ABANDON is asked again: systemd's start timeout extended, and nothing else. */
static void
abandon_tick(void *arg)
{
	struct agent	*a = arg;

	if (mono_now() - a->last_extend > 10) {
		agent_tell("EXTEND_TIMEOUT_USEC=60000000");
		a->last_extend = mono_now();
	}
}

/* Fail closed: 503, stop the app, ABANDON so the ASG replaces us now. */
static void
fail(struct agent *a, const char *cause)
{
	struct retry	 r;
	enum outcome	 o;

	/* Logged once, as what it is: `journalctl ASG_AGENT_PHASE=failed` finds it. */
	log_set_field(LOGF_PHASE, state_phase_name(PHASE_FAILED));
	log_error("boot failed in %s: %s", state_phase_name(a->st.phase), cause);
	if (a->health != NULL)
		health_set(a->health, 0, "failed");
	state_set(&a->st.error, cause);
	state_set(&a->st.health, "unhealthy: boot failed");
	agent_stop_app(a, "app");
	/*
	 * A stop signal is the instance going away, not a bad release. A fleet
	 * failing together shares one Auto Scaling bucket: keep asking rather
	 * than leave the instance to the hook's timeout. The deadline ends the
	 * boot, not its ABANDON (every retry layer ends at a stop), and must not
	 * fire into it.
	 */
	agent_deadline(0);
	if (a->halt.deadline && a->halt.signals == 0) {
		a->halt.stop = 0;
		if (a->halt.signals > 0)	/* a SIGTERM just now */
			a->halt.stop = 1;
	}
	boot_retry(a, &r, mono_now() + BOOT_ABANDON_RETRY, 0);
	r.tick = abandon_tick;
	r.tick_arg = a;
	abandon_lookups(a, &r);
	while (a->halt.signals == 0 && outcome_retryable(o = agent_complete(a, "ABANDON"))) {
		agent_save(a);
		if (retry_pause(&r, o, 1) != 0)
			break;
	}
	state_step_end(&a->st);
	a->st.phase = PHASE_FAILED;
	agent_tell("STATUS=failed: %s", cause);
	agent_save(a);
}

/* The boot under way, for the fatal path: an allocation past the memory limit ends in fail(). */
static struct agent *boot_failing;

static void
boot_fatal(const char *why)
{
	fail(boot_failing, why);
}

/*
 * The milestones before the agent ran: read once, after CONTINUE and
 * READY=1, so they cost the boot nothing. Each may be missing (no IMDS
 * identity document, no systemd): the view shows what is known.
 */
static void
boot_milestones(struct agent *a)
{
	double	*m = a->st.marks;
	char	*err = NULL;

	if (milestone_systemd(&m[MARK_USERSPACE], &m[MARK_UNIT], &err) != 0) {
		log_debug("systemd's timestamps: %s", err);
		free(err);
		err = NULL;
	}
	if (milestone_launch(&a->client.imds, &m[MARK_LAUNCH], &err) != 0) {
		log_debug("launch time: %s", err);
		free(err);
	}
	a->st.imds_clock = a->client.imds.clock_offset;
	a->st.imds_clock_known = a->client.imds.clock_known;
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

/*
 * What the boot would refuse only late (a command that does not split, a
 * URL template): checked once the instance knows its hook, so that fail()
 * can ABANDON, and before anything is fetched.
 */
static int
boot_check_late(const struct config *cfg, char **cause)
{
	char	**argv = NULL;

	if (*cfg->app_command != '\0') {
		if (app_split(cfg->app_command, &argv, cause) != 0)
			return set_cause(cause, "%s: [app] command: %s", cfg->path, *cause);
		app_argv_free(argv);
	}
	return config_check_urls(cfg, cause);
}

/* The boot path from the version tag on; run again when a warm instance leaves its pool. */
static int
boot_path(struct agent *a, const struct state *old, char **cause)
{
	if (step_version(a, cause) != 0 || step_group(a, cause) != 0 ||
	    step_hook(a, cause) != 0 || boot_check_late(a->cfg, cause) != 0 ||
	    step_install(a, 0, cause) != 0)
		return -1;
	if (a->warm && !a->cfg->warm_start)
		return 0;
	if (step_start(a, old, cause) != 0 || step_health(a, cause) != 0)
		return -1;
	return 0;
}

/*
 * A warm-pool instance: the release is installed (and was started once when
 * warm_start is set); complete the hook and wait, not serving, until the
 * instance leaves the pool: 1 into service, 2 terminated from the pool.
 */
static int
warm_wait(struct agent *a, char **cause)
{
	char	*target;

	agent_stop_app(a, "warm-start app");
	agent_deadline(0);
	agent_complete(a, "CONTINUE");
	a->complete_next = mono_now() + a->cfg->poll;
	agent_phase(a, PHASE_WARMED, "warm-pool", "in the warm pool with %s installed",
	    a->version);
	/* Our start is done as far as systemd is concerned: no endless "activating". */
	agent_tell("READY=1");
	while (!a->halt.stop) {
		agent_complete_again(a, "CONTINUE", a->cfg->poll);
		agent_wait(a, a->cfg->poll);
		if ((target = agent_target_state(a)) == NULL)
			continue;
		state_set(&a->st.target_state, target);
		/* Shrunk out of the pool: its terminate hook waits in Warmed:Terminating:Wait. */
		if (strcmp(target, "Warmed:Terminated") == 0) {
			log_info("terminated from the warm pool");
			free(target);
			return 2;
		}
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
boot_lock_run(const struct config *cfg, int *fd, char **cause)
{
	int	r;

	*fd = -1;
	if (make_dirs(cfg->state_dir, cause) != 0 ||
	    (r = fs_lock_try(cfg->state_dir, ".run", fd, cause)) == -1)
		return 0;	/* the boot says why the state dir cannot be used */
	if (r == 1)
		return set_cause(cause, "another asg-agent run uses %s: not starting a second "
		    "one (its state.json and its app are its own)", cfg->state_dir);
	return 0;
}

int
boot_check(const struct config *cfg, int late, char **cause)
{
	if (config_check_run(cfg, cause) != 0)
		return -1;
	if (*cfg->health_listen != '\0' && health_listen_check(cfg->health_listen, cause) != 0)
		return set_cause(cause, "%s: [health] listen: %s", cfg->path, *cause);
	return late ? boot_check_late(cfg, cause) : 0;
}

enum boot_end
boot_run(struct agent *a)
{
	struct config	*cfg = a->cfg;
	struct state	 old, *oldp = NULL;
	char		*cause = NULL, *fields[MARK_COUNT + 1];
	size_t		 nfields;
	double		 took;
	enum boot_end	 ret = BOOT_FAILED;
	int		 r, rc;

	memset(&old, 0, sizeof old);
	agent_signals(a);
	boot_failing = a;
	fatal_hook(boot_fatal);
	if (make_dirs(cfg->state_dir, &cause) != 0) {
		log_error("%s", cause);
		agent_tell("STATUS=failed: %s", cause);
		goto out;
	}
	a->state_path = xasprintf("%s/state.json", cfg->state_dir);
	if ((rc = state_load(&old, a->state_path, &cause)) == 0)
		oldp = &old;
	else if (rc == -1)
		/* A state this binary cannot read (a downgrade, a cut file) is no reason to fail the boot. */
		log_warn("earlier state ignored: %s", cause);
	free(cause);
	cause = NULL;
	if (boot_check(cfg, 0, &cause) != 0) {
		/* Replace any state of an earlier run, so status tells the truth. */
		fail(a, cause);
		goto out;
	}
	agent_clients(a);
	agent_save(a);	/* a status from an earlier run must not be mistaken for ours */
	/* The whole boot path has a deadline; SIGALRM stops whatever is running then. */
	agent_deadline(cfg->deadline);
	if (*cfg->health_listen != '\0') {
		if (health_start(cfg->health_listen, cfg->health_path, cfg->metrics_path,
		    &a->health, &cause) != 0) {
			fail(a, cause);
			goto out;
		}
		health_lb_threshold(a->health, cfg->lb_healthy_threshold);
		health_set(a->health, 0, "booting");
	}
	a->st.lb_threshold = cfg->lb_healthy_threshold;
	state_set(&a->st.health, "booting (503)");
	if (step_identity(a, &cause) != 0)
		goto failed;
	/*
	 * Tags copied at launch are as current as the group's own only on the
	 * instance's first boot: after a reboot or a stay in a warm pool they
	 * may be days old. A state file from another instance (baked into the
	 * AMI) does not count.
	 */
	a->launch_fresh = policy_launch_fresh(oldp != NULL ? oldp->instance_id : NULL,
	    a->instance_id);
	for (;;) {
		if (boot_path(a, oldp, &cause) != 0)
			goto failed;
		if (!a->warm)
			break;
		if ((r = warm_wait(a, &cause)) != 1) {
			/* Stopped in the pool (the instance stops or hibernates): fine. */
			state_step_end(&a->st);
			agent_save(a);
			ret = r == 2 ? BOOT_TERMINATED : BOOT_STOPPED;
			goto out;
		}
		/* Out of the pool: the launch hook fires again; boot from the installed release. */
		a->warm = 0;
		a->launch_fresh = 0;
		a->completed = 0;
		a->hook_checked = 0;
		a->group_checked = 0;
		a->hooks_read = 0;	/* the pool's hooks may have changed: asked afresh */
		/* Copies of an announcement made before the pool was filled: long past. */
		a->scale_n = 0;
		state_set(&a->st.scale_out, NULL);
		free(a->hook);
		a->hook = NULL;
		a->hook_tagged = 0;
		a->hb_hook = NULL;
		a->hb_ref = NULL;
		/* The tags read at launch may be days old: the next boot reads them again. */
		free(a->tag_launch.name);
		free(a->tag_term.name);
		a->tag_launch.name = a->tag_term.name = NULL;
		a->dereg = -1;
		free(a->version);
		free(a->sha256);
		a->version = a->sha256 = NULL;
		state_set(&a->st.group, NULL);
		agent_deadline(cfg->deadline);
	}
	/* Healthy: stop the deadline, tell the load balancer and the ASG. */
	agent_deadline(0);
	if (a->health != NULL)
		health_set(a->health, 1, NULL);
	a->st.marks[MARK_SERVING] = wall_now();
	agent_complete(a, "CONTINUE");
	state_step_end(&a->st);
	a->st.phase = PHASE_SERVING;
	state_step_begin(&a->st, "serving");
	agent_save(a);
	took = wall_now() - a->st.boot_start;
	agent_tell("READY=1\nSTATUS=serving %s (boot took %.3f s)", a->version, took);
	boot_milestones(a);
	agent_save(a);
	/* `journalctl ASG_AGENT_PHASE=serving` lists every boot with its milestones. */
	nfields = metrics_journal_fields(&a->st, fields, nitems(fields));
	log_msg_fields(LOGL_INFO, (const char *const *)fields, nfields,
	    "serving %s (boot took %.3f s)", a->version, took);
	while (nfields > 0)
		free(fields[--nfields]);
	ret = BOOT_SERVE;
	goto out;
failed:
	if (a->halt.deadline)
		set_cause(&cause, "boot deadline of %d s passed (%s)", cfg->deadline,
		    cause != NULL ? cause : "no cause");
	fail(a, cause != NULL ? cause : "unknown failure");
out:
	/* Past the boot there is no launch hook to ABANDON: a fatal error aborts. */
	fatal_hook(NULL);
	agent_deadline(0);
	state_free(&old);
	free(cause);
	return ret;
}

int
boot_prefetch(struct config *cfg, const char *version, const char *sha256,
    const char *group, char **cause)
{
	struct agent	 a;
	struct tags	 t;
	const char	*keys[3], *v;
	int		 n = 0, ret = -1;

	agent_init(&a, cfg);	/* never saved: the boot's state file is not ours */
	memset(&t, 0, sizeof t);
	agent_signals(&a);
	if (make_dirs(cfg->state_dir, cause) != 0)
		goto out;
	agent_clients(&a);
	if (client_region(&a.client, cfg, cause) != 0)
		goto out;
	if (group != NULL) {
		a.group = xstrdup(group);
		keys[n++] = cfg->version_tag;
		if (*cfg->sha256_tag != '\0')
			keys[n++] = cfg->sha256_tag;
		keys[n] = NULL;
		if (tags_from_group(&a.client.aws, group, keys, &t, cause) != OUTCOME_OK) {
			set_cause(cause, "reading the tags of group %s: %s", group, *cause);
			goto out;
		}
		if ((v = tags_get(&t, cfg->version_tag)) == NULL || *v == '\0') {
			set_cause(cause, "group %s has no tag %s", group, cfg->version_tag);
			goto out;
		}
		a.version = xstrdup(v);
		if (*cfg->sha256_tag != '\0' && (v = tags_get(&t, cfg->sha256_tag)) != NULL &&
		    *v != '\0')
			a.sha256 = xstrdup(v);
	} else {
		a.version = xstrdup(version);
		a.sha256 = sha256 != NULL ? xstrdup(sha256) : NULL;
	}
	if (!release_version_ok(a.version)) {
		set_cause(cause, "unusable version '%s'", a.version);
		goto out;
	}
	if (!policy_verifiable(cfg, a.sha256)) {
		set_cause(cause, "nothing to verify %s with: give --sha256, tag the group "
		    "with %s, or configure [artifact] public_key", a.version, cfg->sha256_tag);
		goto out;
	}
	if (step_install(&a, 1, cause) != 0)
		goto out;
	log_info("prefetched %s into %s (%s)", a.version, a.st.release_dir,
	    a.st.downloaded ? a.st.verification : "already installed");
	ret = 0;
out:
	tags_free(&t);
	agent_free(&a);
	return ret;
}
