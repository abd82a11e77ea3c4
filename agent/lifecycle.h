/* lifecycle.h - Auto Scaling lifecycle hooks: find them, heartbeat, complete them. */
#ifndef ASG_LIFECYCLE_H
#define ASG_LIFECYCLE_H

#include <stddef.h>

#include "outcome.h"

struct aws;
struct xml_node;

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
 * Group tags (PropagateAtLaunch) that name the group's hooks, "NAME TIMEOUT":
 * `rollout start` and `publish --tag-group` write them so that instances
 * learn their hooks from their own tags, not one DescribeLifecycleHooks each
 * from the fleet's shared quota.
 */
#define LIFECYCLE_TAG_LAUNCH	"asg-agent:launch-hook"
#define LIFECYCLE_TAG_TERMINATE	"asg-agent:terminate-hook"

/*
 * Group tag (PropagateAtLaunch): the longest deregistration delay of the
 * group's target groups and connection-draining timeout of its Classic Load
 * Balancers, in seconds. AWS registers a terminate action only
 * once the load balancers have deregistered the instance, so a heartbeat
 * sent before then finds none: an instance told the delay waits it out
 * rather than asking every 30 s, which at a scale-in of hundreds is more
 * than the account's Auto Scaling bucket refills.
 */
#define LIFECYCLE_TAG_DEREG	"asg-agent:deregistration-delay"
#define LIFECYCLE_DEREG_MAX	3600

/* Such a tag's value: 0 to LIFECYCLE_DEREG_MAX seconds, digits only; else -1. */
int	 lifecycle_dereg_parse(const char *);
/* A hook as such a tag's value (caller frees). */
char	*lifecycle_hook_encode(const struct lifecycle_hook *);
/*
 * A tag's value back: 0 and h filled (name the caller frees), or -1 for
 * anything but a valid hook name, one space and a HeartbeatTimeout of
 * 30 to 7200 s.
 */
int	 lifecycle_hook_parse(const char *, struct lifecycle_hook *h);
/* A group's hook tags as AWS has its hooks now, for a caller about to tag the group. */
struct lifecycle_tags {
	const char	*kv[3][2];	/* { key, value } pairs to set */
	size_t		 n;
	const char	*gone[3];	/* keys of what the group no longer has, to delete */
	size_t		 ngone;
	char		*own[3];	/* the values */
};
/* From one DescribeLifecycleHooks; lifecycle_tags_free frees it (also after an error). */
enum outcome lifecycle_hook_tags(struct aws *, const char *group, struct lifecycle_tags *,
	    char **);
/* The parser of one DescribeTargetGroupAttributes answer: the delay, or -1. */
int	 lifecycle_parse_dereg(const struct xml_node *);
/* The same for a Classic Load Balancer's DescribeLoadBalancerAttributes: 0 when draining is off. */
int	 lifecycle_parse_draining(const struct xml_node *);
void	lifecycle_tags_free(struct lifecycle_tags *);
/*
 * The group's first launch hook and first terminate hook, from one
 * DescribeLifecycleHooks (a fleet shares its Auto Scaling quota: one call,
 * not one per transition). Names the caller frees; NULL when there is none.
 */
enum outcome lifecycle_find_hooks(struct aws *, const char *group,
	    struct lifecycle_hook *launch, struct lifecycle_hook *terminate, char **);
/* The same, but a hook of that transition with the given name (if any) wins over the first. */
enum outcome lifecycle_find_named(struct aws *, const char *group, const char *launch_name,
	    const char *terminate_name, struct lifecycle_hook *launch,
	    struct lifecycle_hook *terminate, char **);
/* The parser of that answer, exported for the unit tests. */
void	lifecycle_parse_hooks(const struct xml_node *, const char *launch_name,
	    const char *terminate_name, struct lifecycle_hook *launch,
	    struct lifecycle_hook *terminate);
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
