/* metrics.c - the state as numbers for monitoring: the Prometheus page, the serving line's journal fields. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "state.h"
#include "util.h"

/* A label value with \, " and newlines escaped, as the format wants. */
static void
put_value(struct buf *b, const char *v)
{
	for (; v != NULL && *v != '\0'; v++) {
		if (*v == '\\')
			buf_add(b, "\\\\", 2);
		else if (*v == '"')
			buf_add(b, "\\\"", 2);
		else if (*v == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_add(b, v, 1);
	}
}

/* The HELP and TYPE lines that open a metric family. */
static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample with one label (label NULL: none). */
static void
sample(struct buf *b, const char *name, const char *label, const char *value, double v)
{
	buf_addf(b, "%s", name);
	if (label != NULL) {
		buf_addf(b, "{%s=\"", label);
		put_value(b, value);
		buf_add(b, "\"}", 2);
	}
	buf_addf(b, " %.15g\n", v);
}

static void
put_info(struct buf *b, const struct state *st, const struct metrics_live *live)
{
	static const char	*keys[] = { "version", "instance", "group", "region",
				    "agent_version" };
	const char		*vals[5];
	size_t			 i;

	vals[0] = st->version;
	vals[1] = st->instance_id;
	vals[2] = st->group;
	vals[3] = st->region;
	vals[4] = live->agent_version;
	family(b, "asg_agent_info", "gauge", "The release, instance, group and agent version.");
	buf_addf(b, "asg_agent_info{");
	for (i = 0; i < nitems(keys); i++) {
		buf_addf(b, "%s%s=\"", i > 0 ? "," : "", keys[i]);
		put_value(b, vals[i] != NULL ? vals[i] : "");
		buf_add(b, "\"", 1);
	}
	buf_addf(b, "} 1\n");
}

/* The milestones: when (Unix time), and seconds from the instance's launch. */
static void
put_milestones(struct buf *b, const struct state *st)
{
	const double	*m = st->marks;
	int		 i;

	family(b, "asg_agent_milestone_timestamp_seconds", "gauge",
	    "When each known milestone from launch to load-balancer healthy happened.");
	for (i = 0; i < MARK_COUNT; i++) {
		if (m[i] > 0)
			sample(b, "asg_agent_milestone_timestamp_seconds", "milestone",
			    state_mark_key(i), m[i]);
	}
	if (m[MARK_LAUNCH] <= 0)
		return;
	family(b, "asg_agent_milestone_seconds", "gauge",
	    "Seconds from the instance's launch (EC2's pendingTime) to each milestone.");
	for (i = 0; i < MARK_COUNT; i++) {
		if (m[i] > 0)
			sample(b, "asg_agent_milestone_seconds", "milestone", state_mark_key(i),
			    m[i] - m[MARK_LAUNCH]);
	}
}

/* Each boot step's seconds (a step run twice, as after a warm pool, adds up). */
static void
put_steps(struct buf *b, const struct state *st, double now)
{
	const struct state_step	*s;
	double			 secs;
	int			 i, j;

	family(b, "asg_agent_boot_step_seconds", "gauge",
	    "Seconds each step of the agent's timeline took (so far, while it runs).");
	for (i = 0; i < st->nsteps; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(st->steps[j].name, st->steps[i].name) == 0)
				break;
		}
		if (j < i)
			continue;
		for (secs = 0, j = i; j < st->nsteps; j++) {
			s = &st->steps[j];
			if (strcmp(s->name, st->steps[i].name) == 0)
				secs += s->seconds >= 0 ? s->seconds : now - s->start;
		}
		sample(b, "asg_agent_boot_step_seconds", "step", st->steps[i].name, secs);
	}
}

static void
put_api(struct buf *b, const struct state *st)
{
	int	i;

	family(b, "asg_agent_aws_api_calls_total", "counter",
	    "AWS API calls made, per action.");
	for (i = 0; i < st->ncounters; i++)
		sample(b, "asg_agent_aws_api_calls_total", "action", st->counters[i].action,
		    (double)st->counters[i].calls);
	family(b, "asg_agent_aws_api_throttled_total", "counter",
	    "AWS API answers that were throttling errors, per action.");
	for (i = 0; i < st->ncounters; i++)
		sample(b, "asg_agent_aws_api_throttled_total", "action",
		    st->counters[i].action, (double)st->counters[i].throttled);
	family(b, "asg_agent_aws_held_seconds_total", "counter",
	    "Seconds adaptive pacing held AWS requests back, per API.");
	for (i = 0; i < st->npace; i++)
		sample(b, "asg_agent_aws_held_seconds_total", "service", st->pace[i].service,
		    st->pace[i].held);
	family(b, "asg_agent_aws_pacing_rate", "gauge",
	    "Requests per second adaptive pacing learned for a throttled API; 0: free again.");
	for (i = 0; i < st->npace; i++)
		sample(b, "asg_agent_aws_pacing_rate", "service", st->pace[i].service,
		    st->pace[i].rate);
}

/* A metric family of one sample without labels. */
static void
single(struct buf *b, const char *name, const char *type, const char *help, double v)
{
	family(b, name, type, help);
	sample(b, name, NULL, NULL, v);
}

static void
put_health(struct buf *b, const struct state *st, const struct metrics_live *live,
    double now)
{
	single(b, "asg_agent_health_endpoint_healthy", "gauge",
	    "1 when the load balancer's health endpoint answers 200, else 0.",
	    live->endpoint_ok);
	single(b, "asg_agent_health_endpoint_requests_total", "counter",
	    "Requests the health endpoint answered.", (double)live->requests);
	single(b, "asg_agent_app_probes_total", "counter",
	    "Health probes of the app once serving.", (double)st->probes);
	single(b, "asg_agent_app_probe_failures_total", "counter",
	    "Health probes of the app that failed.", (double)st->probe_failures);
	single(b, "asg_agent_app_probes_failing", "gauge",
	    "Failed app probes in a row now.", (double)st->failing);
	if (st->last_probe_ok > 0)
		single(b, "asg_agent_app_last_healthy_timestamp_seconds", "gauge",
		    "When the app last answered its health probe.", st->last_probe_ok);
	single(b, "asg_agent_drain_remaining_seconds", "gauge",
	    "Seconds left of the drain before the app is stopped (0: not draining).",
	    st->phase == PHASE_DRAINING && st->drain_until > now ? st->drain_until - now : 0);
	single(b, "asg_agent_lb_health_checks_total", "counter",
	    "Load-balancer health checks (ELB-HealthChecker) answered 200.",
	    (double)st->lb_checks);
	if (st->imds_clock_known)
		single(b, "asg_agent_imds_clock_offset_seconds", "gauge",
		    "IMDS's clock minus the instance's, from its Date header (+-0.5 s).",
		    st->imds_clock);
	single(b, "asg_agent_lb_healthy_threshold", "gauge",
	    "Load-balancer checks in a row before it counts the instance healthy.",
	    st->lb_threshold);
}

char *
metrics_render(const struct state *st, const struct metrics_live *live, double now)
{
	struct buf	b = { NULL, 0, 0 };
	char		*out;
	int		i;

	put_info(&b, st, live);
	family(&b, "asg_agent_phase", "gauge", "1 for the phase the agent is in, else 0.");
	for (i = 0; i < PHASE_COUNT; i++)
		sample(&b, "asg_agent_phase", "phase", state_phase_name(i), i == st->phase);
	put_milestones(&b, st);
	put_steps(&b, st, now);
	put_api(&b, st);
	put_health(&b, st, live, now);
	buf_add(&b, "", 1);
	out = xstrdup(b.data);
	buf_free(&b);
	return out;
}

size_t
metrics_journal_fields(const struct state *st, char **fields, size_t max)
{
	const double	*m = st->marks;
	char		 name[64];
	size_t		 n = 0, j;
	int		 i;

	for (i = 0; i < MARK_COUNT && m[MARK_LAUNCH] > 0; i++) {
		if (i == MARK_LAUNCH || m[i] <= 0 || n == max)
			continue;
		for (j = 0; state_mark_key(i)[j] != '\0' && j < sizeof name - 1; j++)
			name[j] = (char)toupper((unsigned char)state_mark_key(i)[j]);
		name[j] = '\0';
		fields[n++] = xasprintf("ASG_AGENT_SECONDS_TO_%s=%.3f", name, m[i] - m[MARK_LAUNCH]);
	}
	if (n < max && m[MARK_AGENT] > 0 && m[MARK_SERVING] > 0)
		fields[n++] = xasprintf("ASG_AGENT_BOOT_SECONDS=%.3f",
		    m[MARK_SERVING] - m[MARK_AGENT]);
	return n;
}
