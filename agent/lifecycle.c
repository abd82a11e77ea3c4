/* lifecycle.c - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"
#include "xml.h"

#define LIFECYCLE_NAME_MAX	255
#define LIFECYCLE_NAME_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-"
#define LIFECYCLE_TIMEOUT_MIN	30
#define LIFECYCLE_TIMEOUT_MAX	7200
#define LIFECYCLE_TAG_MAX	256	/* an Auto Scaling tag value's length */

int
lifecycle_dereg_parse(const char *s)
{
	char	*end;
	long	 t;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	t = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || t > LIFECYCLE_DEREG_MAX)
		return -1;
	return (int)t;
}

char *
lifecycle_hook_encode(const struct lifecycle_hook *h)
{
	return xasprintf("%s %d", h->name, h->timeout);
}

int
lifecycle_hook_parse(const char *s, struct lifecycle_hook *h)
{
	const char	*sp;
	size_t		 n;
	long		 t;
	char		*end;

	memset(h, 0, sizeof *h);
	if (s == NULL || (sp = strchr(s, ' ')) == NULL)
		return -1;
	/* The name as CreateLifecycleHook allows it: [A-Za-z0-9/_-]{1,255}. */
	n = sp - s;
	if (n == 0 || n > LIFECYCLE_NAME_MAX || strspn(s, LIFECYCLE_NAME_CHARS) != n)
		return -1;
	if (sp[1] < '0' || sp[1] > '9')
		return -1;
	errno = 0;
	t = strtol(sp + 1, &end, 10);
	if (errno != 0 || *end != '\0' || t < LIFECYCLE_TIMEOUT_MIN || t > LIFECYCLE_TIMEOUT_MAX)
		return -1;
	h->name = xstrndup(s, n);
	h->timeout = (int)t;
	return 0;
}

/*
 * Fill h from a member of DescribeLifecycleHooks' answer, unless an earlier
 * member did: the first hook of a transition, or the one named prefer.
 */
static void
take_hook(struct lifecycle_hook *h, const struct xml_node *m, const char *prefer)
{
	const char	*name, *t;

	if ((name = xml_child_text(m, "LifecycleHookName")) == NULL)
		return;
	if (h->name != NULL && (prefer == NULL || strcmp(name, prefer) != 0 ||
	    strcmp(h->name, prefer) == 0))
		return;
	free(h->name);
	h->name = xstrdup(name);
	h->timeout = (t = xml_child_text(m, "HeartbeatTimeout")) != NULL ? atoi(t) : 0;
}

enum outcome
lifecycle_find_hooks(struct aws *a, const char *group, struct lifecycle_hook *launch,
    struct lifecycle_hook *terminate, char **cause)
{
	return lifecycle_find_named(a, group, NULL, NULL, launch, terminate, cause);
}

enum outcome
lifecycle_find_named(struct aws *a, const char *group, const char *launch_name,
    const char *terminate_name, struct lifecycle_hook *launch,
    struct lifecycle_hook *terminate, char **cause)
{
	struct aws_param	 p[] = { { "AutoScalingGroupName", group } };
	struct aws_result	 res;
	enum outcome		 ret;

	memset(launch, 0, sizeof *launch);
	memset(terminate, 0, sizeof *terminate);
	if ((ret = aws_call(a, AWS_AUTOSCALING, "DescribeLifecycleHooks", p, nitems(p), &res,
	    cause)) == OUTCOME_OK)
		lifecycle_parse_hooks(res.xml, launch_name, terminate_name, launch, terminate);
	aws_result_free(&res);
	return ret;
}

void
lifecycle_parse_hooks(const struct xml_node *root, const char *launch_name,
    const char *terminate_name, struct lifecycle_hook *launch, struct lifecycle_hook *terminate)
{
	struct xml_node	*m;
	const char	*t;

	memset(launch, 0, sizeof *launch);
	memset(terminate, 0, sizeof *terminate);
	for (m = xml_child(xml_find(root, "LifecycleHooks"), "member"); m != NULL;
	    m = xml_next(m)) {
		if ((t = xml_child_text(m, "LifecycleTransition")) == NULL)
			continue;
		if (strcmp(t, LIFECYCLE_LAUNCHING) == 0)
			take_hook(launch, m, launch_name);
		else if (strcmp(t, LIFECYCLE_TERMINATING) == 0)
			take_hook(terminate, m, terminate_name);
	}
}

/*
 * A hook's tag value, or NULL when there is no hook, or its value would not
 * read back or is longer than a tag's 256 characters.
 */
static char *
tag_value(const struct lifecycle_hook *h)
{
	struct lifecycle_hook	 back;
	char			*v;

	if (h->name == NULL)
		return NULL;
	v = lifecycle_hook_encode(h);
	if (strlen(v) > LIFECYCLE_TAG_MAX || lifecycle_hook_parse(v, &back) != 0) {
		log_debug("hook %s (timeout %d): not a tag instances can read", h->name,
		    h->timeout);
		free(v);
		return NULL;
	}
	free(back.name);
	return v;
}

enum outcome
lifecycle_hook_tags(struct aws *a, const char *group, struct lifecycle_tags *t,
    char **cause)
{
	struct lifecycle_hook	h[2];
	const char		*key[2] = { LIFECYCLE_TAG_LAUNCH, LIFECYCLE_TAG_TERMINATE };
	enum outcome		r;
	int			i;

	memset(t, 0, sizeof *t);
	if ((r = lifecycle_find_hooks(a, group, &h[0], &h[1], cause)) != OUTCOME_OK)
		return r;
	for (i = 0; i < 2; i++) {
		/* A tag left from a hook since deleted would cost instances a refused call. */
		if (h[i].name == NULL)
			t->gone[t->ngone++] = key[i];
		else if ((t->own[i] = tag_value(&h[i])) != NULL) {
			t->kv[t->n][0] = key[i];
			t->kv[t->n++][1] = t->own[i];
		}
		free(h[i].name);
	}
	return OUTCOME_OK;
}

int
lifecycle_parse_dereg(const struct xml_node *root)
{
	struct xml_node	*m;
	const char	*k;

	for (m = xml_child(xml_find(root, "Attributes"), "member"); m != NULL; m = xml_next(m))
		if ((k = xml_child_text(m, "Key")) != NULL &&
		    strcmp(k, "deregistration_delay.timeout_seconds") == 0)
			return lifecycle_dereg_parse(xml_child_text(m, "Value"));
	return -1;
}

int
lifecycle_parse_draining(const struct xml_node *root)
{
	const struct xml_node	*d;
	const char		*on;

	d = xml_child(xml_find(root, "LoadBalancerAttributes"), "ConnectionDraining");
	if ((on = xml_child_text(d, "Enabled")) == NULL)
		return -1;
	if (strcmp(on, "false") == 0)
		return 0;	/* deregistered at once */
	if (strcmp(on, "true") != 0)
		return -1;
	return lifecycle_dereg_parse(xml_child_text(d, "Timeout"));
}

void
lifecycle_tags_free(struct lifecycle_tags *t)
{
	if (t == NULL)
		return;
	free(t->own[0]);
	free(t->own[1]);
	free(t->own[2]);
	memset(t, 0, sizeof *t);
}

/* "No active Lifecycle Action found" means the action is already settled. */
static int
not_pending(const struct aws_result *res)
{
	return res->code != NULL && strcmp(res->code, "ValidationError") == 0 &&
	    res->message != NULL && strstr(res->message, "No active Lifecycle Action") != NULL;
}

/* What an aws_call outcome means for a lifecycle action: an error may say "none pending". */
static enum outcome
action_outcome(enum outcome r, const struct aws_result *res)
{
	if (r == OUTCOME_FATAL && not_pending(res))
		return OUTCOME_NOT_FOUND;
	return r;
}

enum outcome
lifecycle_complete(struct aws *a, const char *group, const char *hook,
    const char *instance_id, const char *result, char **cause)
{
	struct aws_param	p[] = {
		{ "AutoScalingGroupName", group },
		{ "LifecycleHookName", hook },
		{ "InstanceId", instance_id },
		{ "LifecycleActionResult", result },
	};
	struct aws_result	res;
	enum outcome		ret;

	ret = action_outcome(aws_call(a, AWS_AUTOSCALING, "CompleteLifecycleAction", p,
	    nitems(p), &res, cause), &res);
	aws_result_free(&res);
	return ret;
}

enum outcome
lifecycle_heartbeat(struct aws *a, const char *group, const char *hook,
    const char *instance_id, char **cause)
{
	struct aws_param	p[] = {
		{ "AutoScalingGroupName", group },
		{ "LifecycleHookName", hook },
		{ "InstanceId", instance_id },
	};
	struct aws_result	res;
	enum outcome		ret;

	ret = action_outcome(aws_call(a, AWS_AUTOSCALING, "RecordLifecycleActionHeartbeat", p,
	    nitems(p), &res, cause), &res);
	aws_result_free(&res);
	return ret;
}

enum outcome
lifecycle_set_unhealthy(struct aws *a, const char *instance_id, char **cause)
{
	struct aws_param	p[] = {
		{ "InstanceId", instance_id },
		{ "HealthStatus", "Unhealthy" },
		{ "ShouldRespectGracePeriod", "false" },
	};
	struct aws_result	res;
	enum outcome		ret;

	ret = aws_call(a, AWS_AUTOSCALING, "SetInstanceHealth", p, nitems(p), &res, cause);
	aws_result_free(&res);
	return ret;
}
