/* status.c - `asg-agent status`: the state file as an operator reads it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state.h"
#include "status.h"
#include "util.h"

int
status_agent_alive(const struct state *st)
{
	return state_process_alive(st, st->pid, st->pid_start);
}

int
status_code(const struct state *st)
{
	switch (st->phase) {
	case PHASE_SERVING:
		return status_agent_alive(st) ? STATUS_SERVING : STATUS_FAILED;
	case PHASE_FAILED:
		return STATUS_FAILED;
	case PHASE_STOPPED:
		return STATUS_STOPPED;
	case PHASE_WARMED:
		return status_agent_alive(st) ? STATUS_WARMED : STATUS_STOPPED;
	default:
		/* A boot that nobody is running any more will never finish. */
		return status_agent_alive(st) ? STATUS_IN_PROGRESS : STATUS_FAILED;
	}
}

/* Unusually long, per part: seconds above which a hint says what to do about it. */
static const struct {
	const char	*name;
	double		 unusual;
	const char	*hint;
} part_info[PART_COUNT] = {
	[PART_EC2] = { "EC2 launch", 30, "from launch to our kernel: instance type and AMI "
	    "size matter; a warm pool skips this" },
	[PART_KERNEL] = { "kernel", 10, "systemd-analyze shows the kernel's and the "
	    "initrd's share" },
	[PART_SYSTEMD] = { "systemd", 10, "systemd-analyze critical-chain asg-agent.service "
	    "shows what the agent's unit waited for" },
	[PART_AGENT] = { "agent", 5, "the timeline below shows which of the agent's steps" },
	[PART_APP] = { "app", 10, "the app's own start, until it answers healthy" },
	[PART_REGISTRATION] = { "registration", 15, "from serving to the first "
	    "load-balancer check: registration and the check interval; a shorter "
	    "HealthCheckIntervalSeconds helps" },
	[PART_CHECKS] = { "health checks", 10, NULL },
};

static double
step_start(const struct state *st, const char *name)
{
	int	i;

	for (i = 0; i < st->nsteps; i++) {
		if (strcmp(st->steps[i].name, name) == 0)
			return st->steps[i].start;
	}
	return 0;
}

/* b - a when both are known; negative spans (clocks apart) are kept. */
static void
span(struct status_part *p, double a, double b)
{
	p->known = a > 0 && b > 0;
	p->seconds = p->known ? b - a : 0;
}

void
status_parts(const struct state *st, struct status_part parts[PART_COUNT])
{
	const double	*m = st->marks;
	double		 app = step_start(st, "start"), agent = m[MARK_AGENT];
	int		 i;

	if (m[MARK_UNIT] > 0 && m[MARK_UNIT] < agent)
		agent = m[MARK_UNIT];
	for (i = 0; i < PART_COUNT; i++)
		parts[i].name = part_info[i].name;
	span(&parts[PART_EC2], m[MARK_LAUNCH], m[MARK_KERNEL]);
	span(&parts[PART_KERNEL], m[MARK_KERNEL], m[MARK_USERSPACE]);
	span(&parts[PART_SYSTEMD], m[MARK_USERSPACE], agent);
	span(&parts[PART_AGENT], m[MARK_AGENT], app > 0 ? app : m[MARK_SERVING]);
	span(&parts[PART_APP], app, m[MARK_SERVING]);
	span(&parts[PART_REGISTRATION], m[MARK_SERVING], m[MARK_LB_FIRST]);
	span(&parts[PART_CHECKS], m[MARK_LB_FIRST], m[MARK_LB_HEALTHY]);
}

char *
status_hint(const struct state *st)
{
	struct status_part	parts[PART_COUNT];
	double			worst = 0;
	int			i, w = -1;

	status_parts(st, parts);
	for (i = 0; i < PART_COUNT; i++) {
		if (parts[i].known && parts[i].seconds > part_info[i].unusual &&
		    parts[i].seconds > worst) {
			worst = parts[i].seconds;
			w = i;
		}
	}
	if (w == -1)
		return NULL;
	if (w == PART_CHECKS)
		return xasprintf("health checks took %.1f s: %lu load-balancer checks %.1f s "
		    "apart to reach the healthy threshold of %d; a shorter "
		    "HealthCheckIntervalSeconds or a lower HealthyThresholdCount cuts this",
		    worst, st->lb_checks, st->lb_interval, st->lb_threshold);
	return xasprintf("%s took %.1f s, %s", part_info[w].name, worst, part_info[w].hint);
}

static void
print_time(FILE *f, double t)
{
	struct tm	tm;
	time_t		secs = (time_t)t;
	char		buf[32];

	if (gmtime_r(&secs, &tm) == NULL) {
		fprintf(f, "(%.0f s: not a time)", t);
		return;
	}
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "%s.%03dZ", buf, (int)((t - (double)secs) * 1000));
}

static void
field(FILE *f, const char *name, const char *value)
{
	if (value != NULL)
		fprintf(f, "  %-13s %s\n", name, value);
}

/* One milestone line: its time, the gap from the one before (as measured), its name. */
static void
print_mark(FILE *f, double t, double *prev, const char *name, const char *extra)
{
	fprintf(f, "  ");
	print_time(f, t);
	if (*prev > 0)
		fprintf(f, " %+9.3fs", t - *prev);
	else
		fprintf(f, " %10s", "");
	fprintf(f, "  %s%s\n", name, extra != NULL ? extra : "");
	*prev = t;
}

/* What adaptive pacing learned of each throttled or held bucket, and what it cost. */
static void
show_pacing(FILE *f, const struct state *st)
{
	int	i;

	if (st->npace == 0)
		return;
	fprintf(f, "\nAWS API pacing (throttled or held buckets):\n");
	for (i = 0; i < st->npace; i++) {
		fprintf(f, "  %-32s %lu throttling answer%s, held calls back %.1f s, ",
		    st->pace[i].service, st->pace[i].throttles,
		    st->pace[i].throttles == 1 ? "" : "s", st->pace[i].held);
		if (st->pace[i].rate > 0)
			fprintf(f, "learned rate %.3g/s\n", st->pace[i].rate);
		else
			fprintf(f, "free again\n");
	}
}

/* From launch to load-balancer healthy: the milestones, where the time went, a hint. */
static void
print_milestones(const struct state *st, FILE *f)
{
	struct status_part	 parts[PART_COUNT];
	const double		*m = st->marks;
	double			 prev = 0, first = 0, last = 0;
	char			*extra, *hint;
	int			 i, j;

	/* A state file from before the milestones has none. */
	for (i = 0; i < MARK_COUNT && m[i] <= 0; i++)
		;
	if (i == MARK_COUNT)
		return;
	fprintf(f, "\nfrom launch to healthy:\n");
	for (i = 0; i < MARK_COUNT; i++) {
		if (m[i] <= 0)
			continue;
		extra = NULL;
		if (i == MARK_LAUNCH)
			extra = xstrdup(" (EC2 pendingTime: EC2's clock, whole seconds)");
		else if (i == MARK_LB_HEALTHY)
			extra = xasprintf(": %d checks in a row", st->lb_threshold);
		else if (i == MARK_LB_FIRST && st->lb_interval > 0)
			extra = xasprintf(" (checks %.1f s apart)", st->lb_interval);
		print_mark(f, m[i], &prev, state_mark_label(i), extra);
		free(extra);
		if (first == 0)
			first = m[i];
		last = m[i];
		/* The agent's own steps, up to serving, after its start. */
		if (i == MARK_AGENT) {
			for (j = 0; j < st->nsteps; j++) {
				if (strcmp(st->steps[j].name, "serving") == 0)
					break;
				extra = xasprintf("  %s", st->steps[j].name);
				print_mark(f, st->steps[j].start, &prev, "", extra);
				free(extra);
			}
		}
	}
	if (st->imds_clock_known)
		fprintf(f, "  clocks: IMDS's is %+.1f s from ours (its Date header, +-0.5 s); "
		    "the launch time is on EC2's\n", st->imds_clock);
	if (m[MARK_LAUNCH] > 0 && m[MARK_KERNEL] > 0 && m[MARK_KERNEL] < m[MARK_LAUNCH])
		fprintf(f, "  clocks: the kernel started %.1f s before EC2's launch time: "
		    "EC2's clock and ours disagree (gaps are shown as measured)\n",
		    m[MARK_LAUNCH] - m[MARK_KERNEL]);
	status_parts(st, parts);
	fprintf(f, "where the time went:");
	for (i = 0; i < PART_COUNT; i++) {
		if (parts[i].known)
			fprintf(f, "  %s %.1fs", parts[i].name, parts[i].seconds);
	}
	fprintf(f, "  (total %.1fs)\n", last - first);
	if ((hint = status_hint(st)) != NULL) {
		fprintf(f, "hint: %s\n", hint);
		free(hint);
	}
}

void
status_print(const struct state *st, FILE *f, double now)
{
	const struct state_step	*s;
	double			 total = 0, secs;
	int			 i;

	fprintf(f, "asg-agent: %s", state_phase_name(st->phase));
	if (st->phase != PHASE_FAILED && st->phase != PHASE_STOPPED &&
	    !status_agent_alive(st))
		fprintf(f, " (agent pid %d is not running)", st->pid);
	fputc('\n', f);
	if (st->version != NULL)
		fprintf(f, "  %-13s %s, from %s\n", "version", st->version,
		    st->version_source != NULL ? st->version_source : "?");
	field(f, "instance", st->instance_id);
	field(f, "group", st->group);
	field(f, "region", st->region);
	field(f, "artifact", st->artifact);
	if (st->sha256 != NULL || st->verification != NULL)
		fprintf(f, "  %-13s %s%s%s\n", "verified",
		    st->verification != NULL ? st->verification : "",
		    st->sha256 != NULL ? " sha256:" : "",
		    st->sha256 != NULL ? st->sha256 : "");
	if (st->release_dir != NULL)
		fprintf(f, "  %-13s %s (%s)\n", "release", st->release_dir,
		    st->downloaded ? "downloaded" : "already installed, no download");
	field(f, "app", st->app);
	field(f, "health", st->health);
	field(f, "lifecycle", st->lifecycle);
	field(f, "target state", st->target_state);
	field(f, "scale-out", st->scale_out);
	if (st->phase == PHASE_DRAINING && st->drain_until > 0)
		fprintf(f, "  %-13s %.0f s left before the app is stopped\n", "drain",
		    st->drain_until > now ? st->drain_until - now : 0);
	if (st->probes > 0) {
		fprintf(f, "  %-13s %lu probes, %lu failed, %lu failing now", "app checks",
		    st->probes, st->probe_failures, st->failing);
		if (st->last_probe_ok > 0)
			fprintf(f, ", last healthy %.1f s ago", now - st->last_probe_ok);
		fputc('\n', f);
	}
	if (st->error != NULL) {
		char	*safe = str_vis(st->error);

		field(f, "error", safe);
		free(safe);
	}
	fprintf(f, "  %-13s ", "boot started");
	print_time(f, st->boot_start);
	fputc('\n', f);
	print_milestones(st, f);
	if (st->nsteps > 0) {
		fprintf(f, "\ntimeline:\n");
		for (i = 0; i < st->nsteps; i++) {
			s = &st->steps[i];
			secs = s->seconds >= 0 ? s->seconds : now - s->start;
			fprintf(f, "  %+8.3fs %-18s %8.3fs%s", s->start - st->boot_start,
			    s->name, secs, s->seconds >= 0 ? "" : " (running)");
			if (s->polls > 0)
				fprintf(f, "  %d poll%s", s->polls, s->polls == 1 ? "" : "s");
			if (s->detail != NULL)
				fprintf(f, "  %s", s->detail);
			fputc('\n', f);
			if (s->seconds >= 0)
				total += s->seconds;
		}
		fprintf(f, "  %-28s %8.3fs\n", "total", total);
	}
	if (st->ncounters > 0) {
		fprintf(f, "\nAWS API calls:\n");
		for (i = 0; i < st->ncounters; i++) {
			fprintf(f, "  %-32s %5lu", st->counters[i].action,
			    st->counters[i].calls);
			if (st->counters[i].throttled > 0)
				fprintf(f, "  (%lu throttled)", st->counters[i].throttled);
			fputc('\n', f);
		}
	}
	show_pacing(f, st);
}
