/* lifecycle.c - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "lifecycle.h"
#include "util.h"
#include "xml.h"

enum outcome
lifecycle_find_hook(struct aws *a, const char *group, const char *transition,
    char **hook, int *heartbeat_timeout, char **cause)
{
	struct aws_param	 p[] = { { "AutoScalingGroupName", group } };
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*t, *name;
	enum outcome		 ret;

	*hook = NULL;
	if ((ret = aws_call(a, AWS_AUTOSCALING, "DescribeLifecycleHooks", p, nitems(p), &res,
	    cause)) != OUTCOME_OK)
		goto out;
	for (m = xml_child(xml_find(res.xml, "LifecycleHooks"), "member"); m != NULL;
	    m = xml_next(m)) {
		t = xml_child_text(m, "LifecycleTransition");
		name = xml_child_text(m, "LifecycleHookName");
		if (t != NULL && name != NULL && strcmp(t, transition) == 0) {
			*hook = xstrdup(name);
			if (heartbeat_timeout != NULL &&
			    (t = xml_child_text(m, "HeartbeatTimeout")) != NULL)
				*heartbeat_timeout = atoi(t);
			break;
		}
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
