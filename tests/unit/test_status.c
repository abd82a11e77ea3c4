/* test_status.c - the time-to-healthy view, the same-boot rule, the milestone parsers, the metrics page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "milestone.h"
#include "state.h"
#include "status.h"
#include "util.h"

#include "tap.h"

#define T0	1800000000.0	/* a launch time */

/* A state with every milestone: launch, then the given seconds between them. */
static void
make_state(struct state *st, double ec2, double agent_steps, double app, double reg,
    double checks)
{
	memset(st, 0, sizeof *st);
	st->marks[MARK_LAUNCH] = T0;
	st->marks[MARK_KERNEL] = T0 + ec2;
	st->marks[MARK_USERSPACE] = T0 + ec2 + 1;
	st->marks[MARK_UNIT] = T0 + ec2 + 2;
	st->marks[MARK_AGENT] = T0 + ec2 + 2.01;
	st->steps[0].name = xstrdup("imds");
	st->steps[0].start = st->marks[MARK_AGENT];
	st->steps[1].name = xstrdup("start");
	st->steps[1].start = st->marks[MARK_AGENT] + agent_steps;
	st->nsteps = 2;
	st->marks[MARK_SERVING] = st->steps[1].start + app;
	st->marks[MARK_CONTINUE] = st->marks[MARK_SERVING] + 0.01;
	st->marks[MARK_LB_FIRST] = st->marks[MARK_SERVING] + reg;
	st->marks[MARK_LB_HEALTHY] = st->marks[MARK_LB_FIRST] + checks;
	st->lb_threshold = 5;
	st->lb_checks = 5;
	st->lb_interval = checks / 4;
}

static void
test_parts(void)
{
	struct state		st;
	struct status_part	p[PART_COUNT];

	make_state(&st, 20, 0.3, 2, 9, 40);
	status_parts(&st, p);
	tap_dbl(p[PART_EC2].seconds, 20, 1e-6, "EC2 launch: launch to kernel");
	tap_dbl(p[PART_KERNEL].seconds, 1, 1e-6, "kernel: to systemd's userspace");
	tap_dbl(p[PART_SYSTEMD].seconds, 1, 1e-6, "systemd: to the agent's unit");
	tap_dbl(p[PART_AGENT].seconds, 0.3, 1e-6, "agent: its steps up to starting the app");
	tap_dbl(p[PART_APP].seconds, 2, 1e-6, "app: start to serving");
	tap_dbl(p[PART_REGISTRATION].seconds, 9, 1e-6, "registration: to the first check");
	tap_dbl(p[PART_CHECKS].seconds, 40, 1e-6, "health checks: to healthy");
	st.marks[MARK_USERSPACE] = 0;
	status_parts(&st, p);
	tap_int(p[PART_KERNEL].known, 0, "no systemd timestamp: the kernel's part is unknown");
	tap_int(p[PART_SYSTEMD].known, 0, "and so is systemd's");
	st.marks[MARK_KERNEL] = T0 - 5000;
	status_parts(&st, p);
	tap_dbl(p[PART_EC2].seconds, -5000, 1e-6, "clocks apart: the negative gap is kept");
	state_free(&st);
}

/* The hint for a boot with these parts: want (NULL: none) is a part of it. */
static void
hint_case(double ec2, double agent, double app, double checks, const char *want,
    const char *what)
{
	struct state	 st;
	char		*h;

	make_state(&st, ec2, agent, app, 9, checks);
	h = status_hint(&st);
	if (want == NULL)
		tap_null(h, "%s", what);
	else
		tap_has(h, want, "%s", what);
	free(h);
	state_free(&st);
}

static void
test_hints(void)
{
	hint_case(20, 0.3, 2, 8, NULL, "every part as usual: no hint");
	hint_case(20, 0.3, 2, 120, "health checks took 120.0 s",
	    "checks 30 s apart: the hint names them");
	hint_case(20, 0.3, 2, 120, "5 load-balancer checks 30.0 s apart",
	    "with the checks and their interval");
	hint_case(20, 0.3, 2, 120, "HealthCheckIntervalSeconds", "and what to change");
	hint_case(45, 0.3, 2, 60, "health checks took 60.0 s",
	    "the longest unusual part wins over EC2's 45 s");
	hint_case(45, 0.3, 25, 8, "EC2 launch took 45.0 s", "EC2 the longest: its hint");
	hint_case(5, 12, 2, 8, "agent took 12.0 s", "the agent's steps, unusually long");
	hint_case(-5000, 0.3, 2, 8, NULL, "a negative gap (clocks apart) is no hint");
}

/* The rule `status` uses to trust a pid: the same boot id, or one kernel boot. */
static void
test_same_boot(void)
{
	struct state	st;
	char		*id = state_boot_id();

	tap_int(state_same_boot("a", T0, "a", T0 + 1e6), 1, "the same boot id");
	tap_int(state_same_boot("a", T0, "b", T0 + 0.2), 1,
	    "another boot id (nspawn's, unseen behind ProtectProc=), one kernel boot");
	tap_int(state_same_boot("a", T0, "b", T0 + 30), 0, "another boot id, another kernel boot");
	tap_int(state_same_boot("a", 0, "b", T0), 0, "a record without the kernel's boot time");
	tap_int(state_same_boot("a", T0, "", T0 + 30), 0, "no boot id to read now");

	/* This very process, recorded as the agent of a state file. */
	state_init(&st);
	tap_int(state_process_alive(&st, st.pid, st.pid_start), 1, "our own record: alive");
	state_set(&st.boot_id, "00000000-0000-0000-0000-000000000000");
	tap_int(state_process_alive(&st, st.pid, st.pid_start), 1,
	    "another boot id seen by the agent, the same kernel: alive");
	st.marks[MARK_KERNEL] -= 3600;
	tap_int(state_process_alive(&st, st.pid, st.pid_start), 0,
	    "another boot id and another kernel boot: not trusted");
	state_set(&st.boot_id, id);
	tap_int(state_process_alive(&st, st.pid, st.pid_start + 1), 0,
	    "the pid with another start time: not ours");
	state_free(&st);
	free(id);
}

static void
test_pending_time(void)
{
	/* date -u -d 2027-01-15T08:00:00Z +%s */
	tap_dbl(milestone_pending_time("{\"pendingTime\":\"2027-01-15T08:00:00Z\"}"),
	    1800000000.0, 0, "pendingTime as Unix time");
	tap_dbl(milestone_pending_time("{\"pendingTime\":\"x\"}"), 0, 0, "a bad pendingTime: 0");
	tap_dbl(milestone_pending_time("{}"), 0, 0, "none: 0");
	tap_dbl(milestone_pending_time("not json"), 0, 0, "not JSON: 0");
	tap_dbl(milestone_pending_time("{\"pendingTime\":\"2027-01-15T08:00:00+02:00\"}"), 0, 0,
	    "an offset other than UTC: refused");
}

static void
test_unit_name(void)
{
	char	*u;

	tap_str(u = milestone_unit_name("0::/system.slice/asg-agent.service\n"),
	    "asg-agent.service", "cgroup v2");
	free(u);
	tap_str(u = milestone_unit_name("12:pids:/x\n1:name=systemd:/system.slice/a.service\n"),
	    "a.service", "cgroup v1's systemd hierarchy");
	free(u);
	tap_null(u = milestone_unit_name("0::/user.slice/user-0.slice/session-1.scope\n"),
	    "a session scope is no service");
	free(u);
	tap_null(u = milestone_unit_name("0::/\n"), "the root cgroup (a container's view)");
	free(u);
	tap_null(u = milestone_unit_name(""), "nothing");
	free(u);
}

/* Label values escaped as the text format wants; a step run twice adds up. */
static void
test_metrics_page(void)
{
	struct metrics_live	 live = { "0.1.0", 1, 7 };
	struct state		 st;
	char			*page;

	make_state(&st, 20, 0.3, 2, 9, 40);
	state_set(&st.version, "1.\"2\\3\n");
	st.phase = PHASE_SERVING;
	free(st.steps[1].name);
	st.steps[1].name = xstrdup("imds");
	st.steps[0].seconds = 0.25;
	st.steps[1].seconds = 0.5;
	page = metrics_render(&st, &live, T0 + 100);
	tap_has(page, "asg_agent_info{version=\"1.\\\"2\\\\3\\n\",instance=\"\"",
	    "quote, backslash and newline escaped");
	tap_has(page, "agent_version=\"0.1.0\"} 1\n", "the agent's version");
	tap_has(page, "asg_agent_phase{phase=\"serving\"} 1\n", "the phase: 1");
	tap_has(page, "asg_agent_phase{phase=\"failed\"} 0\n", "the other phases: 0");
	tap_has(page, "asg_agent_boot_step_seconds{step=\"imds\"} 0.75\n",
	    "one label set per step: a step run twice adds up");
	tap_has(page, "asg_agent_milestone_seconds{milestone=\"kernel_start\"} 20\n",
	    "seconds from launch");
	tap_has(page, "asg_agent_health_endpoint_requests_total 7\n", "the endpoint's count");
	free(page);
	state_free(&st);
}

/* The serving line's journal fields: seconds from launch, and the agent's own boot. */
static void
test_journal_fields(void)
{
	struct state	 st;
	char		*f[MARK_COUNT + 1];
	size_t		 n, i;

	make_state(&st, 20, 0.3, 2, 9, 40);
	st.marks[MARK_USERSPACE] = 0;
	st.marks[MARK_LB_FIRST] = st.marks[MARK_LB_HEALTHY] = 0;
	n = metrics_journal_fields(&st, f, nitems(f));
	tap_size(n, 6, "kernel, unit, agent, serving, CONTINUE from launch, and the boot");
	if (n == 6) {
		tap_str(f[0], "ASG_AGENT_SECONDS_TO_KERNEL_START=20.000", "the kernel's");
		tap_str(f[3], "ASG_AGENT_SECONDS_TO_SERVING=24.310", "serving");
		tap_str(f[4], "ASG_AGENT_SECONDS_TO_CONTINUE_SENT=24.320", "CONTINUE");
		tap_str(f[5], "ASG_AGENT_BOOT_SECONDS=2.300", "the agent's own boot");
	}
	for (i = 0; i < n; i++)
		free(f[i]);
	st.marks[MARK_LAUNCH] = 0;
	n = metrics_journal_fields(&st, f, 2);
	tap_size(n, 1, "no launch time: the boot's seconds alone");
	for (i = 0; i < n; i++)
		free(f[i]);
	state_free(&st);
}

/* The human view: the milestones section when there are milestones, not before. */
static void
test_print(void)
{
	struct state	 st;
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*f;

	make_state(&st, 20, 0.3, 2, 9, 120);
	st.phase = PHASE_STOPPED;
	st.imds_clock = -2.25;
	st.imds_clock_known = 1;
	f = open_memstream(&text, &len);
	status_print(&st, f, T0 + 200);
	fclose(f);
	tap_has(text, "from launch to healthy:\n", "the section");
	tap_has(text, "+20.000s  kernel started\n", "a milestone with its gap");
	tap_has(text, "load balancer healthy (as seen from here): 5 checks in a row",
	    "healthy as seen from here");
	tap_has(text, "where the time went:  EC2 launch 20.0s  kernel 1.0s", "the parts");
	tap_has(text, "clocks: IMDS's is -2.2 s from ours", "IMDS's clock against ours, shown");
	tap_has(text, "(total 153.3s)\nhint: health checks took 120.0 s", "the total, the hint");
	free(text);
	memset(st.marks, 0, sizeof st.marks);
	text = NULL;
	f = open_memstream(&text, &len);
	status_print(&st, f, T0 + 200);
	fclose(f);
	tap_ok(text != NULL && strstr(text, "from launch") == NULL,
	    "a state file from before the milestones: no section (got: %s)", text);
	free(text);
	state_free(&st);
}

/* A state file may say anything: NaN and Infinity (json-c reads them) are no times. */
static void
test_hostile_times(void)
{
	struct state	 st;
	char		*text = NULL, *cause = NULL;
	size_t		 len = 0;
	FILE		*f;
	int		 r;

	r = state_from_json(&st, "{\"phase\": \"failed\", \"boot_start\": NaN, \"updated\": "
	    "-Infinity, \"timeline\": [{\"step\": \"fetch\", \"start\": Infinity, "
	    "\"seconds\": 1e300}]}", &cause);
	tap_int(r, 0, "parsed: %s", r == 0 ? "ok" : cause);
	tap_true(st.boot_start == 0 && st.updated == 0, "NaN and -Infinity read as unknown "
	    "(%g, %g)", st.boot_start, st.updated);
	tap_true(st.nsteps == 1 && st.steps[0].start == 0 && st.steps[0].seconds == -1,
	    "a step's Infinity and 1e300 read as unknown");
	f = open_memstream(&text, &len);
	status_print(&st, f, T0);
	fclose(f);
	tap_ok(text != NULL && strstr(text, "nan") == NULL && strstr(text, "inf") == NULL &&
	    strstr(text, "-2147483648") == NULL, "nothing printed from them (got: %s)", text);
	free(text);
	free(cause);
	state_free(&st);
}

int
main(void)
{
	tap_run("parts", test_parts);
	tap_run("hints", test_hints);
	tap_run("same boot", test_same_boot);
	tap_run("pendingTime", test_pending_time);
	tap_run("unit name", test_unit_name);
	tap_run("metrics page", test_metrics_page);
	tap_run("journal fields", test_journal_fields);
	tap_run("print", test_print);
	tap_run("hostile times", test_hostile_times);
	return tap_done();
}
