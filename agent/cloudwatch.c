/* cloudwatch.c - the time-to-healthy milestones as CloudWatch metrics, for the fleet's percentiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "cloudwatch.h"
#include "state.h"
#include "util.h"

#define CLOUDWATCH_MAX_METRICS	16
#define CLOUDWATCH_FIELDS	5	/* name, value, unit, dimension name and value */

static const struct {
	int		 mark;
	const char	*name;
	int		 put;
} cw_marks[] = {
	{ MARK_KERNEL, "TimeToKernelStart", CLOUDWATCH_SERVING },
	{ MARK_USERSPACE, "TimeToUserspaceStart", CLOUDWATCH_SERVING },
	{ MARK_UNIT, "TimeToUnitStart", CLOUDWATCH_SERVING },
	{ MARK_AGENT, "TimeToAgentStart", CLOUDWATCH_SERVING },
	{ MARK_SERVING, "TimeToServing", CLOUDWATCH_SERVING },
	{ MARK_CONTINUE, "TimeToContinue", CLOUDWATCH_SERVING },
	{ MARK_LB_FIRST, "TimeToFirstLoadBalancerCheck", CLOUDWATCH_LB_HEALTHY },
	{ MARK_LB_HEALTHY, "TimeToLoadBalancerHealthy", CLOUDWATCH_LB_HEALTHY },
};

/* The metrics one put sends: names and values, n of them. */
struct cw_batch {
	const char	*names[CLOUDWATCH_MAX_METRICS];
	double		 values[CLOUDWATCH_MAX_METRICS];
	size_t		 n;
};

static void
batch_add(struct cw_batch *b, const char *name, double a, double z)
{
	if (a <= 0 || z <= 0 || b->n == CLOUDWATCH_MAX_METRICS)
		return;
	b->names[b->n] = name;
	b->values[b->n++] = z - a;
}

static void
batch_fill(struct cw_batch *b, const struct state *st, enum cloudwatch_put put)
{
	const double	*m = st->marks;
	size_t		 i;

	memset(b, 0, sizeof *b);
	for (i = 0; i < nitems(cw_marks); i++) {
		if (cw_marks[i].put == (int)put)
			batch_add(b, cw_marks[i].name, m[MARK_LAUNCH], m[cw_marks[i].mark]);
	}
	/* On our clock alone: no skew between EC2's and ours. */
	if (put == CLOUDWATCH_SERVING)
		batch_add(b, "AgentBootTime", m[MARK_AGENT], m[MARK_SERVING]);
	else
		batch_add(b, "ServingToLoadBalancerHealthy", m[MARK_SERVING],
		    m[MARK_LB_HEALTHY]);
}

enum outcome
cloudwatch_put(struct aws *aws, const char *group, const struct state *st,
    enum cloudwatch_put put, char **cause)
{
	struct aws_param	 p[1 + CLOUDWATCH_MAX_METRICS * CLOUDWATCH_FIELDS];
	struct aws_result	 res;
	struct cw_batch		 b;
	char			*owned[CLOUDWATCH_MAX_METRICS * (CLOUDWATCH_FIELDS + 1)];
	size_t			 i, np = 0, no = 0;
	enum outcome		 ret;

	batch_fill(&b, st, put);
	if (b.n == 0 || group == NULL)
		return OUTCOME_OK;
	memset(&res, 0, sizeof res);
	p[np].name = "Namespace";
	p[np++].value = CLOUDWATCH_NAMESPACE;
	for (i = 0; i < b.n; i++) {
		p[np].name = owned[no++] = xasprintf("MetricData.member.%zu.MetricName", i + 1);
		p[np++].value = b.names[i];
		p[np].name = owned[no++] = xasprintf("MetricData.member.%zu.Value", i + 1);
		p[np++].value = owned[no++] = xasprintf("%.3f", b.values[i]);
		p[np].name = owned[no++] = xasprintf("MetricData.member.%zu.Unit", i + 1);
		p[np++].value = "Seconds";
		p[np].name = owned[no++] = xasprintf("MetricData.member.%zu.Dimensions.member.1.Name",
		    i + 1);
		p[np++].value = "AutoScalingGroupName";
		p[np].name = owned[no++] = xasprintf(
		    "MetricData.member.%zu.Dimensions.member.1.Value", i + 1);
		p[np++].value = group;
	}
	ret = aws_call(aws, AWS_CLOUDWATCH, "PutMetricData", p, np, &res, cause);
	aws_result_free(&res);
	for (i = 0; i < no; i++)
		free(owned[i]);
	return ret;
}
