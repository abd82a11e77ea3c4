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

static void
print_time(FILE *f, double t)
{
	struct tm	tm;
	time_t		secs = (time_t)t;
	char		buf[32];

	gmtime_r(&secs, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "%s.%03dZ", buf, (int)((t - (double)secs) * 1000));
}

static void
field(FILE *f, const char *name, const char *value)
{
	if (value != NULL)
		fprintf(f, "  %-13s %s\n", name, value);
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
}
