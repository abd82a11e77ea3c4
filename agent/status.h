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

/* Whether the agent that wrote the state is still running. */
int	status_agent_alive(const struct state *);
int	status_code(const struct state *);
void	status_print(const struct state *, FILE *, double now);

#endif
