/* lifecycle.h - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#ifndef ASG_LIFECYCLE_H
#define ASG_LIFECYCLE_H

#include "outcome.h"

struct aws;

#define LIFECYCLE_LAUNCHING	"autoscaling:EC2_INSTANCE_LAUNCHING"
#define LIFECYCLE_TERMINATING	"autoscaling:EC2_INSTANCE_TERMINATING"

/*
 * Every call returns an enum outcome: OUTCOME_RETRY or OUTCOME_THROTTLED
 * when AWS gave no answer (ask again), OUTCOME_FATAL for a final error.
 */

/* A hook of the group: its name (NULL: none) and its HeartbeatTimeout in seconds. */
struct lifecycle_hook {
	char	*name;
	int	 timeout;
};

/*
 * The group's first launch hook and first terminate hook, from one
 * DescribeLifecycleHooks (a fleet shares its Auto Scaling quota: one call,
 * not one per transition). Names the caller frees; NULL when there is none.
 */
enum outcome lifecycle_find_hooks(struct aws *, const char *group,
	    struct lifecycle_hook *launch, struct lifecycle_hook *terminate, char **);
/* SetInstanceHealth Unhealthy: the ASG replaces the instance. */
enum outcome lifecycle_set_unhealthy(struct aws *, const char *instance_id, char **);
/*
 * CompleteLifecycleAction by instance id; result "CONTINUE" or "ABANDON".
 * This and the heartbeat return OUTCOME_NOT_FOUND when no action is pending
 * (completed elsewhere, or none).
 */
enum outcome lifecycle_complete(struct aws *, const char *group, const char *hook,
	    const char *instance_id, const char *result, char **);
enum outcome lifecycle_heartbeat(struct aws *, const char *group, const char *hook,
	    const char *instance_id, char **);

#endif
