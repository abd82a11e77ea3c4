/* rollout.c - the blue/green switch between two Auto Scaling groups, run from CI. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "aws.h"
#include "halt.h"
#include "history.h"
#include "lifecycle.h"
#include "log.h"
#include "rollalarm.h"
#include "rollgrp.h"
#include "rollhist.h"
#include "rollout.h"
#include "rollrec.h"
#include "tags.h"
#include "util.h"
#include "xml.h"

/* One line of progress (text), or nothing with --json (the summary comes at the end). */
static void
progress(const struct rollout_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
progress(const struct rollout_opts *o, const char *fmt, ...)
{
	va_list	ap;

	if (o->json)
		return;
	fputs("rollout: ", o->out);
	va_start(ap, fmt);
	vfprintf(o->out, fmt, ap);
	va_end(ap);
	fputc('\n', o->out);
	fflush(o->out);
}

static int
in_list(char **list, size_t n, const char *s)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcmp(list[i], s) == 0)
			return 1;
	}
	return 0;
}

/* ROLLOUT_FAILED, with the alarm and its reason, when any alarm is in state ALARM. */
static int
check_alarms(struct aws *a, const char *alarms, char **cause)
{
	int	ret = rollalarm_check(a, alarms, cause);

	return ret == 0 ? ROLLOUT_OK : ret > 0 ? ROLLOUT_FAILED : ROLLOUT_ERROR;
}

/*
 * want, lowered to the group's desired capacity when its own scaling (or an
 * operator) has taken that below: not the new version's doing. A capacity of
 * 0 is not followed: nothing would be left to switch to.
 */
static int
lowered(const struct rollgrp *g, int want)
{
	return g->desired > 0 && g->desired < want ? g->desired : want;
}

static int
terminating(const struct rollgrp_inst *i)
{
	return strncmp(i->state, "Terminating", 11) == 0 || strcmp(i->state, "Terminated") == 0;
}

/*
 * A step's watch over the new group's instances, to tell an ABANDON (an
 * instance terminated on its way in) from the group's own scale-in.
 */
struct launches {
	char	**seen;		/* instances seen on their way in or in service */
	int	 *served;	/* seen InService once: not the likeliest ABANDON */
	size_t	  nseen;
	char	**old;		/* already terminating when the step began */
	size_t	  nold;
	int	  prev;		/* desired capacity at the last read */
	int	  allowed;	/* instances its own scale-ins took away meanwhile */
};

static void
launches_init(struct launches *l, const struct rollgrp *before, int want)
{
	size_t	i;

	memset(l, 0, sizeof *l);
	for (i = 0; i < before->ninst; i++) {
		if (terminating(&before->inst[i])) {
			l->old = xrealloc(l->old, (l->nold + 1) * sizeof *l->old);
			l->old[l->nold++] = xstrdup(before->inst[i].id);
		}
	}
	/* The step raised it to want before the first read: any lower is a later change. */
	l->prev = before->desired > want ? before->desired : want;
}

static void
launches_free(struct launches *l)
{
	size_t	i;

	for (i = 0; i < l->nseen; i++)
		free(l->seen[i]);
	for (i = 0; i < l->nold; i++)
		free(l->old[i]);
	free(l->seen);
	free(l->served);
	free(l->old);
}

/* Note g's instances; the number seen that are now gone or on their way out, and one of them. */
static size_t
launches_gone(struct launches *l, const struct rollgrp *g, const char **bad)
{
	size_t	i, j, gone = 0;
	int	found;

	for (i = 0; i < g->ninst; i++) {
		if (in_list(l->old, l->nold, g->inst[i].id))
			continue;
		for (j = 0; j < l->nseen && strcmp(l->seen[j], g->inst[i].id) != 0; j++)
			;
		if (j == l->nseen) {
			l->seen = xrealloc(l->seen, (l->nseen + 1) * sizeof *l->seen);
			l->served = xrealloc(l->served, (l->nseen + 1) * sizeof *l->served);
			l->seen[l->nseen] = xstrdup(g->inst[i].id);
			l->served[l->nseen++] = 0;
		}
		l->served[j] |= strcmp(g->inst[i].state, "InService") == 0;
	}
	*bad = NULL;
	for (i = 0; i < l->nseen; i++) {
		for (j = 0, found = 0; j < g->ninst && !found; j++)
			found = strcmp(g->inst[j].id, l->seen[i]) == 0 && !terminating(&g->inst[j]);
		if (!found) {
			gone++;
			/* Name one that never served when there is one: the likelier ABANDON. */
			if (*bad == NULL || !l->served[i])
				*bad = l->seen[i];
		}
	}
	return gone;
}

/*
 * The count a step waits for in g, or -1 (cause set) when the new version
 * failed: an instance terminated on its way in, beyond those the group's
 * own scale-ins took away (the decreases of its desired capacity), or the
 * capacity set to 0.
 */
static int
launches_check(struct launches *l, const struct rollgrp *g, int want, char **cause)
{
	const char	*bad;

	if (g->desired == 0)
		return set_cause(cause, "%s: its desired capacity was set to 0 while the step "
		    "waited for %d instances", g->name, want);
	if (g->desired < l->prev)
		l->allowed += l->prev - g->desired;
	l->prev = g->desired;
	if ((int)launches_gone(l, g, &bad) > l->allowed)
		return set_cause(cause, "instance %s of %s was terminated before it turned "
		    "healthy: the new version failed its boot (lifecycle ABANDON)", bad, g->name);
	return lowered(g, want);
}

/*
 * Wait until want instances of group are InService and healthy (*healthy:
 * how many were). With before (the new group as the step found it), an
 * instance terminated on the way means the new version failed its boot (its
 * agent sent ABANDON), unless the group's own scaling took as many away; then
 * the step waits for its lowered capacity.
 */
static int
wait_healthy(struct aws *a, const struct rollout_opts *o, const char *name, int want,
    const struct rollgrp *before, const char *alarms, int *healthy, char **cause)
{
	struct rollgrp	 g;
	struct launches	 l;
	size_t		 last = (size_t)-1;
	double		 deadline = mono_now() + o->timeout;
	int		 ret = ROLLOUT_ERROR, now = want, n;

	memset(&g, 0, sizeof g);
	if (before != NULL)
		launches_init(&l, before, want);
	for (;;) {
		rollgrp_clear(&g);
		if ((ret = check_alarms(a, alarms, cause)) != ROLLOUT_OK)
			goto out;
		ret = ROLLOUT_ERROR;
		if (rollgrp_describe(a, o->version_tag, name, &g, cause) != 0 ||
		    rollgrp_target_health(a, &g, cause) != 0)
			goto out;
		if (before != NULL) {
			if ((n = launches_check(&l, &g, want, cause)) < 0) {
				ret = ROLLOUT_FAILED;
				goto out;
			}
			if (n != now && n < want)
				progress(o, "%s: desired capacity %d by its own scaling (the step "
				    "asked %d): waiting for %d", name, g.desired, want, n);
			else if (n != now)
				progress(o, "%s: desired capacity %d: waiting for %d again", name,
				    g.desired, n);
			now = n;
		}
		*healthy = (int)rollgrp_count_healthy(&g);
		if ((size_t)*healthy != last) {
			progress(o, "%s: %d of %d instances InService and healthy", name,
			    *healthy, now);
			last = (size_t)*healthy;
		}
		if (*healthy >= now && (int)g.ninst >= now) {
			ret = ROLLOUT_OK;
			goto out;
		}
		if (halt_stopped(o->halt)) {
			set_cause(cause, "stopped while waiting for %s", name);
			goto out;
		}
		if (mono_now() >= deadline) {
			set_cause(cause, "%s: only %d of %d instances healthy after %.0f s",
			    name, *healthy, now, o->timeout);
			ret = ROLLOUT_TIMEOUT;
			goto out;
		}
		sleep_for(o->poll, o->halt);
	}
out:
	if (before != NULL)
		launches_free(&l);
	rollgrp_clear(&g);
	return ret;
}

/*
 * Describe the group once none of its instances is still EnteringStandby: its
 * load balancers drain them first, and ExitStandby and a terminate of a
 * Standby instance take only those that got there. name must not be g's own.
 */
static int
settle_standby(struct aws *a, const struct rollout_opts *o, const char *name,
    struct rollgrp *g, char **cause)
{
	double	deadline = mono_now() + o->timeout;
	int	n, said = 0;

	for (;;) {
		rollgrp_clear(g);
		if (rollgrp_describe(a, o->version_tag, name, g, cause) != 0)
			return ROLLOUT_ERROR;
		if ((n = rollgrp_count_state(g, "EnteringStandby")) == 0)
			return ROLLOUT_OK;
		if (!said++)
			progress(o, "%s: %d instances entering Standby (their load balancers "
			    "drain them)", name, n);
		if (halt_stopped(o->halt)) {
			set_cause(cause, "stopped while waiting for %s", name);
			return ROLLOUT_ERROR;
		}
		if (mono_now() >= deadline) {
			set_cause(cause, "%s: %d instances still entering Standby after %.0f s",
			    name, n, o->timeout);
			return ROLLOUT_TIMEOUT;
		}
		sleep_for(o->poll, o->halt);
	}
}

static void
summary_json(const struct rollout_opts *o, const char *action, int code, const char *error,
    const struct rollgrp *const *groups, size_t ngroups, struct json_object *extra)
{
	struct json_object	*root, *arr, *jg, *ji, *jis;
	size_t			 i, j;

	if (!o->json) {
		json_object_put(extra);
		return;
	}
	root = json_object_new_object();
	json_object_object_add(root, "action", json_object_new_string(action));
	json_object_object_add(root, "code", json_object_new_int(code));
	json_object_object_add(root, "error", error != NULL ? json_object_new_string(error) : NULL);
	if (extra != NULL) {
		json_object_object_foreach(extra, key, val)
			json_object_object_add(root, key, json_object_get(val));
		json_object_put(extra);
	}
	arr = json_object_new_array();
	for (i = 0; i < ngroups; i++) {
		const struct rollgrp *g = groups[i];

		if (g == NULL || g->name == NULL)
			continue;
		jg = json_object_new_object();
		json_object_object_add(jg, "name", json_object_new_string(g->name));
		json_object_object_add(jg, "desired", json_object_new_int(g->desired));
		json_object_object_add(jg, "version", g->version != NULL ?
		    json_object_new_string(g->version) : NULL);
		json_object_object_add(jg, "live", json_object_new_boolean(g->live != NULL &&
		    strcmp(g->live, "true") == 0));
		json_object_object_add(jg, "rollout", g->rollout != NULL ?
		    json_object_new_string(g->rollout) : NULL);
		jis = json_object_new_array();
		for (j = 0; j < g->ninst; j++) {
			ji = json_object_new_object();
			json_object_object_add(ji, "id", json_object_new_string(g->inst[j].id));
			json_object_object_add(ji, "state", json_object_new_string(g->inst[j].state));
			json_object_object_add(ji, "health", g->inst[j].health != NULL ?
			    json_object_new_string(g->inst[j].health) : NULL);
			json_object_array_add(jis, ji);
		}
		json_object_object_add(jg, "instances", jis);
		json_object_array_add(arr, jg);
	}
	json_object_object_add(root, "groups", arr);
	fprintf(o->out, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* The two groups the rollout tags name (commands without --live/--idle). */
static int
find_pair(struct aws *a, char **live, char **idle, char **cause)
{
	struct aws_param	 p[] = {
		{ "Filters.member.1.Name", "key" },
		{ "Filters.member.1.Values.member.1", ROLLGRP_TAG_ROLLOUT },
	};
	struct aws_result	 res;
	struct rollrec		 rec;
	struct xml_node		*m;
	const char		*v, *on;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	if (aws_call_ok(a, AWS_AUTOSCALING, "DescribeTags", p, nitems(p), &res, cause) != 0)
		goto out;
	/*
	 * Both groups carry it, maybe a step apart after a crash; other groups are
	 * another rollout. One page is enough: past 50 tags it holds two rollouts.
	 */
	for (m = xml_child(xml_find(res.xml, "Tags"), "member"); m != NULL; m = xml_next(m)) {
		if ((v = xml_child_text(m, "Value")) == NULL)
			continue;
		if (rollrec_parse(v, &rec) != 0) {
			on = xml_child_text(m, "ResourceId");
			set_cause(cause, "unreadable %s tag '%s' on %s", ROLLGRP_TAG_ROLLOUT, v,
			    on != NULL ? on : "a group");
			goto out;
		}
		if (*live == NULL) {
			*live = xstrdup(rec.live);
			*idle = xstrdup(rec.idle);
		} else if (strcmp(*live, rec.live) != 0 || strcmp(*idle, rec.idle) != 0) {
			set_cause(cause, "several rollouts in progress (%s to %s, %s to %s): name "
			    "one with --live and --idle", *live, *idle, rec.live, rec.idle);
			rollrec_clear(&rec);
			goto out;
		}
		rollrec_clear(&rec);
	}
	if (*live == NULL) {
		set_cause(cause, "no rollout in progress (no group has the %s tag)",
		    ROLLGRP_TAG_ROLLOUT);
		goto out;
	}
	ret = 0;
out:
	aws_result_free(&res);
	return ret;
}

/*
 * The two groups of the rollout in progress and its record, the new group's
 * copy (written first, so the newer after a crash between the two). Names
 * given must be the record's: swapped, finish would remove the new group.
 * ROLLOUT_OK, ROLLOUT_ERROR or ROLLOUT_REFUSED.
 */
static int
load_pair(struct aws *a, const struct rollout_opts *o, struct rollgrp *live, struct rollgrp *idle,
    struct rollrec *rec, char **cause)
{
	char		*ln = NULL, *in = NULL;
	const char	*v;
	int		 ret = ROLLOUT_ERROR;

	memset(rec, 0, sizeof *rec);
	memset(live, 0, sizeof *live);
	memset(idle, 0, sizeof *idle);
	if (o->live == NULL && find_pair(a, &ln, &in, cause) != 0)
		goto out;
	if (rollgrp_describe(a, o->version_tag, o->live != NULL ? o->live : ln, live, cause) != 0 ||
	    rollgrp_describe(a, o->version_tag, o->idle != NULL ? o->idle : in, idle, cause) != 0)
		goto out;
	if ((v = idle->rollout != NULL ? idle->rollout : live->rollout) == NULL) {
		set_cause(cause, "no rollout in progress between %s and %s", live->name,
		    idle->name);
		goto out;
	}
	if (rollrec_parse(v, rec) != 0) {
		set_cause(cause, "unreadable %s tag '%s' (see README: a damaged rollout tag)",
		    ROLLGRP_TAG_ROLLOUT, v);
		goto out;
	}
	if (strcmp(rec->live, live->name) != 0 || strcmp(rec->idle, idle->name) != 0) {
		set_cause(cause, "the rollout in progress is from %s to %s, not from %s to %s",
		    rec->live, rec->idle, live->name, idle->name);
		ret = ROLLOUT_REFUSED;
		goto out;
	}
	ret = ROLLOUT_OK;
out:
	free(ln);
	free(in);
	return ret;
}

/* One rollout being driven: its record, its history entry, its alarms and steps. */
struct run {
	struct aws			*a;
	const struct rollout_opts	*o;
	struct rollrec			 rec;
	struct history			 hist;
	char				*alarms;	/* comma-separated, or NULL */
	int				 pct[HISTORY_STEPS];
	size_t				 npct;
	int				 old_unhealthy;	/* last seen, for the warning */
	int				 idle_lowered;	/* its capacity said, or 0 */
};

static void
run_clear(struct run *r)
{
	rollrec_clear(&r->rec);
	history_clear(&r->hist);
	free(r->alarms);
	r->alarms = NULL;
}

/* -1: nothing written; -2: the new group's copy only (the one a rerun resumes from). */
static int
save_record(struct run *r, char **cause)
{
	const char	*kv[1][2];
	char		*tag = rollrec_encode(&r->rec);
	int		 ret;

	kv[0][0] = ROLLGRP_TAG_ROLLOUT;
	kv[0][1] = tag;
	/* The new group's copy first: the one read back (load_pair). */
	if (rollgrp_set_tags(r->a, r->rec.idle, kv, 1, 0, cause) != 0)
		ret = -1;
	else
		ret = rollgrp_set_tags(r->a, r->rec.live, kv, 1, 0, cause) != 0 ? -2 : 0;
	free(tag);
	return ret;
}

/* The history entry lives on the group the version went to. */
static int
save_history(struct run *r, char **cause)
{
	const char	*kv[1][2];
	char		*key, *value;
	int		 ret;

	key = xasprintf(HISTORY_PREFIX "%lld", r->hist.started);
	value = history_encode(&r->hist);
	kv[0][0] = key;
	kv[0][1] = value;
	ret = rollgrp_set_tags(r->a, r->rec.idle, kv, 1, 0, cause);
	free(key);
	free(value);
	return ret;
}

/*
 * A start that could not record its rollout takes its "running" entry back, so
 * that its retries leave none (a resume writes a lost one again).
 */
static void
drop_history(struct run *r)
{
	char	*key, *err = NULL;

	key = xasprintf(HISTORY_PREFIX "%lld", r->hist.started);
	if (rollgrp_delete_tag(r->a, r->rec.idle, key, &err) != 0) {
		log_warn("%s: history entry %s left (%s)", r->rec.idle, key, err);
		free(err);
	}
	free(key);
}

/* The record's step plan: 0, or -1 when the steps list does not parse. */
static int
run_plan(struct run *r, char **cause)
{
	if (rollrec_steps(r->rec.steps, r->pct, &r->npct, cause) != 0)
		return -1;
	if (r->rec.nsteps != (r->npct == 0 ? 1 : 2 * (int)r->npct))
		return set_cause(cause, "the rollout tag's steps do not match its step count");
	return 0;
}

/* Continue a recorded rollout: its alarms and history entry come from the idle group. */
static int
run_resume(struct run *r, struct rollgrp *idle, char **cause)
{
	size_t	i;

	if (run_plan(r, cause) != 0)
		return -1;
	if (idle->alarms != NULL && *idle->alarms != '\0')
		r->alarms = xstrdup(idle->alarms);
	for (i = 0; i < idle->nhist; i++) {
		if (idle->hist[i].started == r->rec.hist) {
			r->hist = idle->hist[i];
			memset(&idle->hist[i], 0, sizeof idle->hist[i]);
			return 0;
		}
	}
	/* The entry was lost (or never written): start it again. */
	r->hist.started = r->rec.hist;
	r->hist.version = xstrdup(r->rec.version);
	r->hist.outcome = xstrdup("running");
	r->hist.from = xstrdup(r->rec.live);
	r->hist.to = xstrdup(r->rec.idle);
	return 0;
}

/* Share pct of size, at least one instance. */
static int
share(int pct, int size)
{
	int	n = (pct * size + 99) / 100;

	return n < 1 ? 1 : (n > size ? size : n);
}

/* Step k's capacity of the new group and the number of old instances in Standby. */
static void
step_targets(const struct run *r, int k, int *idle_want, int *standby_want)
{
	int	n = (int)r->npct, size = r->rec.size;

	if (n == 0) {
		*idle_want = *standby_want = size;
	} else if (k <= n) {
		*idle_want = share(r->pct[k - 1], size);
		*standby_want = 0;
	} else {
		*idle_want = size;
		*standby_want = share(r->pct[k - n - 1], size);
	}
}

/*
 * Tell the instances about to launch how many they are (PACE_TAG_SCALE_OUT),
 * so they spread their first Auto Scaling calls over the bucket's refill;
 * the step deletes the tag once they are healthy.
 */
static int
announce(struct run *r, const struct rollgrp *g, int count)
{
	const char	*kv[1][2];
	char		 v[64], *err = NULL;

	(void)snprintf(v, sizeof v, "%d %lld", count, (long long)wall_now());
	kv[0][0] = PACE_TAG_SCALE_OUT;
	kv[0][1] = v;
	/* Only a saving of the fleet's quota: the step goes on without it. */
	if (rollgrp_set_tags(r->a, g->name, kv, 1, 1, &err) != 0) {
		log_warn("%s: scale-out not announced (%s)", g->name, err);
		free(err);
		return 0;
	}
	return 1;
}

/* Scale the new group to the step's share, wait for its health, then Standby the old. */
static int
do_step(struct run *r, char **cause)
{
	struct rollgrp	g;
	char		*err = NULL;
	int		idle_want, standby_want, moved, n, lo, ret = ROLLOUT_ERROR;
	int		announced = 0, healthy = 0;

	step_targets(r, r->rec.step, &idle_want, &standby_want);
	memset(&g, 0, sizeof g);
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.idle, &g, cause) != 0)
		goto out;
	if (g.desired < idle_want) {
		announced = announce(r, &g, idle_want - g.desired);
		if (rollgrp_set_capacity(r->a, &g, -1, idle_want, cause) != 0)
			goto out;
		progress(r->o, "%s: desired capacity %d (step %d of %d)", g.name, idle_want,
		    r->rec.step, r->rec.nsteps);
	}
	ret = wait_healthy(r->a, r->o, g.name, idle_want, &g, r->alarms, &healthy, cause);
	if (ret != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	/* Never more old instances parked than new ones serve (its own scaling lowered it). */
	if (healthy < standby_want) {
		progress(r->o, "%s: %d healthy of the %d planned: %d old instances in Standby, "
		    "not %d", g.name, healthy, idle_want, healthy, standby_want);
		standby_want = healthy;
	}
	/* Its instances are in: later launches (replacements, scaling) are not its crowd. */
	if (announced && rollgrp_delete_tag(r->a, g.name, PACE_TAG_SCALE_OUT, &err) != 0)
		log_warn("%s: tag %s left (%s)", g.name, PACE_TAG_SCALE_OUT, err);
	rollgrp_clear(&g);
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.live, &g, cause) != 0)
		goto out;
	/* Those still draining are parked already: a rerun must not park another share. */
	n = rollgrp_count_state(&g, "Standby") + rollgrp_count_state(&g, "EnteringStandby");
	if (n < standby_want) {
		/* EnterStandby may not take the desired capacity below MinSize. */
		lo = g.desired - (standby_want - n) < 0 ? 0 : g.desired - (standby_want - n);
		if (lo < g.min) {
			/* Recorded before it is lowered (a record from before min=), for the rollback. */
			if (r->rec.min < 0) {
				r->rec.min = g.min;
				if (save_record(r, cause) != 0)
					goto out;
			}
			/* MinSize alone: the group's own scaling may move desired meanwhile. */
			if (rollgrp_set_capacity(r->a, &g, lo, -1, cause) != 0)
				goto out;
		}
		if (rollgrp_standby(r->a, &g, "EnterStandby", "InService", standby_want - n, &moved,
		    cause) != 0)
			goto out;
		progress(r->o, "%s: %d instances put in Standby (kept for a rollback)", g.name,
		    moved);
	}
	ret = ROLLOUT_OK;
out:
	rollgrp_clear(&g);
	free(err);
	return ret;
}

/*
 * ROLLOUT_FAILED when the new group has fewer healthy instances than the step
 * wants (want -1: the old group's size), or than its capacity when its own
 * scaling has lowered that since.
 */
static int
check_new(struct run *r, int want, char **cause)
{
	struct rollgrp	 g;
	const char	*bad = NULL, *why = NULL;
	size_t		 i, healthy;
	int		 ret = ROLLOUT_ERROR, asked, tries = 0, w = want;

	memset(&g, 0, sizeof g);
again:
	want = w;
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.idle, &g, cause) != 0 ||
	    rollgrp_target_health(r->a, &g, cause) != 0)
		goto out;
	asked = want < 0 ? r->rec.size : want;
	if ((want = lowered(&g, asked)) != asked && g.desired != r->idle_lowered)
		progress(r->o, "%s: desired capacity %d by its own scaling (the rollout asked "
		    "%d)", g.name, g.desired, asked);
	r->idle_lowered = want != asked ? g.desired : 0;
	ret = ROLLOUT_OK;
	if ((int)(healthy = rollgrp_count_healthy(&g)) >= want)
		goto out;
	/*
	 * The group and its targets are two reads: a scale-in between them shows
	 * its instance deregistered before the lower desired capacity. Read again.
	 */
	if (tries++ == 0) {
		rollgrp_clear(&g);
		memset(&g, 0, sizeof g);
		sleep_for(1, r->o->halt);
		goto again;
	}
	for (i = 0; i < g.ninst && bad == NULL; i++) {
		if (strcmp(g.inst[i].state, "InService") != 0)
			why = g.inst[i].state;
		else if (g.inst[i].health == NULL || strcmp(g.inst[i].health, "healthy") != 0)
			why = g.inst[i].health != NULL ? g.inst[i].health : "unknown";
		if (why != NULL)
			bad = g.inst[i].id;
	}
	if (bad != NULL)
		set_cause(cause, "%s: only %zu of %d new instances healthy behind "
		    "the load balancers (%s is %s)", g.name, healthy, want, bad, why);
	else
		set_cause(cause, "%s: only %zu of %d new instances healthy behind "
		    "the load balancers", g.name, healthy, want);
	ret = ROLLOUT_FAILED;
out:
	rollgrp_clear(&g);
	return ret;
}

/*
 * The old group's serving instances, watched too: their trouble is not the new
 * version's, so it is said (when it changes), not rolled back.
 */
static int
check_old(struct run *r, char **cause)
{
	struct rollgrp	g;
	size_t		i;
	int		bad = 0;

	memset(&g, 0, sizeof g);
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.live, &g, cause) != 0 ||
	    rollgrp_target_health(r->a, &g, cause) != 0) {
		rollgrp_clear(&g);
		return ROLLOUT_ERROR;
	}
	for (i = 0; i < g.ninst; i++) {
		bad += strcmp(g.inst[i].state, "InService") == 0 && (g.inst[i].health == NULL ||
		    (strcmp(g.inst[i].health, "healthy") != 0 &&
		    strcmp(g.inst[i].health, ROLLGRP_NO_LB) != 0));
	}
	if (bad != r->old_unhealthy)
		progress(r->o, "%s: %d serving instances of the old version not healthy", g.name,
		    bad);
	r->old_unhealthy = bad;
	rollgrp_clear(&g);
	return ROLLOUT_OK;
}

/* Hold the step for the rest of its bake, watching the alarms and both groups' health. */
static int
bake(struct run *r, char **cause)
{
	double	left;
	int	idle_want, standby_want, ret;

	step_targets(r, r->rec.step, &idle_want, &standby_want);
	for (;;) {
		/* Checked at least once, even when the bake ran out while nobody watched. */
		if ((ret = check_alarms(r->a, r->alarms, cause)) != ROLLOUT_OK ||
		    (ret = check_new(r, idle_want, cause)) != ROLLOUT_OK ||
		    (ret = check_old(r, cause)) != ROLLOUT_OK)
			return ret;
		left = (double)r->rec.since + r->rec.bake - wall_now();
		if (left <= 0)
			return ROLLOUT_OK;
		if (halt_stopped(r->o->halt)) {
			set_cause(cause, "stopped during the bake of step %d", r->rec.step);
			return ROLLOUT_ERROR;
		}
		sleep_for(left < r->o->poll ? left : r->o->poll, r->o->halt);
	}
}

static void
set_phase(struct run *r, const char *phase)
{
	free(r->rec.phase);
	r->rec.phase = xstrdup(phase);
}

/* Record phase before acting on it (a rerun then knows), unless it is recorded already. */
static int
enter_phase(struct run *r, const char *phase, char **cause)
{
	if (strcmp(r->rec.phase, phase) == 0)
		return 0;
	set_phase(r, phase);
	return save_record(r, cause);
}

/*
 * Run the current step to the end of its bake, then advance more steps. Every
 * change is recorded before the next action, so a rerun continues from it.
 */
static int
drive(struct run *r, int advance, char **cause)
{
	int	ret;

	if (strcmp(r->rec.phase, "rolling-back") == 0) {
		set_cause(cause, "a rollback was under way");
		return ROLLOUT_FAILED;
	}
	if (strcmp(r->rec.phase, "finishing") == 0) {
		set_cause(cause, "the rollout of %s is finishing: run 'asg-agent rollout finish' "
		    "again", r->rec.version);
		return ROLLOUT_REFUSED;
	}
	for (;;) {
		if (strcmp(r->rec.phase, "scaling") == 0) {
			if (r->hist.nsteps < (size_t)r->rec.step ||
			    r->hist.begin[r->rec.step - 1] < 0) {
				history_mark(&r->hist, r->rec.step - 1, 0, (long long)wall_now());
				if (save_history(r, cause) != 0)
					return ROLLOUT_ERROR;
			}
			if ((ret = do_step(r, cause)) != ROLLOUT_OK)
				return ret;
			set_phase(r, "baking");
			r->rec.since = (long long)wall_now();
			if (save_record(r, cause) != 0)
				return ROLLOUT_ERROR;
		}
		if (strcmp(r->rec.phase, "baking") == 0) {
			progress(r->o, "step %d of %d: baking %d s%s%s", r->rec.step,
			    r->rec.nsteps, r->rec.bake, r->alarms != NULL ? ", watching " : "",
			    r->alarms != NULL ? r->alarms : "");
			if ((ret = bake(r, cause)) != ROLLOUT_OK)
				return ret;
			set_phase(r, r->rec.step == r->rec.nsteps ? "switched" : "baked");
			history_mark(&r->hist, r->rec.step - 1, 1, (long long)wall_now());
			if (save_record(r, cause) != 0 || save_history(r, cause) != 0)
				return ROLLOUT_ERROR;
			progress(r->o, "step %d of %d done", r->rec.step, r->rec.nsteps);
		}
		if (strcmp(r->rec.phase, "switched") == 0) {
			progress(r->o, "switched: %s serves %s; %s is in Standby. Next: "
			    "'asg-agent rollout finish' or 'asg-agent rollout rollback'",
			    r->rec.idle, r->rec.version, r->rec.live);
			return ROLLOUT_OK;
		}
		if (advance-- <= 0) {
			progress(r->o, "waiting for approval: 'asg-agent rollout step' runs step "
			    "%d of %d ('asg-agent rollout rollback' goes back)", r->rec.step + 1,
			    r->rec.nsteps);
			return ROLLOUT_OK;
		}
		r->rec.step++;
		set_phase(r, "scaling");
		r->rec.since = 0;
		if (save_record(r, cause) != 0)
			return ROLLOUT_ERROR;
	}
}

/* The rollout is over: record its outcome and remove its tags. */
static int
end_rollout(struct run *r, const char *outcome, char **cause)
{
	free(r->hist.outcome);
	r->hist.outcome = xstrdup(outcome);
	if (save_history(r, cause) != 0 ||
	    rollgrp_delete_tag(r->a, r->rec.live, ROLLGRP_TAG_ROLLOUT, cause) != 0 ||
	    rollgrp_delete_tag(r->a, r->rec.idle, ROLLGRP_TAG_ROLLOUT, cause) != 0)
		return -1;
	if (r->alarms != NULL &&
	    rollgrp_delete_tag(r->a, r->rec.idle, ROLLGRP_TAG_ALARMS, cause) != 0)
		return -1;
	return 0;
}

/*
 * Old instances back from Standby, the old group back to its size and
 * MinSize and healthy, then the new group to 0.
 */
static int
roll_back(struct run *r, char **cause)
{
	struct rollgrp	live, idle;
	int		ret = ROLLOUT_ERROR, moved, early, want, healthy;

	memset(&live, 0, sizeof live);
	memset(&idle, 0, sizeof idle);
	if (strcmp(r->rec.phase, "finishing") == 0) {
		set_cause(cause, "the rollout of %s is finishing (%s is on its way out): run "
		    "'asg-agent rollout finish' again", r->rec.version, r->rec.live);
		return ROLLOUT_REFUSED;
	}
	/* Recorded first: a rerun of start or step then goes on back, never forward. */
	if (enter_phase(r, "rolling-back", cause) != 0)
		goto out;
	/* Those parked earlier serve again at once; those still draining once they can. */
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.live, &live, cause) != 0 ||
	    rollgrp_standby(r->a, &live, "ExitStandby", "Standby", INT_MAX, &early,
	    cause) != 0)
		goto out;
	if ((ret = settle_standby(r->a, r->o, r->rec.live, &live, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	if (rollgrp_standby(r->a, &live, "ExitStandby", "Standby", INT_MAX, &moved, cause) != 0)
		goto out;
	moved += early;
	if (moved > 0)
		progress(r->o, "%s: %d instances back from Standby", live.name, moved);
	rollgrp_clear(&live);
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.live, &live, cause) != 0)
		goto out;
	/* Its recorded size, even when Standby instances were lost on the way. */
	want = live.desired > r->rec.size ? live.desired : r->rec.size;
	if ((want != live.desired || (r->rec.min >= 0 && live.min != r->rec.min)) &&
	    rollgrp_set_capacity(r->a, &live, r->rec.min, want, cause) != 0)
		goto out;
	/* The old instances must serve again before the new ones go. */
	ret = wait_healthy(r->a, r->o, live.name, want, NULL, NULL, &healthy, cause);
	if (ret != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	if (rollgrp_describe(r->a, r->o->version_tag, r->rec.idle, &idle, cause) != 0 ||
	    rollgrp_set_capacity(r->a, &idle, -1, 0, cause) != 0)
		goto out;
	progress(r->o, "%s: scaled to 0", idle.name);
	if (end_rollout(r, "rolled-back", cause) != 0)
		goto out;
	progress(r->o, "rolled back: %s is live again", live.name);
	ret = ROLLOUT_OK;
out:
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

/* drive(), and when a guard fires, the automatic rollback; exit 4 says why and where. */
static int
drive_guarded(struct run *r, int advance, char **cause)
{
	char	*why, *err = NULL;
	int	 ret;

	if ((ret = drive(r, advance, cause)) != ROLLOUT_FAILED)
		return ret;
	if (strcmp(r->rec.phase, "rolling-back") == 0)
		why = xasprintf("%s (step %d of %d)", *cause, r->rec.step, r->rec.nsteps);
	else
		why = xasprintf("%s during step %d of %d (%s)", *cause, r->rec.step,
		    r->rec.nsteps, strcmp(r->rec.phase, "baking") == 0 ? "bake" : "scaling");
	progress(r->o, "%s: rolling back", why);
	if ((ret = roll_back(r, &err)) != ROLLOUT_OK)
		set_cause(cause, "%s; the rollback failed: %s", why, err);
	else {
		set_cause(cause, "%s: rolled back, %s serves again", why, r->rec.live);
		ret = ROLLOUT_FAILED;
	}
	free(why);
	free(err);
	return ret;
}

/* The caller's identity for the history; "unknown" when STS does not say. */
static char *
caller_identity(struct aws *a)
{
	struct aws_result	 res;
	const char		*arn;
	char			*cause = NULL, *s;

	if (aws_call_ok(a, AWS_STS, "GetCallerIdentity", NULL, 0, &res, &cause) != 0 ||
	    (arn = xml_find_text(res.xml, "Arn")) == NULL)
		s = xstrdup("unknown");
	else
		s = xstrdup(arn);
	aws_result_free(&res);
	free(cause);
	return s;
}

/* Whether two lists hold the same names, in any order. */
static int
same_list(char **a, size_t na, char **b, size_t nb)
{
	size_t	i;

	for (i = 0; i < na && na == nb; i++) {
		if (!in_list(b, nb, a[i]))
			return 0;
	}
	return na == nb;
}

/* Both groups behind the same load balancers: else the new one's health says nothing. */
static int
same_load_balancers(const struct rollgrp *live, const struct rollgrp *idle, char **cause)
{
	if (!same_list(live->tgs, live->ntgs, idle->tgs, idle->ntgs))
		return set_cause(cause, "%s and %s are not behind the same target groups (%zu "
		    "and %zu): the new group's health would not be the traffic's", live->name,
		    idle->name, live->ntgs, idle->ntgs);
	if (!same_list(live->lbs, live->nlbs, idle->lbs, idle->nlbs))
		return set_cause(cause, "%s and %s are not behind the same Classic Load "
		    "Balancers (%zu and %zu): the new group's health would not be the "
		    "traffic's", live->name, idle->name, live->nlbs, idle->nlbs);
	return 0;
}

/*
 * The record at its longest (a ten-digit time, the last step, the longest
 * phase) fits a tag, and its names and version read back as they are.
 */
static int
record_fits(const struct rollrec *rec, char **cause)
{
	struct rollrec	 longest = *rec, back;
	char		*v;
	size_t		 len;
	int		 same;

	longest.since = ROLLREC_MAX_TIME;
	longest.step = longest.nsteps;
	longest.phase = (char *)"rolling-back";
	v = rollrec_encode(&longest);
	len = strlen(v);
	/* A space would cut a field short when step, finish or rollback read the tag. */
	same = rollrec_parse(v, &back) == 0 && strcmp(back.version, rec->version) == 0 &&
	    strcmp(back.live, rec->live) == 0 && strcmp(back.idle, rec->idle) == 0 &&
	    strcmp(back.steps, rec->steps) == 0;
	rollrec_clear(&back);
	free(v);
	if (!same)
		return set_cause(cause, "'%s', '%s', '%s' and '%s' do not read back from the %s "
		    "tag: a version, group name or --steps with a space cannot be recorded",
		    rec->version, rec->live, rec->idle, rec->steps, ROLLGRP_TAG_ROLLOUT);
	if (len <= ROLLREC_MAX)
		return 0;
	return set_cause(cause, "the group names and version are too long for the %s tag (%zu "
	    "characters, at most %d)", ROLLGRP_TAG_ROLLOUT, len, ROLLREC_MAX);
}

/* A new rollout: check, then record it (tags) before touching any capacity. */
static int
run_begin(struct run *r, struct rollgrp *live, const struct rollgrp *idle, char **cause)
{
	const struct rollout_opts	*o = r->o;
	const struct rollgrp		*both[2] = { live, idle };
	const char			*sha = o->sha256, *kv[1][2];
	int				 ret, n, saved = 0;

	if (rollrec_steps(o->steps, r->pct, &r->npct, cause) != 0 ||
	    rollalarm_join(o->alarms, o->nalarms, &r->alarms, cause) != 0)
		return ROLLOUT_USAGE;
	if (idle->desired > 0 || idle->ninst > 0) {
		set_cause(cause, "idle group %s is not empty (desired %d, %zu instances)",
		    idle->name, idle->desired, idle->ninst);
		return ROLLOUT_REFUSED;
	}
	if (live->desired == 0) {
		set_cause(cause, "live group %s has no capacity to match", live->name);
		return ROLLOUT_REFUSED;
	}
	/* Reads stop at ROLLGRP_MAX_INSTANCES: a step could never see all it waits for. */
	if (live->desired > ROLLGRP_MAX_INSTANCES) {
		set_cause(cause, "live group %s has %d instances: a rollout reads at most %d",
		    live->name, live->desired, ROLLGRP_MAX_INSTANCES);
		return ROLLOUT_REFUSED;
	}
	/* A step counts, rolls back and finish terminates Standby instances as its own. */
	if ((n = rollgrp_count_state(live, "Standby") +
	    rollgrp_count_state(live, "EnteringStandby")) > 0) {
		set_cause(cause, "live group %s has %d instances in Standby: a rollout would take "
		    "them for its own (ExitStandby or detach them first)", live->name, n);
		return ROLLOUT_REFUSED;
	}
	if (same_load_balancers(live, idle, cause) != 0)
		return ROLLOUT_REFUSED;
	/* Every step reads the balancers' health: a role that may not must fail before a change. */
	if (rollgrp_target_health(r->a, live, cause) != 0) {
		set_cause(cause, "%s: not starting", *cause);
		return ROLLOUT_ERROR;
	}
	/* An alarm already firing would roll back what it did not cause. */
	if ((ret = check_alarms(r->a, r->alarms, cause)) == ROLLOUT_FAILED) {
		set_cause(cause, "%s: not starting", *cause);
		return ROLLOUT_REFUSED;
	}
	if (ret != ROLLOUT_OK)
		return ret;
	if (sha == NULL && (sha = rollhist_digest(both, 2, o->version)) != NULL)
		progress(o, "%s: digest %s from the history", o->version, sha);
	r->rec.version = xstrdup(o->version);
	r->rec.live = xstrdup(live->name);
	r->rec.idle = xstrdup(idle->name);
	r->rec.step = 1;
	r->rec.nsteps = r->npct == 0 ? 1 : 2 * (int)r->npct;
	r->rec.phase = xstrdup("scaling");
	r->rec.size = live->desired;
	r->rec.steps = xstrdup(o->steps != NULL ? o->steps : "-");
	r->rec.bake = (int)o->bake;
	r->rec.hist = (long long)wall_now();
	r->rec.min = live->min;
	if (record_fits(&r->rec, cause) != 0)
		return ROLLOUT_USAGE;
	r->hist.started = r->rec.hist;
	r->hist.version = xstrdup(o->version);
	r->hist.sha256 = sha != NULL ? xstrdup(sha) : NULL;
	r->hist.outcome = xstrdup("running");
	r->hist.from = xstrdup(live->name);
	r->hist.to = xstrdup(idle->name);
	r->hist.by = caller_identity(r->a);
	if (!history_fits(&r->hist)) {
		set_cause(cause, "the version, digest and group %s are too long for the history "
		    "tag (%d characters)", live->name, HISTORY_MAX);
		return ROLLOUT_USAGE;
	}
	/* Record the rollout first: a crash from here on is resumable. */
	if (rollhist_prune(r->a, idle, cause) != 0 || save_history(r, cause) != 0)
		return ROLLOUT_ERROR;
	kv[0][0] = ROLLGRP_TAG_ALARMS;
	kv[0][1] = r->alarms;
	if ((r->alarms != NULL && rollgrp_set_tags(r->a, idle->name, kv, 1, 0, cause) != 0) ||
	    /* Left by a start that crashed before its record: a resume would watch them. */
	    (r->alarms == NULL && idle->alarms != NULL &&
	    rollgrp_delete_tag(r->a, idle->name, ROLLGRP_TAG_ALARMS, cause) != 0) ||
	    (saved = save_record(r, cause)) != 0) {
		/* With the new group's copy written, a rerun resumes the rollout: keep it. */
		if (saved != -2)
			drop_history(r);
		return ROLLOUT_ERROR;
	}
	progress(o, "recorded the rollout of %s from %s to %s in %d steps", o->version,
	    live->name, idle->name, r->rec.nsteps);
	return ROLLOUT_OK;
}

/*
 * The new group's version (and digest) tags, copied to the instances it
 * launches, with its hooks' names, which spare each instance a
 * DescribeLifecycleHooks from the fleet's shared quota.
 */
static int
tag_version(struct run *r, const struct rollgrp *idle, char **cause)
{
	struct lifecycle_tags	 hooks;
	const char		*kv[TAGS_SET_MAX][2];
	char			*err = NULL;
	size_t			 n = 0, i;
	int			 with_sha, ret = -1;

	with_sha = r->hist.sha256 != NULL && *r->o->sha256_tag != '\0';
	kv[n][0] = r->o->version_tag;
	kv[n++][1] = r->rec.version;
	if (with_sha) {
		kv[n][0] = r->o->sha256_tag;
		kv[n++][1] = r->hist.sha256;
	}
	/* Without the hooks' names instances ask for them, as before: not worth failing. */
	if (lifecycle_hook_tags(r->a, r->rec.idle, &hooks, &err) != OUTCOME_OK)
		log_warn("%s: hooks not named in tags (DescribeLifecycleHooks: %s)", r->rec.idle,
		    err);
	/* Without it instances ask for their terminate action every 30 s until it exists. */
	free(err);
	err = NULL;
	if (rollgrp_dereg_tag_of(r->a, idle, &hooks, &err) != 0)
		log_warn("%s: deregistration delay not in tags (%s)", r->rec.idle, err);
	for (i = 0; i < hooks.n; i++) {
		kv[n][0] = hooks.kv[i][0];
		kv[n++][1] = hooks.kv[i][1];
	}
	if (rollgrp_set_tags(r->a, r->rec.idle, kv, n, 1, cause) != 0)
		goto out;
	/* An earlier version's digest would make every new instance fail its check. */
	if (!with_sha && *r->o->sha256_tag != '\0' &&
	    rollgrp_delete_tag(r->a, r->rec.idle, r->o->sha256_tag, cause) != 0)
		goto out;
	if (hooks.ngone > 0 && tags_delete_group(r->a, r->rec.idle, hooks.gone, hooks.ngone,
	    &err) != OUTCOME_OK)
		log_warn("%s: stale hook tags left (DeleteTags: %s)", r->rec.idle, err);
	progress(r->o, "%s: tagged %s=%s%s%s", r->rec.idle, r->o->version_tag, r->rec.version,
	    with_sha ? " with its sha256" : "", hooks.own[0] != NULL || hooks.own[1] != NULL ?
	    " and its lifecycle hooks" : "");
	ret = 0;
out:
	lifecycle_tags_free(&hooks);
	free(err);
	return ret;
}

/* The groups as they are now, for --json. */
static void
final_json(struct run *r, const char *action, int ret, const char *cause)
{
	struct rollgrp		 live, idle;
	const struct rollgrp	*both[2] = { &live, &idle };
	const char		*ln, *in;
	char			*err = NULL;

	if (!r->o->json)
		return;
	memset(&live, 0, sizeof live);
	memset(&idle, 0, sizeof idle);
	ln = r->rec.live != NULL ? r->rec.live : r->o->live;
	in = r->rec.idle != NULL ? r->rec.idle : r->o->idle;
	if (ln != NULL && rollgrp_describe(r->a, r->o->version_tag, ln, &live, &err) == 0)
		rollgrp_target_health(r->a, &live, &err);
	if (in != NULL && rollgrp_describe(r->a, r->o->version_tag, in, &idle, &err) == 0)
		rollgrp_target_health(r->a, &idle, &err);
	summary_json(r->o, action, ret, ret == ROLLOUT_OK ? NULL : cause, both, 2, NULL);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	free(err);
}

int
rollout_start(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp	 live, idle;
	struct run	 r;
	const char	*cur;
	int		 ret = ROLLOUT_ERROR;

	memset(&live, 0, sizeof live);
	memset(&idle, 0, sizeof idle);
	memset(&r, 0, sizeof r);
	r.a = a;
	r.o = o;
	if (rollgrp_describe(a, o->version_tag, o->live, &live, cause) != 0 ||
	    rollgrp_describe(a, o->version_tag, o->idle, &idle, cause) != 0)
		goto out;
	if (live.rollout != NULL || idle.rollout != NULL) {
		cur = idle.rollout != NULL ? idle.rollout : live.rollout;
		/* The same switch again (a CI job rerun after a crash) resumes it. */
		if (rollrec_parse(cur, &r.rec) != 0 || strcmp(r.rec.version, o->version) != 0 ||
		    strcmp(r.rec.live, o->live) != 0 || strcmp(r.rec.idle, o->idle) != 0) {
			set_cause(cause, "a rollout is in progress (%s = '%s'): finish or roll "
			    "it back first", ROLLGRP_TAG_ROLLOUT, cur);
			ret = ROLLOUT_REFUSED;
			goto out;
		}
		if (run_resume(&r, &idle, cause) != 0)
			goto out;
		progress(o, "resuming the rollout of %s (step %d of %d, %s)", o->version,
		    r.rec.step, r.rec.nsteps, r.rec.phase);
	} else if ((ret = run_begin(&r, &live, &idle, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	if (tag_version(&r, &idle, cause) != 0)
		goto out;
	ret = drive_guarded(&r, o->autorun ? INT_MAX : 0, cause);
out:
	final_json(&r, "start", ret, *cause);
	run_clear(&r);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

/* A recorded rollout, for the commands that continue or end it: a ROLLOUT_ code. */
static int
run_load(struct run *r, struct aws *a, const struct rollout_opts *o, struct rollgrp *live,
    struct rollgrp *idle, char **cause)
{
	int	ret;

	memset(r, 0, sizeof *r);
	r->a = a;
	r->o = o;
	if ((ret = load_pair(a, o, live, idle, &r->rec, cause)) != ROLLOUT_OK)
		return ret;
	return run_resume(r, idle, cause) != 0 ? ROLLOUT_ERROR : ROLLOUT_OK;
}

/*
 * step --step K runs step K, resumes it, or finds it done: an approval run
 * twice (a retried CI job) advances the rollout once.
 */
static int
step_wanted(const struct run *r, int *advance, char **cause)
{
	int	want = r->o->step;

	if (want == r->rec.step) {
		*advance = 0;
		if (strcmp(r->rec.phase, "baked") == 0 || strcmp(r->rec.phase, "switched") == 0)
			progress(r->o, "step %d of %d is done already", want, r->rec.nsteps);
		return ROLLOUT_OK;
	}
	if (want == r->rec.step + 1 && strcmp(r->rec.phase, "baked") == 0) {
		*advance = 1;
		return ROLLOUT_OK;
	}
	set_cause(cause, "--step %d: the rollout is at step %d of %d (%s)", want, r->rec.step,
	    r->rec.nsteps, r->rec.phase);
	return ROLLOUT_REFUSED;
}

int
rollout_step(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp	live, idle;
	struct run	r;
	int		ret = ROLLOUT_ERROR, advance;

	if ((ret = run_load(&r, a, o, &live, &idle, cause)) != ROLLOUT_OK)
		goto out;
	/* A rerun after a crash finishes the step it was running; it starts no other. */
	advance = o->autorun ? INT_MAX : strcmp(r.rec.phase, "baked") == 0;
	if (o->step > 0 && (ret = step_wanted(&r, &advance, cause)) != ROLLOUT_OK)
		goto out;
	if (advance == 0 && strcmp(r.rec.phase, "switched") != 0)
		progress(o, "resuming step %d of %d (%s)", r.rec.step, r.rec.nsteps,
		    r.rec.phase);
	ret = drive_guarded(&r, advance, cause);
out:
	final_json(&r, "step", ret, *cause);
	run_clear(&r);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

/*
 * The new group still serves: checked before finish removes the way back
 * (--force: not, for an alarm deleted or stuck since the start).
 */
static int
finish_healthy(struct run *r, char **cause)
{
	int	ret;

	if (r->o->force) {
		progress(r->o, "--force: the alarms and the new group's health not checked");
		return ROLLOUT_OK;
	}
	if ((ret = check_alarms(r->a, r->alarms, cause)) == ROLLOUT_OK)
		ret = check_new(r, -1, cause);
	if (ret == ROLLOUT_FAILED) {
		set_cause(cause, "%s: not finishing (roll back, or wait until it is well)",
		    *cause);
		return ROLLOUT_REFUSED;
	}
	return ret;
}

/* Refused unless every step baked (or, with --force, the last one is baking). */
static int
finish_allowed(struct run *r, char **cause)
{
	double	left = (double)r->rec.since + r->rec.bake - wall_now();

	/* Begun: the old group may be gone already, so only going on is left. */
	if (strcmp(r->rec.phase, "finishing") == 0)
		return ROLLOUT_OK;
	if (strcmp(r->rec.phase, "rolling-back") == 0) {
		set_cause(cause, "a rollback of the rollout of %s is under way: run 'asg-agent "
		    "rollout rollback' again", r->rec.version);
		return ROLLOUT_REFUSED;
	}
	if (strcmp(r->rec.phase, "switched") == 0)
		return finish_healthy(r, cause);
	if (strcmp(r->rec.phase, "baking") == 0 && r->rec.step == r->rec.nsteps) {
		if (!r->o->force) {
			set_cause(cause, "the bake of step %d of %d is still running (%.0f s "
			    "left): wait for it, or 'finish --force'", r->rec.step,
			    r->rec.nsteps, left > 0 ? left : 0);
			return ROLLOUT_REFUSED;
		}
		progress(r->o, "--force: finishing during the bake (%.0f s left)",
		    left > 0 ? left : 0);
		history_mark(&r->hist, r->rec.step - 1, 1, (long long)wall_now());
		return finish_healthy(r, cause);
	}
	set_cause(cause, "the rollout of %s has not switched yet (step %d of %d, %s): run "
	    "'asg-agent rollout step' (or start again), or roll back", r->rec.version,
	    r->rec.step, r->rec.nsteps, r->rec.phase);
	return ROLLOUT_REFUSED;
}

int
rollout_finish(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp		 live, idle;
	const struct rollgrp	*both[2] = { &live, &idle };
	struct run		 r;
	const char		*kv[1][2];
	struct aws_result	 res;
	size_t			 i;
	int			 ret = ROLLOUT_ERROR, floor;

	memset(&res, 0, sizeof res);
	if ((ret = run_load(&r, a, o, &live, &idle, cause)) != ROLLOUT_OK ||
	    (ret = finish_allowed(&r, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	/* Recorded first: a rollback after a part of this would find nothing to go back to. */
	if (enter_phase(&r, "finishing", cause) != 0)
		goto out;
	if (rollgrp_set_capacity(a, &live, -1, 0, cause) != 0)
		goto out;
	if ((ret = settle_standby(a, o, r.rec.live, &live, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	/* Standby instances do not count in the capacity: terminate them explicitly. */
	for (i = 0; i < live.ninst; i++) {
		struct aws_param	p[] = {
			{ "InstanceId", live.inst[i].id },
			{ "ShouldDecrementDesiredCapacity", "false" },
		};

		if (strcmp(live.inst[i].state, "Standby") != 0)
			continue;
		aws_result_free(&res);
		if (aws_call_ok(a, AWS_AUTOSCALING, "TerminateInstanceInAutoScalingGroup", p,
		    nitems(p), &res, cause) != 0)
			goto out;
	}
	progress(o, "%s: scaled to 0 and its Standby instances terminated", live.name);
	/* The floor the old group had goes with the traffic (as far as MaxSize allows). */
	floor = r.rec.min < idle.max ? r.rec.min : idle.max;
	if (floor > idle.min) {
		if (rollgrp_set_capacity(a, &idle, floor, -1, cause) != 0)
			goto out;
		progress(o, "%s: MinSize %d (%s had %d)", idle.name, floor, live.name, r.rec.min);
	}
	kv[0][0] = ROLLGRP_TAG_LIVE;
	kv[0][1] = "true";
	if (rollgrp_set_tags(a, idle.name, kv, 1, 0, cause) != 0)
		goto out;
	kv[0][1] = "false";
	if (rollgrp_set_tags(a, live.name, kv, 1, 0, cause) != 0 ||
	    end_rollout(&r, "finished", cause) != 0)
		goto out;
	progress(o, "finished: %s is live with %s", idle.name, r.rec.version);
	ret = ROLLOUT_OK;
out:
	summary_json(o, "finish", ret, ret == ROLLOUT_OK ? NULL : *cause, both, 2, NULL);
	aws_result_free(&res);
	run_clear(&r);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

int
rollout_rollback(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp	live, idle;
	struct run	r;
	int		ret = ROLLOUT_ERROR;

	if ((ret = run_load(&r, a, o, &live, &idle, cause)) == ROLLOUT_OK)
		ret = roll_back(&r, cause);
	final_json(&r, "rollback", ret, *cause);
	run_clear(&r);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

int
rollout_status(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp		 live, idle;
	const struct rollgrp	*both[2] = { &live, &idle }, *g;
	struct json_object	*doc = NULL;
	struct run		 r;
	double			 left;
	size_t			 i, k;
	int			 ret = ROLLOUT_ERROR;

	if ((ret = run_load(&r, a, o, &live, &idle, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	if (rollgrp_target_health(a, &live, cause) != 0 ||
	    rollgrp_target_health(a, &idle, cause) != 0)
		goto out;
	left = strcmp(r.rec.phase, "baking") == 0 ? (double)r.rec.since + r.rec.bake -
	    wall_now() : 0;
	if (left < 0)
		left = 0;
	doc = json_object_new_object();
	json_object_object_add(doc, "version", json_object_new_string(r.rec.version));
	json_object_object_add(doc, "step", json_object_new_int(r.rec.step));
	json_object_object_add(doc, "steps", json_object_new_int(r.rec.nsteps));
	json_object_object_add(doc, "phase", json_object_new_string(r.rec.phase));
	json_object_object_add(doc, "bake_left", json_object_new_double(left));
	if (!o->json) {
		fprintf(o->out, "rollout of %s: step %d of %d, %s", r.rec.version, r.rec.step,
		    r.rec.nsteps, r.rec.phase);
		if (strcmp(r.rec.phase, "baking") == 0)
			fprintf(o->out, " (%.0f s of the bake left)", left);
		fputc('\n', o->out);
	}
	if (rollalarm_status(a, r.alarms, o->out, o->json ? doc : NULL, cause) != 0)
		goto out;
	ret = ROLLOUT_OK;
	if (o->json) {
		summary_json(o, "status", ret, NULL, both, 2, doc);
		doc = NULL;
		goto out;
	}
	for (k = 0; k < 2; k++) {
		g = both[k];
		fprintf(o->out, "  %s group %s: desired %d, version %s\n", k == 0 ? "old" : "new",
		    g->name, g->desired, g->version != NULL ? g->version : "-");
		for (i = 0; i < g->ninst; i++)
			fprintf(o->out, "    %s  %-14s %s\n", g->inst[i].id, g->inst[i].state,
			    g->inst[i].health != NULL ? g->inst[i].health : "-");
	}
out:
	json_object_put(doc);
	run_clear(&r);
	rollgrp_clear(&live);
	rollgrp_clear(&idle);
	return ret;
}

int
rollout_history(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct rollgrp	g[2];
	struct history	*all = NULL;
	size_t		 n = 0, i, k;
	int		 ret = ROLLOUT_ERROR;

	memset(g, 0, sizeof g);
	/* Without --live, g[0] holds every group's entries (freed with it). */
	if (o->live != NULL) {
		if (rollgrp_describe(a, o->version_tag, o->live, &g[0], cause) != 0 ||
		    rollgrp_describe(a, o->version_tag, o->idle, &g[1], cause) != 0)
			goto out;
	} else if (rollhist_all(a, &g[0].hist, &g[0].nhist, cause) != 0)
		goto out;
	for (k = 0; k < 2; k++) {
		for (i = 0; i < g[k].nhist; i++) {
			all = xrealloc(all, (n + 1) * sizeof *all);
			all[n++] = g[k].hist[i];
		}
	}
	rollhist_print(o->out, o->json, all, n);
	ret = ROLLOUT_OK;
out:
	free(all);	/* the entries still belong to the groups */
	rollgrp_clear(&g[0]);
	rollgrp_clear(&g[1]);
	return ret;
}
