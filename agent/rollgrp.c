/* rollgrp.c - one Auto Scaling group as a rollout sees it, and the rollout's calls on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "history.h"
#include "lifecycle.h"
#include "log.h"
#include "rollgrp.h"
#include "tags.h"
#include "util.h"
#include "xml.h"

#define ROLLGRP_BATCH		20	/* instance ids per Enter/ExitStandby call */

void
rollgrp_clear(struct rollgrp *g)
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
	for (i = 0; i < g->nlbs; i++)
		free(g->lbs[i]);
	free(g->lbs);
	free(g->name);
	free(g->rollout);
	free(g->live);
	free(g->version);
	free(g->alarms);
	for (i = 0; i < g->nhist; i++)
		history_clear(&g->hist[i]);
	free(g->hist);
	memset(g, 0, sizeof *g);
}

/* Read a group: capacity, instances, target groups, Classic Load Balancers, and our tags. */
int
rollgrp_describe(struct aws *a, const char *version_tag, const char *name,
    struct rollgrp *g, char **cause)
{
	struct aws_param	 p[] = { { "AutoScalingGroupNames.member.1", name } };
	struct aws_result	 res;
	struct xml_node		*m, *n;
	const char		*k, *v;
	int			 ret = -1;

	memset(g, 0, sizeof *g);
	if (aws_call_ok(a, AWS_AUTOSCALING, "DescribeAutoScalingGroups", p, nitems(p), &res,
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
	    g->ninst < ROLLGRP_MAX_INSTANCES; n = xml_next(n)) {
		if ((k = xml_child_text(n, "InstanceId")) == NULL)
			continue;
		g->inst = xrealloc(g->inst, (g->ninst + 1) * sizeof *g->inst);
		g->inst[g->ninst].id = xstrdup(k);
		v = xml_child_text(n, "LifecycleState");
		g->inst[g->ninst].state = xstrdup(v != NULL ? v : "?");
		g->inst[g->ninst].health = NULL;
		g->ninst++;
	}
	for (n = xml_child(xml_child(m, "LoadBalancerNames"), "member"); n != NULL;
	    n = xml_next(n)) {
		g->lbs = xrealloc(g->lbs, (g->nlbs + 1) * sizeof *g->lbs);
		g->lbs[g->nlbs++] = xstrdup(n->text);
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
		if (strcmp(k, ROLLGRP_TAG_ROLLOUT) == 0 && g->rollout == NULL)
			g->rollout = xstrdup(v != NULL ? v : "");
		else if (strcmp(k, ROLLGRP_TAG_LIVE) == 0 && g->live == NULL)
			g->live = xstrdup(v != NULL ? v : "");
		else if (strcmp(k, version_tag) == 0 && g->version == NULL)
			g->version = xstrdup(v != NULL ? v : "");
		else if (strcmp(k, ROLLGRP_TAG_ALARMS) == 0 && g->alarms == NULL)
			g->alarms = xstrdup(v != NULL ? v : "");
		else if (v != NULL && g->nhist < ROLLGRP_MAX_INSTANCES) {
			g->hist = xrealloc(g->hist, (g->nhist + 1) * sizeof *g->hist);
			if (history_parse(k, v, &g->hist[g->nhist]) == 0)
				g->hist[g->nhist++].to = xstrdup(name);
		}
	}
	ret = 0;
out:
	aws_result_free(&res);
	if (ret != 0)
		rollgrp_clear(g);
	return ret;
}

/* One balancer's delay before a deregistered instance is let go: seconds, or -1 and the cause. */
static int
delay_of(struct aws *a, int svc, const char *action, const char *param, const char *name,
    int (*parse)(const struct xml_node *), const char *missing, char **cause)
{
	struct aws_param	p[] = { { param, name } };
	struct aws_result	res;
	int			d = -1;

	if (aws_call_ok(a, svc, action, p, nitems(p), &res, cause) != 0)
		set_cause(cause, "%s: %s", name, *cause);
	else if ((d = parse(res.xml)) < 0)
		set_cause(cause, "%s: no %s", name, missing);
	aws_result_free(&res);
	return d;
}

int
rollgrp_dereg_tag_of(struct aws *a, const struct rollgrp *g, struct lifecycle_tags *t,
    char **cause)
{
	size_t	i;
	int	d, most = -1, ret = -1;

	for (i = 0; i < g->ntgs; i++) {
		if ((d = delay_of(a, AWS_ELBV2, "DescribeTargetGroupAttributes",
		    "TargetGroupArn", g->tgs[i], lifecycle_parse_dereg,
		    "deregistration_delay.timeout_seconds", cause)) < 0)
			goto out;
		most = d > most ? d : most;
	}
	for (i = 0; i < g->nlbs; i++) {
		if ((d = delay_of(a, AWS_ELB, "DescribeLoadBalancerAttributes",
		    "LoadBalancerName", g->lbs[i], lifecycle_parse_draining,
		    "usable ConnectionDraining settings", cause)) < 0)
			goto out;
		most = d > most ? d : most;
	}
	if (most < 0) {
		log_debug("%s: behind no load balancer: no deregistration delay to tag",
		    g->name);
		t->gone[t->ngone++] = LIFECYCLE_TAG_DEREG;
	} else {
		t->own[2] = xasprintf("%d", most);
		t->kv[t->n][0] = LIFECYCLE_TAG_DEREG;
		t->kv[t->n++][1] = t->own[2];
	}
	ret = 0;
out:
	/* A value from before, perhaps larger than now, must not outlive a failed look. */
	if (ret != 0)
		t->gone[t->ngone++] = LIFECYCLE_TAG_DEREG;
	return ret;
}

int
rollgrp_dereg_tag(struct aws *a, const char *name, struct lifecycle_tags *t, char **cause)
{
	struct rollgrp	g;
	int		ret;

	if (rollgrp_describe(a, "", name, &g, cause) != 0) {
		t->gone[t->ngone++] = LIFECYCLE_TAG_DEREG;	/* as for a failed look */
		return -1;
	}
	ret = rollgrp_dereg_tag_of(a, &g, t, cause);
	rollgrp_clear(&g);
	return ret;
}

/* Keep an instance's first state that is not healthy: it counts healthy only behind every balancer. */
static void
note_health(struct rollgrp_inst *in, const char *state)
{
	if (in->health == NULL || strcmp(in->health, "healthy") == 0) {
		free(in->health);
		in->health = xstrdup(state != NULL ? state : "unknown");
	}
}

/* One target group's DescribeTargetHealth answer: its states by instance. */
static void
note_target_group(struct rollgrp *g, const struct xml_node *root)
{
	const struct xml_node	*m;
	const char		*id, *state;
	size_t			 i;

	for (i = 0; i < g->ninst; i++) {
		state = "unregistered";
		for (m = xml_child(xml_find(root, "TargetHealthDescriptions"), "member");
		    m != NULL; m = xml_next(m)) {
			id = xml_child_text(xml_child(m, "Target"), "Id");
			if (id != NULL && strcmp(id, g->inst[i].id) == 0) {
				state = xml_child_text(xml_child(m, "TargetHealth"), "State");
				break;
			}
		}
		note_health(&g->inst[i], state);
	}
}

/* One Classic Load Balancer's DescribeInstanceHealth answer: InService is healthy. */
static void
note_classic(struct rollgrp *g, const struct xml_node *root)
{
	const struct xml_node	*m;
	const char		*id, *state;
	size_t			 i;

	for (i = 0; i < g->ninst; i++) {
		state = "unregistered";
		for (m = xml_child(xml_find(root, "InstanceStates"), "member"); m != NULL;
		    m = xml_next(m)) {
			id = xml_child_text(m, "InstanceId");
			if (id != NULL && strcmp(id, g->inst[i].id) == 0) {
				state = xml_child_text(m, "State");
				break;
			}
		}
		if (state != NULL && strcmp(state, "InService") == 0)
			state = "healthy";
		note_health(&g->inst[i], state);
	}
}

int
rollgrp_target_health(struct aws *a, struct rollgrp *g, char **cause)
{
	struct aws_result	 res;
	size_t			 t, i;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	for (i = 0; i < g->ninst; i++) {
		free(g->inst[i].health);
		g->inst[i].health = g->ntgs + g->nlbs == 0 ? xstrdup(ROLLGRP_NO_LB) : NULL;
	}
	for (t = 0; t < g->ntgs; t++) {
		struct aws_param	p[] = { { "TargetGroupArn", g->tgs[t] } };

		aws_result_free(&res);
		if (aws_call_ok(a, AWS_ELBV2, "DescribeTargetHealth", p, nitems(p), &res,
		    cause) != 0)
			goto out;
		note_target_group(g, res.xml);
	}
	for (t = 0; t < g->nlbs; t++) {
		struct aws_param	p[] = { { "LoadBalancerName", g->lbs[t] } };

		aws_result_free(&res);
		if (aws_call_ok(a, AWS_ELB, "DescribeInstanceHealth", p, nitems(p), &res,
		    cause) != 0)
			goto out;
		note_classic(g, res.xml);
	}
	ret = 0;
out:
	aws_result_free(&res);
	return ret;
}

int
rollgrp_set_tags(struct aws *a, const char *group, const char *const kv[][2], size_t n,
    int propagate, char **cause)
{
	if (tags_set_group(a, group, kv, n, propagate, cause) != OUTCOME_OK)
		return set_cause(cause, "CreateOrUpdateTags: %s", *cause);
	return 0;
}

int
rollgrp_delete_tag(struct aws *a, const char *group, const char *key, char **cause)
{
	if (tags_delete_group(a, group, &key, 1, cause) != OUTCOME_OK)
		return set_cause(cause, "DeleteTags: %s", *cause);
	return 0;
}

/*
 * UpdateAutoScalingGroup: the desired capacity, with MinSize min (-1: lowered
 * only as far as desired needs); desired -1: MinSize alone, the desired
 * capacity left as the group's own scaling has it (AWS raises it to MinSize
 * if it is lower).
 */
int
rollgrp_set_capacity(struct aws *a, const struct rollgrp *g, int min, int desired, char **cause)
{
	struct aws_param	 p[4];
	struct aws_result	 res;
	char			 smin[16], smax[16], sdes[16];
	size_t			 n = 0;
	int			 ret;

	if (desired >= 0 && (min < 0 || min > desired))
		min = g->min < desired ? g->min : desired;
	snprintf(smin, sizeof smin, "%d", min);
	snprintf(smax, sizeof smax, "%d", g->max > desired ? g->max : desired);
	snprintf(sdes, sizeof sdes, "%d", desired);
	p[n++] = (struct aws_param){ "AutoScalingGroupName", g->name };
	p[n++] = (struct aws_param){ "MinSize", smin };
	if (desired >= 0) {
		p[n++] = (struct aws_param){ "MaxSize", smax };
		p[n++] = (struct aws_param){ "DesiredCapacity", sdes };
	}
	ret = aws_call_ok(a, AWS_AUTOSCALING, "UpdateAutoScalingGroup", p, n, &res, cause);
	aws_result_free(&res);
	return ret;
}

/* EnterStandby or ExitStandby for the group's instances in the given state, in batches. */
int
rollgrp_standby(struct aws *a, const struct rollgrp *g, const char *action, const char *from,
    int limit, int *moved, char **cause)
{
	struct aws_param	 p[2 + ROLLGRP_BATCH];
	struct aws_result	 res;
	char			 names[ROLLGRP_BATCH][48];
	size_t			 i, n = 0, np;
	int			 enter = strcmp(action, "EnterStandby") == 0;

	*moved = 0;
	for (i = 0; i <= g->ninst; i++) {
		if (i < g->ninst && strcmp(g->inst[i].state, from) == 0 &&
		    *moved + (int)n < limit) {
			snprintf(names[n], sizeof names[n], "InstanceIds.member.%zu", n + 1);
			p[2 + n].name = names[n];
			p[2 + n].value = g->inst[i].id;
			n++;
		}
		if (n == 0 || (n < ROLLGRP_BATCH && i < g->ninst))
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
		if (aws_call_ok(a, AWS_AUTOSCALING, action, p, np, &res, cause) != 0) {
			aws_result_free(&res);
			return -1;
		}
		aws_result_free(&res);
		*moved += (int)n;
		n = 0;
	}
	return 0;
}

/* How many InService instances of the group are healthy behind all its load balancers. */
size_t
rollgrp_count_healthy(const struct rollgrp *g)
{
	size_t	i, n = 0;

	for (i = 0; i < g->ninst; i++) {
		if (strcmp(g->inst[i].state, "InService") == 0 && g->inst[i].health != NULL &&
		    (strcmp(g->inst[i].health, "healthy") == 0 ||
		    strcmp(g->inst[i].health, ROLLGRP_NO_LB) == 0))
			n++;
	}
	return n;
}

int
rollgrp_count_state(const struct rollgrp *g, const char *state)
{
	size_t	i;
	int	n = 0;

	for (i = 0; i < g->ninst; i++)
		n += strcmp(g->inst[i].state, state) == 0;
	return n;
}

