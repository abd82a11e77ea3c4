/* lifecycle.h - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#ifndef ASG_LIFECYCLE_H
#define ASG_LIFECYCLE_H

struct aws;

#define LIFECYCLE_LAUNCHING	"autoscaling:EC2_INSTANCE_LAUNCHING"
#define LIFECYCLE_TERMINATING	"autoscaling:EC2_INSTANCE_TERMINATING"

enum lifecycle_result {
	LIFECYCLE_ERROR = -1,
	LIFECYCLE_DONE = 0,
	LIFECYCLE_NOT_PENDING = 1,	/* no action pending: completed elsewhere, or none */
	LIFECYCLE_RETRY = 2,		/* no answer (throttled, 5xx, network): ask again */
};

/*
 * The group's first hook for the transition, and its HeartbeatTimeout in
 * seconds (may be NULL); *hook NULL (and 0) when there is none. Returns
 * LIFECYCLE_DONE, LIFECYCLE_RETRY or LIFECYCLE_ERROR.
 */
int	lifecycle_find_hook(struct aws *, const char *group, const char *transition,
	    char **hook, int *heartbeat_timeout, char **);
/* SetInstanceHealth Unhealthy: the ASG replaces the instance. */
int	lifecycle_set_unhealthy(struct aws *, const char *instance_id, char **);
/*
 * CompleteLifecycleAction by instance id; result "CONTINUE" or "ABANDON".
 * This and the heartbeat return a lifecycle_result.
 */
int	lifecycle_complete(struct aws *, const char *group, const char *hook,
	    const char *instance_id, const char *result, char **);
int	lifecycle_heartbeat(struct aws *, const char *group, const char *hook,
	    const char *instance_id, char **);

#endif
