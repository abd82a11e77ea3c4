/* rollgrp.h - one Auto Scaling group as a rollout sees it, and the rollout's calls on it. */
#ifndef ASG_ROLLGRP_H
#define ASG_ROLLGRP_H

#include <stddef.h>

struct aws;
struct history;

/* The tags a rollout keeps on its groups. */
#define ROLLGRP_TAG_ROLLOUT	"asg-agent:rollout"	/* the record (rollrec) */
#define ROLLGRP_TAG_LIVE	"asg-agent:live"
/* The --alarm names, comma-separated. */
#define ROLLGRP_TAG_ALARMS	"asg-agent:rollout-alarms"

#define ROLLGRP_MAX_INSTANCES	500	/* instances (and history entries) read of a group */
/* The health of every instance of a group behind no load balancer. */
#define ROLLGRP_NO_LB		"no load balancer"

struct rollgrp_inst {
	char	*id;
	char	*state;		/* LifecycleState */
	char	*health;	/* load balancers' view: healthy, unhealthy, ... or NULL */
};

struct rollgrp {
	char			*name;
	int			 min, max, desired;
	struct rollgrp_inst	*inst;
	size_t			 ninst;
	char			**tgs;		/* target group ARNs */
	size_t			 ntgs;
	char			**lbs;		/* Classic Load Balancer names */
	size_t			 nlbs;
	char			*rollout;	/* the rollout tag's value, or NULL */
	char			*live;		/* the live tag's value, or NULL */
	char			*version;	/* the version tag's value, or NULL */
	char			*alarms;	/* the alarms tag's value, or NULL */
	struct history		*hist;		/* past rollouts onto this group */
	size_t			 nhist;
};

void	rollgrp_clear(struct rollgrp *);
/*
 * Capacity, instances, target groups, Classic Load Balancers, and the tags:
 * ours, version_tag and the history.
 */
int	rollgrp_describe(struct aws *, const char *version_tag, const char *name,
	    struct rollgrp *, char **);
/*
 * Each instance's health in every target group (DescribeTargetHealth) and
 * every Classic Load Balancer (DescribeInstanceHealth), the first that is not
 * healthy; ROLLGRP_NO_LB for a group behind none.
 */
int	rollgrp_target_health(struct aws *, struct rollgrp *, char **);
/*
 * Add LIFECYCLE_TAG_DEREG to t (after lifecycle_hook_tags): the longest
 * deregistration_delay.timeout_seconds of the group's target groups and
 * connection-draining timeout of its Classic Load Balancers (0 when off),
 * from DescribeAutoScalingGroups, one DescribeTargetGroupAttributes and one
 * DescribeLoadBalancerAttributes each. A group behind no load balancer gets
 * the tag deleted, as does one whose delay could not be read (-1 then, and
 * the cause).
 */
struct lifecycle_tags;
int	rollgrp_dereg_tag(struct aws *, const char *name, struct lifecycle_tags *t, char **);
/* The same for a group read already (no DescribeAutoScalingGroups). */
int	rollgrp_dereg_tag_of(struct aws *, const struct rollgrp *, struct lifecycle_tags *t,
	    char **);
int	rollgrp_set_tags(struct aws *, const char *name, const char *const kv[][2], size_t n,
	    int propagate, char **);
int	rollgrp_delete_tag(struct aws *, const char *name, const char *key, char **);
int	rollgrp_set_capacity(struct aws *, const struct rollgrp *, int min, int desired,
	    char **);
int	rollgrp_standby(struct aws *, const struct rollgrp *, const char *action,
	    const char *from, int limit, int *moved, char **);
size_t	rollgrp_count_healthy(const struct rollgrp *);
int	rollgrp_count_state(const struct rollgrp *, const char *state);

#endif
