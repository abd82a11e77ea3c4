/* metrics.h - the state as a Prometheus text page, for the health endpoint's metrics path. */
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

#endif
