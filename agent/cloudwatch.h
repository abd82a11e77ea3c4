/* cloudwatch.h - the time-to-healthy milestones as CloudWatch metrics, for the fleet's percentiles. */
#ifndef ASG_CLOUDWATCH_H
#define ASG_CLOUDWATCH_H

#include "outcome.h"
#include "state.h"

struct aws;

#define CLOUDWATCH_NAMESPACE	"ASGAgent"

/* Which PutMetricData: the one when serving, or the one when the load balancer counts us healthy. */
enum cloudwatch_put {
	CLOUDWATCH_SERVING,
	CLOUDWATCH_LB_HEALTHY
};

/*
 * One PutMetricData of the milestones that put covers, in seconds from the
 * instance's launch (TimeTo...), plus AgentBootTime (serving) or
 * ServingToLoadBalancerHealthy (healthy), each with the dimension
 * AutoScalingGroupName = group. OUTCOME_OK without a call when there is
 * nothing to send.
 */
enum outcome cloudwatch_put(struct aws *, const char *group, const struct state *,
	    enum cloudwatch_put, char **);

#endif
