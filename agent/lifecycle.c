/* lifecycle.c - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "lifecycle.h"
#include "util.h"
#include "xml.h"

/* Fill h from a member of DescribeLifecycleHooks' answer, unless an earlier member did. */
static void
take_hook(struct lifecycle_hook *h, const struct xml_node *m)
{
	const char	*t;

	if (h->name != NULL || (t = xml_child_text(m, "LifecycleHookName")) == NULL)
		return;
	h->name = xstrdup(t);
	if ((t = xml_child_text(m, "HeartbeatTimeout")) != NULL)
		h->timeout = atoi(t);
}

enum outcome
lifecycle_find_hooks(struct aws *a, const char *group, struct lifecycle_hook *launch,
    struct lifecycle_hook *terminate, char **cause)
{
	struct aws_param	 p[] = { { "AutoScalingGroupName", group } };
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*t;
	enum outcome		 ret;

	memset(launch, 0, sizeof *launch);
	memset(terminate, 0, sizeof *terminate);
	if ((ret = aws_call(a, AWS_AUTOSCALING, "DescribeLifecycleHooks", p, nitems(p), &res,
	    cause)) != OUTCOME_OK)
		goto out;
	for (m = xml_child(xml_find(res.xml, "LifecycleHooks"), "member"); m != NULL;
	    m = xml_next(m)) {
		if ((t = xml_child_text(m, "LifecycleTransition")) == NULL)
			continue;
		if (strcmp(t, LIFECYCLE_LAUNCHING) == 0)
			take_hook(launch, m);
		else if (strcmp(t, LIFECYCLE_TERMINATING) == 0)
			take_hook(terminate, m);
	}
out:
	aws_result_free(&res);
	return ret;
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
