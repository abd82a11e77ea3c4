/* rollout.c - the blue/green switch between two Auto Scaling groups, run from CI. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "aws.h"
#include "halt.h"
#include "rollout.h"
#include "util.h"
#include "xml.h"

#define ROLLOUT_MAX_INSTANCES	500
#define ROLLOUT_BATCH		20	/* instance ids per Enter/ExitStandby call */

struct inst {
	char	*id;
	char	*state;		/* LifecycleState */
	char	*health;	/* target health: healthy, unhealthy, ... or NULL */
};

struct group {
	char		*name;
	int		 min, max, desired;
	struct inst	*inst;
	size_t		 ninst;
	char		**tgs;		/* target group ARNs */
	size_t		 ntgs;
	char		*rollout;	/* the rollout tag's value, or NULL */
	char		*live;		/* the live tag's value, or NULL */
	char		*version;	/* the version tag's value, or NULL */
};

/* What the rollout tag records: "VERSION live=GROUP idle=GROUP step=STEP". */
struct record {
	char	*version;
	char	*live;
	char	*idle;
	char	*step;		/* "scaling" or "switched" */
};

static void
group_clear(struct group *g)
{
	size_t	i;

	if (g == NULL)
		return;
	for (i = 0; i < g->ninst; i++) {
		free(g->inst[i].id);
		free(g->inst[i].state);
		free(g->inst[i].health);
	}
	free(g->inst);
	for (i = 0; i < g->ntgs; i++)
		free(g->tgs[i]);
	free(g->tgs);
	free(g->name);
	free(g->rollout);
	free(g->live);
	free(g->version);
	memset(g, 0, sizeof *g);
}

static void
record_clear(struct record *r)
{
	if (r == NULL)
		return;
	free(r->version);
	free(r->live);
	free(r->idle);
	free(r->step);
	memset(r, 0, sizeof *r);
}

static int
record_parse(const char *s, struct record *r)
{
	char	*copy = xstrdup(s), *w, *save = NULL;
	int	 ret = -1;

	memset(r, 0, sizeof *r);
	for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (strncmp(w, "live=", 5) == 0)
			r->live = xstrdup(w + 5);
		else if (strncmp(w, "idle=", 5) == 0)
			r->idle = xstrdup(w + 5);
		else if (strncmp(w, "step=", 5) == 0)
			r->step = xstrdup(w + 5);
		else if (r->version == NULL)
			r->version = xstrdup(w);
	}
	if (r->version != NULL && r->live != NULL && r->idle != NULL && r->step != NULL)
		ret = 0;
	else
		record_clear(r);
	free(copy);
	return ret;
}

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

/* An Auto Scaling call whose answer we only need to be OK. */
static int
call(struct aws *a, int svc, const char *action, const struct aws_param *p, size_t n,
    struct aws_result *res, char **cause)
{
	if (aws_call(a, svc, action, p, n, res, cause) != OUTCOME_OK)
		return set_cause(cause, "%s: %s", action, *cause);
	return 0;
}

/* Read a group: capacity, instances, target groups, and our tags. */
static int
describe(struct aws *a, const struct rollout_opts *o, const char *name, struct group *g,
    char **cause)
{
	struct aws_param	 p[] = { { "AutoScalingGroupNames.member.1", name } };
	struct aws_result	 res;
	struct xml_node		*m, *n;
	const char		*k, *v;
	int			 ret = -1;

	memset(g, 0, sizeof *g);
	if (call(a, AWS_AUTOSCALING, "DescribeAutoScalingGroups", p, nitems(p), &res,
	    cause) != 0)
		goto out;
	if ((m = xml_child(xml_find(res.xml, "AutoScalingGroups"), "member")) == NULL) {
		set_cause(cause, "no Auto Scaling group named %s", name);
		goto out;
	}
	g->name = xstrdup(name);
	g->min = (v = xml_child_text(m, "MinSize")) != NULL ? atoi(v) : 0;
	g->max = (v = xml_child_text(m, "MaxSize")) != NULL ? atoi(v) : 0;
	g->desired = (v = xml_child_text(m, "DesiredCapacity")) != NULL ? atoi(v) : 0;
	for (n = xml_child(xml_child(m, "Instances"), "member"); n != NULL &&
	    g->ninst < ROLLOUT_MAX_INSTANCES; n = xml_next(n)) {
		if ((k = xml_child_text(n, "InstanceId")) == NULL)
			continue;
		g->inst = xrealloc(g->inst, (g->ninst + 1) * sizeof *g->inst);
		g->inst[g->ninst].id = xstrdup(k);
		v = xml_child_text(n, "LifecycleState");
		g->inst[g->ninst].state = xstrdup(v != NULL ? v : "?");
		g->inst[g->ninst].health = NULL;
		g->ninst++;
	}
	for (n = xml_child(xml_child(m, "TargetGroupARNs"), "member"); n != NULL;
	    n = xml_next(n)) {
		g->tgs = xrealloc(g->tgs, (g->ntgs + 1) * sizeof *g->tgs);
		g->tgs[g->ntgs++] = xstrdup(n->text);
	}
	for (n = xml_child(xml_child(m, "Tags"), "member"); n != NULL; n = xml_next(n)) {
		if ((k = xml_child_text(n, "Key")) == NULL)
			continue;
		v = xml_child_text(n, "Value");
		if (strcmp(k, ROLLOUT_TAG) == 0 && g->rollout == NULL)
			g->rollout = xstrdup(v != NULL ? v : "");
		else if (strcmp(k, ROLLOUT_LIVE) == 0 && g->live == NULL)
			g->live = xstrdup(v != NULL ? v : "");
		else if (strcmp(k, o->version_tag) == 0 && g->version == NULL)
			g->version = xstrdup(v != NULL ? v : "");
	}
	ret = 0;
out:
	aws_result_free(&res);
	if (ret != 0)
		group_clear(g);
	return ret;
}

/* Fill each instance's target health; an instance counts healthy only in every target group. */
static int
target_health(struct aws *a, struct group *g, char **cause)
{
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*id, *state;
	size_t			 t, i;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	for (i = 0; i < g->ninst; i++) {
		free(g->inst[i].health);
		g->inst[i].health = g->ntgs == 0 ? xstrdup("no target group") : NULL;
	}
	for (t = 0; t < g->ntgs; t++) {
		struct aws_param	p[] = { { "TargetGroupArn", g->tgs[t] } };

		aws_result_free(&res);
		if (call(a, AWS_ELBV2, "DescribeTargetHealth", p, nitems(p), &res, cause) != 0)
			goto out;
		for (i = 0; i < g->ninst; i++) {
			state = "unregistered";
			for (m = xml_child(xml_find(res.xml, "TargetHealthDescriptions"),
			    "member"); m != NULL; m = xml_next(m)) {
				id = xml_child_text(xml_child(m, "Target"), "Id");
				if (id != NULL && strcmp(id, g->inst[i].id) == 0) {
					state = xml_child_text(xml_child(m, "TargetHealth"),
					    "State");
					break;
				}
			}
			if (state == NULL)
				state = "unknown";
			/* Keep the first state that is not healthy. */
			if (g->inst[i].health == NULL || strcmp(g->inst[i].health, "healthy") == 0) {
				free(g->inst[i].health);
				g->inst[i].health = xstrdup(state);
			}
		}
	}
	ret = 0;
out:
	aws_result_free(&res);
	return ret;
}

static int
set_tags(struct aws *a, const char *group, const char *const kv[][2], size_t n,
    int propagate, char **cause)
{
	struct aws_param	 p[5 * 4];
	struct aws_result	 res;
	char			 names[5 * 4][64];
	size_t			 i, np = 0;
	int			 ret;

	if (n > 4)
		fatal("set_tags: too many tags");
	for (i = 0; i < n; i++) {
		snprintf(names[np], sizeof names[np], "Tags.member.%zu.ResourceId", i + 1);
		p[np].name = names[np]; p[np++].value = group;
		snprintf(names[np], sizeof names[np], "Tags.member.%zu.ResourceType", i + 1);
		p[np].name = names[np]; p[np++].value = "auto-scaling-group";
		snprintf(names[np], sizeof names[np], "Tags.member.%zu.Key", i + 1);
		p[np].name = names[np]; p[np++].value = kv[i][0];
		snprintf(names[np], sizeof names[np], "Tags.member.%zu.Value", i + 1);
		p[np].name = names[np]; p[np++].value = kv[i][1];
		snprintf(names[np], sizeof names[np], "Tags.member.%zu.PropagateAtLaunch", i + 1);
		p[np].name = names[np]; p[np++].value = propagate ? "true" : "false";
	}
	ret = call(a, AWS_AUTOSCALING, "CreateOrUpdateTags", p, np, &res, cause);
	aws_result_free(&res);
	return ret;
}

static int
delete_tag(struct aws *a, const char *group, const char *key, char **cause)
{
	struct aws_param	p[] = {
		{ "Tags.member.1.ResourceId", group },
		{ "Tags.member.1.ResourceType", "auto-scaling-group" },
		{ "Tags.member.1.Key", key },
	};
	struct aws_result	res;
	int			ret;

	ret = call(a, AWS_AUTOSCALING, "DeleteTags", p, nitems(p), &res, cause);
	aws_result_free(&res);
	return ret;
}

static int
set_capacity(struct aws *a, const struct group *g, int desired, char **cause)
{
	struct aws_param	 p[4];
	struct aws_result	 res;
	char			 smin[16], smax[16], sdes[16];
	int			 ret;

	snprintf(smin, sizeof smin, "%d", g->min < desired ? g->min : desired);
	snprintf(smax, sizeof smax, "%d", g->max > desired ? g->max : desired);
	snprintf(sdes, sizeof sdes, "%d", desired);
	p[0] = (struct aws_param){ "AutoScalingGroupName", g->name };
	p[1] = (struct aws_param){ "MinSize", smin };
	p[2] = (struct aws_param){ "MaxSize", smax };
	p[3] = (struct aws_param){ "DesiredCapacity", sdes };
	ret = call(a, AWS_AUTOSCALING, "UpdateAutoScalingGroup", p, nitems(p), &res, cause);
	aws_result_free(&res);
	return ret;
}

/* EnterStandby or ExitStandby for the group's instances in the given state, in batches. */
static int
standby(struct aws *a, const struct group *g, const char *action, const char *from,
    int *moved, char **cause)
{
	struct aws_param	 p[2 + ROLLOUT_BATCH];
	struct aws_result	 res;
	char			 names[ROLLOUT_BATCH][48];
	size_t			 i, n = 0, np;
	int			 enter = strcmp(action, "EnterStandby") == 0;

	*moved = 0;
	for (i = 0; i <= g->ninst; i++) {
		if (i < g->ninst && strcmp(g->inst[i].state, from) == 0) {
			snprintf(names[n], sizeof names[n], "InstanceIds.member.%zu", n + 1);
			p[2 + n].name = names[n];
			p[2 + n].value = g->inst[i].id;
			n++;
		}
		if (n == 0 || (n < ROLLOUT_BATCH && i < g->ninst))
			continue;
		np = 2 + n;
		p[0] = (struct aws_param){ "AutoScalingGroupName", g->name };
		if (enter)
			p[1] = (struct aws_param){ "ShouldDecrementDesiredCapacity", "true" };
		else {
			/* ExitStandby takes no such flag: shift the ids down. */
			memmove(&p[1], &p[2], n * sizeof p[0]);
			np = 1 + n;
		}
		if (call(a, AWS_AUTOSCALING, action, p, np, &res, cause) != 0) {
			aws_result_free(&res);
			return -1;
		}
		aws_result_free(&res);
		*moved += (int)n;
		n = 0;
	}
	return 0;
}

/* How many InService instances of the group are healthy in all its target groups. */
static size_t
count_healthy(const struct group *g)
{
	size_t	i, n = 0;

	for (i = 0; i < g->ninst; i++) {
		if (strcmp(g->inst[i].state, "InService") == 0 && g->inst[i].health != NULL &&
		    (strcmp(g->inst[i].health, "healthy") == 0 ||
		    strcmp(g->inst[i].health, "no target group") == 0))
			n++;
	}
	return n;
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

/*
 * Wait until want instances of group are InService and healthy. With
 * abandon_check, an instance that disappears or terminates on the way means
 * the new version failed its boot (the agent sent ABANDON).
 */
static int
wait_healthy(struct aws *a, const struct rollout_opts *o, const char *name, int want,
    int abandon_check, char **cause)
{
	struct group	  g;
	char		**seen = NULL, *bad = NULL;
	size_t		  nseen = 0, i, healthy = 0, last = (size_t)-1;
	double		  deadline = mono_now() + o->timeout;
	int		  ret = ROLLOUT_ERROR;

	memset(&g, 0, sizeof g);
	for (;;) {
		group_clear(&g);
		if (describe(a, o, name, &g, cause) != 0 || target_health(a, &g, cause) != 0)
			goto out;
		for (i = 0; i < g.ninst && abandon_check; i++) {
			if (strncmp(g.inst[i].state, "Terminating", 11) == 0 ||
			    strcmp(g.inst[i].state, "Terminated") == 0) {
				bad = xstrdup(g.inst[i].id);
				break;
			}
			if (!in_list(seen, nseen, g.inst[i].id)) {
				seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
				seen[nseen++] = xstrdup(g.inst[i].id);
			}
		}
		for (i = 0; i < nseen && bad == NULL; i++) {
			size_t	j;
			int	found = 0;

			for (j = 0; j < g.ninst; j++)
				found |= strcmp(g.inst[j].id, seen[i]) == 0;
			if (!found)
				bad = xstrdup(seen[i]);
		}
		if (bad != NULL) {
			set_cause(cause, "instance %s of %s was terminated before it turned "
			    "healthy: the new version failed its boot (lifecycle ABANDON)", bad,
			    name);
			ret = ROLLOUT_FAILED;
			goto out;
		}
		healthy = count_healthy(&g);
		if (healthy != last) {
			progress(o, "%s: %zu of %d instances InService and healthy", name,
			    healthy, want);
			last = healthy;
		}
		if ((int)healthy >= want && (int)g.ninst >= want) {
			ret = ROLLOUT_OK;
			goto out;
		}
		if (halt_stopped(o->halt)) {
			set_cause(cause, "stopped while waiting for %s", name);
			goto out;
		}
		if (mono_now() >= deadline) {
			set_cause(cause, "%s: only %zu of %d instances healthy after %.0f s",
			    name, healthy, want, o->timeout);
			ret = ROLLOUT_TIMEOUT;
			goto out;
		}
		sleep_for(o->poll, o->halt);
	}
out:
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	free(bad);
	group_clear(&g);
	return ret;
}

static void
summary_json(const struct rollout_opts *o, const char *action, int code, const char *error,
    const struct group *const *groups, size_t ngroups)
{
	struct json_object	*root, *arr, *jg, *ji, *jis;
	size_t			 i, j;

	if (!o->json)
		return;
	root = json_object_new_object();
	json_object_object_add(root, "action", json_object_new_string(action));
	json_object_object_add(root, "code", json_object_new_int(code));
	json_object_object_add(root, "error", error != NULL ? json_object_new_string(error) : NULL);
	arr = json_object_new_array();
	for (i = 0; i < ngroups; i++) {
		const struct group *g = groups[i];

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

/* The two groups of the rollout in progress, from the rollout tag (or the options). */
static int
load_pair(struct aws *a, const struct rollout_opts *o, struct group *live, struct group *idle,
    struct record *rec, char **cause)
{
	struct aws_param	 p[] = {
		{ "Filters.member.1.Name", "key" },
		{ "Filters.member.1.Values.member.1", ROLLOUT_TAG },
	};
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*v, *first = NULL;
	int			 ret = -1;

	memset(rec, 0, sizeof *rec);
	memset(&res, 0, sizeof res);
	memset(live, 0, sizeof *live);
	memset(idle, 0, sizeof *idle);
	if (o->live == NULL || o->idle == NULL) {
		if (call(a, AWS_AUTOSCALING, "DescribeTags", p, nitems(p), &res, cause) != 0)
			goto out;
		/* Both groups carry the same value; another value is another rollout. */
		for (m = xml_child(xml_find(res.xml, "Tags"), "member"); m != NULL;
		    m = xml_next(m)) {
			if ((v = xml_child_text(m, "Value")) == NULL)
				continue;
			if (first == NULL)
				first = v;
			else if (strcmp(first, v) != 0) {
				set_cause(cause, "several rollouts in progress ('%s', '%s'): name "
				    "one with --live and --idle", first, v);
				goto out;
			}
		}
		if (first == NULL) {
			set_cause(cause, "no rollout in progress (no group has the %s tag)",
			    ROLLOUT_TAG);
			goto out;
		}
		if (record_parse(first, rec) != 0) {
			set_cause(cause, "unreadable %s tag '%s'", ROLLOUT_TAG, first);
			goto out;
		}
	}
	if (describe(a, o, o->live != NULL ? o->live : rec->live, live, cause) != 0 ||
	    describe(a, o, o->idle != NULL ? o->idle : rec->idle, idle, cause) != 0)
		goto out;
	if (rec->version == NULL && idle->rollout != NULL)
		record_parse(idle->rollout, rec);
	ret = 0;
out:
	aws_result_free(&res);
	return ret;
}

int
rollout_start(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct group		 live, idle;
	const struct group	*both[2] = { &live, &idle };
	struct record		 rec;
	const char		*kv[2][2];
	char			*tag = NULL;
	int			 ret = ROLLOUT_ERROR, moved, want;

	memset(&live, 0, sizeof live);
	memset(&idle, 0, sizeof idle);
	memset(&rec, 0, sizeof rec);
	if (describe(a, o, o->live, &live, cause) != 0 || describe(a, o, o->idle, &idle, cause) != 0)
		goto out;
	tag = xasprintf("%s live=%s idle=%s step=scaling", o->version, o->live, o->idle);
	if (live.rollout != NULL || idle.rollout != NULL) {
		const char *cur = idle.rollout != NULL ? idle.rollout : live.rollout;

		/* The same switch again (a CI job rerun after a crash) resumes it. */
		if (record_parse(cur, &rec) != 0 || strcmp(rec.version, o->version) != 0 ||
		    strcmp(rec.live, o->live) != 0 || strcmp(rec.idle, o->idle) != 0) {
			set_cause(cause, "a rollout is in progress (%s = '%s'): finish or roll "
			    "it back first", ROLLOUT_TAG, cur);
			ret = ROLLOUT_REFUSED;
			goto out;
		}
		progress(o, "resuming the rollout of %s (step %s)", o->version, rec.step);
		if (strcmp(rec.step, "switched") == 0) {
			ret = ROLLOUT_OK;
			goto done;
		}
	} else {
		if (idle.desired > 0 || idle.ninst > 0) {
			set_cause(cause, "idle group %s is not empty (desired %d, %zu instances)",
			    idle.name, idle.desired, idle.ninst);
			ret = ROLLOUT_REFUSED;
			goto out;
		}
		if (live.desired == 0) {
			set_cause(cause, "live group %s has no capacity to match", live.name);
			ret = ROLLOUT_REFUSED;
			goto out;
		}
		/* Record the rollout first: a crash from here on is resumable. */
		kv[0][0] = ROLLOUT_TAG;
		kv[0][1] = tag;
		if (set_tags(a, live.name, kv, 1, 0, cause) != 0 ||
		    set_tags(a, idle.name, kv, 1, 0, cause) != 0)
			goto out;
		progress(o, "recorded the rollout of %s from %s to %s", o->version, live.name,
		    idle.name);
	}
	kv[0][0] = o->version_tag;
	kv[0][1] = o->version;
	kv[1][0] = o->sha256_tag;
	kv[1][1] = o->sha256;
	if (set_tags(a, idle.name, kv, o->sha256 != NULL && *o->sha256_tag != '\0' ? 2 : 1, 1,
	    cause) != 0)
		goto out;
	progress(o, "%s: tagged %s=%s%s%s", idle.name, o->version_tag, o->version,
	    o->sha256 != NULL ? " with its sha256" : "", "");
	/* The live group's size when the switch started: Standby ones were taken off it. */
	want = live.desired;
	if (idle.desired < want) {
		if (set_capacity(a, &idle, want, cause) != 0)
			goto out;
		progress(o, "%s: desired capacity %d (as %s)", idle.name, want, live.name);
	} else
		want = idle.desired;
	if ((ret = wait_healthy(a, o, idle.name, want, 1, cause)) != ROLLOUT_OK) {
		if (ret == ROLLOUT_FAILED) {
			char	*err = NULL;

			/* Stop the switch: the live group was never touched. */
			if (set_capacity(a, &idle, 0, &err) != 0 ||
			    delete_tag(a, live.name, ROLLOUT_TAG, &err) != 0 ||
			    delete_tag(a, idle.name, ROLLOUT_TAG, &err) != 0)
				progress(o, "cleaning up after the failure: %s", err);
			else
				progress(o, "%s scaled back to 0; %s untouched", idle.name,
				    live.name);
			free(err);
		}
		goto out;
	}
	group_clear(&live);
	if (describe(a, o, o->live, &live, cause) != 0)
		goto out;
	if (standby(a, &live, "EnterStandby", "InService", &moved, cause) != 0)
		goto out;
	progress(o, "%s: %d instances put in Standby (kept for a rollback)", live.name, moved);
	free(tag);
	tag = xasprintf("%s live=%s idle=%s step=switched", o->version, o->live, o->idle);
	kv[0][0] = ROLLOUT_TAG;
	kv[0][1] = tag;
	if (set_tags(a, live.name, kv, 1, 0, cause) != 0 ||
	    set_tags(a, idle.name, kv, 1, 0, cause) != 0)
		goto out;
	ret = ROLLOUT_OK;
done:
	progress(o, "switched: %s serves %s; %s is in Standby. Next: 'asg-agent rollout "
	    "finish' or 'asg-agent rollout rollback'", o->idle, o->version, o->live);
out:
	if (o->json) {
		group_clear(&live);
		group_clear(&idle);
		if (describe(a, o, o->live, &live, NULL) == 0)
			target_health(a, &live, NULL);
		if (describe(a, o, o->idle, &idle, NULL) == 0)
			target_health(a, &idle, NULL);
		summary_json(o, "start", ret, ret == ROLLOUT_OK ? NULL : *cause, both, 2);
	}
	record_clear(&rec);
	group_clear(&live);
	group_clear(&idle);
	free(tag);
	return ret;
}

int
rollout_finish(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct group		 live, idle;
	const struct group	*both[2] = { &live, &idle };
	struct record		 rec;
	const char		*kv[1][2];
	struct aws_result	 res;
	size_t			 i;
	int			 ret = ROLLOUT_ERROR;

	memset(&res, 0, sizeof res);
	if (load_pair(a, o, &live, &idle, &rec, cause) != 0)
		goto out;
	if (rec.step == NULL || strcmp(rec.step, "switched") != 0) {
		set_cause(cause, "the rollout of %s has not switched yet (step %s): run "
		    "'asg-agent rollout start' again, or roll back", rec.version != NULL ?
		    rec.version : "?", rec.step != NULL ? rec.step : "?");
		ret = ROLLOUT_REFUSED;
		goto out;
	}
	if (set_capacity(a, &live, 0, cause) != 0)
		goto out;
	/* Standby instances do not count in the capacity: terminate them explicitly. */
	for (i = 0; i < live.ninst; i++) {
		struct aws_param	p[] = {
			{ "InstanceId", live.inst[i].id },
			{ "ShouldDecrementDesiredCapacity", "false" },
		};

		if (strcmp(live.inst[i].state, "Standby") != 0)
			continue;
		aws_result_free(&res);
		if (call(a, AWS_AUTOSCALING, "TerminateInstanceInAutoScalingGroup", p, nitems(p),
		    &res, cause) != 0)
			goto out;
	}
	progress(o, "%s: scaled to 0 and its Standby instances terminated", live.name);
	kv[0][0] = ROLLOUT_LIVE;
	kv[0][1] = "true";
	if (set_tags(a, idle.name, kv, 1, 0, cause) != 0)
		goto out;
	kv[0][1] = "false";
	if (set_tags(a, live.name, kv, 1, 0, cause) != 0 ||
	    delete_tag(a, live.name, ROLLOUT_TAG, cause) != 0 ||
	    delete_tag(a, idle.name, ROLLOUT_TAG, cause) != 0)
		goto out;
	progress(o, "finished: %s is live with %s", idle.name, rec.version);
	ret = ROLLOUT_OK;
out:
	if (o->json) {
		summary_json(o, "finish", ret, ret == ROLLOUT_OK ? NULL : *cause, both, 2);
	}
	aws_result_free(&res);
	record_clear(&rec);
	group_clear(&live);
	group_clear(&idle);
	return ret;
}

int
rollout_rollback(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct group		 live, idle;
	const struct group	*both[2] = { &live, &idle };
	struct record		 rec;
	int			 ret = ROLLOUT_ERROR, moved, want;

	if (load_pair(a, o, &live, &idle, &rec, cause) != 0)
		goto out;
	if (standby(a, &live, "ExitStandby", "Standby", &moved, cause) != 0)
		goto out;
	if (moved > 0)
		progress(o, "%s: %d instances back from Standby", live.name, moved);
	group_clear(&live);
	if (describe(a, o, rec.live != NULL ? rec.live : o->live, &live, cause) != 0)
		goto out;
	want = live.desired;
	/* The old instances must serve again before the new ones go. */
	if ((ret = wait_healthy(a, o, live.name, want, 0, cause)) != ROLLOUT_OK)
		goto out;
	ret = ROLLOUT_ERROR;
	if (set_capacity(a, &idle, 0, cause) != 0)
		goto out;
	progress(o, "%s: scaled to 0", idle.name);
	if (delete_tag(a, live.name, ROLLOUT_TAG, cause) != 0 ||
	    delete_tag(a, idle.name, ROLLOUT_TAG, cause) != 0)
		goto out;
	progress(o, "rolled back: %s is live again", live.name);
	ret = ROLLOUT_OK;
out:
	if (o->json)
		summary_json(o, "rollback", ret, ret == ROLLOUT_OK ? NULL : *cause, both, 2);
	record_clear(&rec);
	group_clear(&live);
	group_clear(&idle);
	return ret;
}

int
rollout_status(struct aws *a, const struct rollout_opts *o, char **cause)
{
	struct group		 live, idle;
	const struct group	*both[2] = { &live, &idle }, *g;
	struct record		 rec;
	size_t			 i, k;
	int			 ret = ROLLOUT_ERROR;

	if (load_pair(a, o, &live, &idle, &rec, cause) != 0)
		goto out;
	if (target_health(a, &live, cause) != 0 || target_health(a, &idle, cause) != 0)
		goto out;
	ret = ROLLOUT_OK;
	if (o->json) {
		summary_json(o, "status", ret, NULL, both, 2);
		goto out;
	}
	fprintf(o->out, "rollout of %s: step %s\n", rec.version != NULL ? rec.version : "?",
	    rec.step != NULL ? rec.step : "?");
	for (k = 0; k < 2; k++) {
		g = both[k];
		fprintf(o->out, "  %s group %s: desired %d, version %s\n", k == 0 ? "old" : "new",
		    g->name, g->desired, g->version != NULL ? g->version : "-");
		for (i = 0; i < g->ninst; i++)
			fprintf(o->out, "    %s  %-14s %s\n", g->inst[i].id, g->inst[i].state,
			    g->inst[i].health != NULL ? g->inst[i].health : "-");
	}
out:
	record_clear(&rec);
	group_clear(&live);
	group_clear(&idle);
	return ret;
}
