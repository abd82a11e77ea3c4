/* rollout.h - the blue/green switch between two Auto Scaling groups, run from CI. */
#ifndef ASG_ROLLOUT_H
#define ASG_ROLLOUT_H

#include <stdio.h>

struct halt;
struct aws;

/* Exit codes of `asg-agent rollout`, documented in the README and the man page. */
enum rollout_code {
	ROLLOUT_OK = 0,
	ROLLOUT_ERROR = 1,	/* AWS error, or the world is not as expected */
	ROLLOUT_USAGE = 2,
	ROLLOUT_REFUSED = 3,	/* another rollout, idle group not empty, finish in a bake */
	ROLLOUT_FAILED = 4,	/* an alarm fired or the new version turned unhealthy: rolled back */
	ROLLOUT_TIMEOUT = 5,
};

struct rollout_opts {
	const char	*live;
	const char	*idle;
	const char	*version;
	const char	*sha256;
	const char	*version_tag;	/* [version] tag */
	const char	*sha256_tag;	/* [artifact] sha256_tag */
	const char	*steps;		/* --steps "10,50,100"; NULL: one step */
	double		 bake;		/* --bake: seconds each step holds, watched */
	const char	**alarms;	/* --alarm NAME, repeatable */
	size_t		 nalarms;
	int		 autorun;	/* --auto: every step to the end */
	int		 force;		/* finish --force: even during a bake */
	int		 step;		/* step --step K: that step, never a later one (0: next) */
	double		 timeout;	/* seconds to wait for health */
	double		 poll;		/* seconds between checks */
	int		 json;
	FILE		*out;		/* progress lines */
	const struct halt *halt;	/* stopped: waits end (NULL: never) */
};

int	rollout_start(struct aws *, const struct rollout_opts *, char **);
int	rollout_finish(struct aws *, const struct rollout_opts *, char **);
int	rollout_rollback(struct aws *, const struct rollout_opts *, char **);
int	rollout_status(struct aws *, const struct rollout_opts *, char **);
int	rollout_step(struct aws *, const struct rollout_opts *, char **);
int	rollout_history(struct aws *, const struct rollout_opts *, char **);

#endif
