/* metrics.h - the state as numbers for monitoring: the Prometheus page, the serving line's journal fields. */
#ifndef ASG_METRICS_H
#define ASG_METRICS_H

#include "state.h"

/* What the page shows beyond the state file. */
struct metrics_live {
	const char	*agent_version;
	int		 endpoint_ok;	/* the health endpoint answers 200 */
	unsigned long	 requests;	/* requests the endpoint answered */
};

/* The page (allocated): Prometheus text exposition format 0.0.4, base units. */
char	*metrics_render(const struct state *, const struct metrics_live *, double now);
/*
 * The milestones known so far as journal fields (allocated "NAME=value"
 * strings, at most max): ASG_AGENT_SECONDS_TO_<MILESTONE> from the launch,
 * and ASG_AGENT_BOOT_SECONDS from the agent's start to serving. Returns how many.
 */
size_t	metrics_journal_fields(const struct state *, char **fields, size_t max);

#endif
