/* status.h - `asg-agent status`: the state file as an operator reads it. */
#ifndef ASG_STATUS_H
#define ASG_STATUS_H

#include <stdio.h>

#include "state.h"

/* Exit codes of `status`, documented in the README and the man page. */
enum status_code {
	STATUS_SERVING = 0,
	STATUS_FAILED = 1,
	STATUS_IN_PROGRESS = 2,
	STATUS_STOPPED = 3,
	STATUS_WARMED = 4,	/* in a warm pool, release installed, not serving */
};

/* Where the time from launch to healthy went: one part of it. */
enum status_part_id {
	PART_EC2,		/* launch -> kernel */
	PART_KERNEL,		/* kernel -> systemd userspace */
	PART_SYSTEMD,		/* userspace -> the agent's unit */
	PART_AGENT,		/* the agent's own steps, up to starting the app */
	PART_APP,		/* starting the app until it answers healthy */
	PART_REGISTRATION,	/* serving -> the first load-balancer check */
	PART_CHECKS,		/* first check -> the load balancer counts us healthy */
	PART_COUNT
};

struct status_part {
	const char	*name;
	double		 seconds;
	int		 known;		/* 0: an end is unknown */
};

/* The parts of the time to healthy known from the state. */
void	status_parts(const struct state *, struct status_part parts[PART_COUNT]);
/* A one-line hint on the longest unusually long part (allocated), or NULL. */
char	*status_hint(const struct state *);
/* Whether the agent that wrote the state is still running. */
int	status_agent_alive(const struct state *);
int	status_code(const struct state *);
void	status_print(const struct state *, FILE *, double now);

#endif
