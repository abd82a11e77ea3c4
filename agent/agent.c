/* agent.c - the run context of `asg-agent run` and the services its parts share. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "agent.h"
#include "config.h"
#include "health.h"
#include "imds.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "sdproto.h"
#include "util.h"

#define AGENT_EARLY_BEAT	120	/* hooks this short get a heartbeat at once */
#define AGENT_WAIT_SLICE	0.25	/* seconds between ticks while waiting */
#define AGENT_METRICS_EVERY	1.0	/* seconds between metrics pages rendered by ticks */
#define AGENT_TARGET_MISSES	3	/* target state reads failed in a row before a warning */
#define AGENT_REFUSED_CAP	300.0	/* at most between launch results AWS refused (IAM) */

/* Where the handlers write: one run context per process. */
static struct halt	*signal_halt;
/* Stop signals between two run contexts (the warm-pool loop): the next one counts them. */
static volatile sig_atomic_t signal_between;

static void
on_signal(int sig)
{
	struct halt	*h = signal_halt;

	if (h == NULL) {
		if (sig == SIGTERM || sig == SIGINT)
			signal_between++;
		return;
	}
	switch (sig) {
	case SIGHUP:
		h->reload = 1;
		return;
	case SIGALRM:
		h->deadline = 1;
		break;
	default:
		if (++h->signals > 1)
			h->hurry = 1;
		break;
	}
	h->stop = 1;
}

void
agent_init(struct agent *a, struct config *cfg)
{
	memset(a, 0, sizeof *a);
	a->cfg = cfg;
	a->dereg = -1;
	state_init(&a->st);
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	agent_deadline(0);
	if (a->app_started)
		app_stop(&a->app, a->cfg->stop_timeout, NULL);
	if (a->app_ready)
		app_free(&a->app);
	health_stop(a->health);
	if (a->client_ready)
		client_free(&a->client);
	state_free(&a->st);
	free(a->state_path);
	free(a->instance_id);
	free(a->group);
	free(a->hook);
	free(a->term_hook);
	free(a->tag_launch.name);
	free(a->tag_term.name);
	free(a->version);
	free(a->sha256);
	if (signal_halt == &a->halt)
		signal_halt = NULL;
}

void
agent_signals(struct agent *a)
{
	struct sigaction	sa;
	sigset_t		stops, old;

	/* Stop signals held while the handlers change context: none lost, none counted twice. */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigprocmask(SIG_BLOCK, &stops, &old);
	signal_halt = &a->halt;
	if (signal_between > 0) {
		a->halt.signals += signal_between;
		a->halt.stop = 1;
		if (a->halt.signals > 1)
			a->halt.hurry = 1;
		signal_between = 0;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
agent_deadline(int seconds)
{
	struct itimerval	it;

	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = seconds;
	setitimer(ITIMER_REAL, &it, NULL);
}

void
agent_clients(struct agent *a)
{
	client_init(&a->client, a->cfg, &a->halt);
	a->client_ready = 1;
}

/* The journal's fields follow the state: phase, running step, version, instance, group. */
static void
log_fields(const struct state *st)
{
	const struct state_step	*s = st->nsteps > 0 ? &st->steps[st->nsteps - 1] : NULL;

	log_set_field(LOGF_PHASE, state_phase_name(st->phase));
	log_set_field(LOGF_STEP, s != NULL && s->seconds < 0 ? s->name : NULL);
	log_set_field(LOGF_VERSION, st->version);
	log_set_field(LOGF_INSTANCE, st->instance_id);
	log_set_field(LOGF_GROUP, st->group);
}

/* What the adaptive pacing learned, for every bucket that ever throttled or held. */
static void
sync_pacing(struct agent *a)
{
	const struct pace	*p;
	struct state_pace	*sp;
	int			 svc, n = 0;

	for (svc = 0; a->client_ready && svc < AWS_NSERVICES && n < STATE_MAX_PACE; svc++) {
		p = &a->client.aws.pace[svc];
		if (p->throttles == 0 && p->held <= 0)
			continue;
		sp = &a->st.pace[n++];
		state_set(&sp->service, aws_service_name(svc));
		sp->rate = p->rate;
		sp->held = p->held;
		sp->throttles = p->throttles;
	}
	a->st.npace = n;
}

/* The API client's counters into the state. */
static void
sync_counters(struct agent *a)
{
	const struct aws	*aws = &a->client.aws;
	size_t			 i;

	for (i = 0; a->client_ready && i < aws->ncounters && (int)i < STATE_MAX_COUNTERS;
	    i++) {
		state_set(&a->st.counters[i].action, aws->counters[i].action);
		a->st.counters[i].calls = aws->counters[i].calls;
		a->st.counters[i].throttled = aws->counters[i].throttled;
	}
	a->st.ncounters = (int)i;
	sync_pacing(a);
}

/* A fresh metrics page for the endpoint's thread to serve. */
static void
agent_metrics(struct agent *a)
{
	struct metrics_live	 live;
	char			*page;

	if (a->health == NULL || *a->cfg->metrics_path == '\0')
		return;
	sync_counters(a);
	live.agent_version = PACKAGE_VERSION;
	live.endpoint_ok = health_get(a->health);
	live.requests = health_requests(a->health);
	page = metrics_render(&a->st, &live, wall_now());
	health_set_metrics(a->health, page);
	free(page);
	a->last_metrics = mono_now();
	a->metrics_phase = a->st.phase;
}

void
agent_save(struct agent *a)
{
	char	*cause = NULL;

	log_fields(&a->st);
	/*
	 * A page per save was a fifth of a boot's CPU: a new phase renders at
	 * once, anything else within AGENT_METRICS_EVERY (the ticks catch up).
	 */
	if (a->st.phase != a->metrics_phase || mono_now() - a->last_metrics >= AGENT_METRICS_EVERY)
		agent_metrics(a);
	if (a->state_path == NULL)
		return;
	sync_counters(a);
	a->st.updated = wall_now();
	if (state_save(&a->st, a->state_path, &cause) != 0) {
		log_warn("cannot save state: %s", cause);
		free(cause);
	}
}

void
agent_tell(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (sdproto_notify(msg) < 0)
		log_debug("cannot notify systemd (%s): %s", getenv("NOTIFY_SOCKET"),
		    strerror(errno));
	free(msg);
}

void
agent_notify(struct agent *a, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	(void)a;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	agent_tell("STATUS=%s", msg);
	log_info("%s", msg);
	free(msg);
}

void
agent_phase(struct agent *a, int ph, const char *step, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	a->st.phase = ph;
	if (step != NULL)
		state_step_begin(&a->st, step);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_fields(&a->st);
	agent_notify(a, "%s: %s", state_phase_name(ph), msg);
	free(msg);
	agent_save(a);
}

/* Heartbeats for hook every third of its HeartbeatTimeout (at most [lifecycle] heartbeat). */
static void
arm_heartbeats(struct agent *a, const char *hook, int hook_timeout)
{
	double	interval = a->cfg->heartbeat;

	if (hook_timeout > 0 && hook_timeout / 3.0 < interval)
		interval = hook_timeout / 3.0;
	a->hb_hook = hook;
	a->hb_ref = NULL;
	a->hb_ok = 0;
	a->hb_interval = interval;
	a->next_heartbeat = mono_now() + interval;
}

/*
 * Heartbeats for hook, as often as its HeartbeatTimeout needs (a third of
 * it, at most [lifecycle] heartbeat), the first one now.
 */
void
agent_heartbeats(struct agent *a, const char *hook, int hook_timeout, char **tagged,
    int launch)
{
	arm_heartbeats(a, hook, hook_timeout);
	a->hb_ref = tagged;
	a->hb_launch = launch;
	/*
	 * The hook's clock started at launch, before we ran: a short timeout
	 * gets a heartbeat now; a long one the first after an interval, which
	 * spares the API (and a fleet's shared quota) a call on every fast boot.
	 */
	if (hook_timeout > 0 && hook_timeout <= AGENT_EARLY_BEAT) {
		a->next_heartbeat = 0;
		agent_tick(a);
	}
}

/*
 * A tag-named hook had no action to beat for: 1 when that is settled here (a
 * rename followed, the terminate hook gone and heartbeats ended, or no answer
 * yet: the next heartbeat asks again), else 0.
 */
static int
heartbeat_renamed(struct agent *a)
{
	struct hook_recheck	 rc;
	char			*cause = NULL, **ref = a->hb_ref;
	int			 launch = a->hb_launch;
	enum outcome		 r;

	r = agent_hook_recheck(a, launch, ref, &rc, &cause);
	if (r != OUTCOME_OK && !outcome_retryable(r))
		log_warn("DescribeLifecycleHooks: %s", cause);
	free(cause);
	if (outcome_retryable(r))
		return 1;
	if (launch)
		a->hook_tagged = 0;
	a->hb_ref = NULL;
	if (rc.none && !launch) {
		/* No terminate hook any more: nothing to beat for, and nothing to complete. */
		log_info("the group has no terminate hook: no more heartbeats");
		a->hb_hook = NULL;
		free(*ref);
		*ref = NULL;
		return 1;
	}
	if (!rc.changed)
		return 0;
	arm_heartbeats(a, *ref, rc.timeout);
	a->next_heartbeat = 0;	/* the renamed hook's first, at the next tick */
	return 1;
}

/*
 * What runs during every wait: systemd's start timeout extended, metrics,
 * and the hook's heartbeat. The heartbeat is not put off while pacing holds
 * the API, as the loops' other calls are: a CONTINUE throttled again at each
 * hold's end would starve it, and it keeps the hook alive meanwhile.
 */
void
agent_tick(void *arg)
{
	struct agent	*a = arg;
	char		*cause = NULL;
	double		 now = mono_now(), d;
	enum outcome	 r;

	if (now - a->last_extend > 10) {
		agent_tell("EXTEND_TIMEOUT_USEC=60000000");
		a->last_extend = now;
	}
	if (now - a->last_metrics >= AGENT_METRICS_EVERY)
		agent_metrics(a);
	if (a->hb_hook == NULL || now < a->next_heartbeat || a->group == NULL)
		return;
	/* An announced scale-out's turn not come yet: the heartbeat waits for it, not the tick. */
	if ((d = agent_turn_in(a)) > 0) {
		a->next_heartbeat = now + d;
		return;
	}
	a->next_heartbeat = now + a->hb_interval;
	/*
	 * With the launch result queued the heartbeat buys nothing but a call
	 * from the fleet's shared quota: skip one (an interval is a third of
	 * the hook's timeout, so two thirds are left), never two in a row, nor
	 * one after a heartbeat that failed.
	 */
	if (a->owed && a->hb_hook == a->hook && !a->hb_skipped && !a->hb_failed) {
		a->hb_skipped = 1;
		log_debug("lifecycle heartbeat for %s skipped: a result is queued", a->hb_hook);
		return;
	}
	a->hb_skipped = 0;
	r = lifecycle_heartbeat(&a->client.aws, a->group, a->hb_hook, a->instance_id, &cause);
	a->hb_failed = r == OUTCOME_FATAL || outcome_retryable(r);
	if (a->hb_failed)
		log_warn("lifecycle heartbeat for %s: %s", a->hb_hook, cause);
	else if (r == OUTCOME_OK) {
		a->hb_ok = 1;
		log_debug("lifecycle heartbeat sent for hook %s", a->hb_hook);
	} else if (!a->hb_launch && !a->hb_ok && a->dereg > 0) {
		/* Before a told deregistration delay's end no action is no reason to doubt a tag. */
		log_debug("lifecycle hook %s: no action yet, beating on", a->hb_hook);
	} else if (a->hb_ref != NULL && heartbeat_renamed(a)) {
		/* A tag's name may be out of date: a rename is followed, or the hook is gone. */
	} else if (!a->hb_launch && !a->hb_ok) {
		/* AWS registers a terminate action after the deregistration delay. */
		log_debug("lifecycle hook %s: no action yet, beating on", a->hb_hook);
	} else {
		log_info("lifecycle hook %s has no pending action: no more heartbeats",
		    a->hb_hook);
		a->hb_hook = NULL;
	}
	free(cause);
}

void
agent_wait(struct agent *a, double seconds)
{
	double	end = mono_now() + seconds, left;

	while (!a->halt.stop && (left = end - mono_now()) > 0) {
		sleep_for(left < AGENT_WAIT_SLICE ? left : AGENT_WAIT_SLICE,
		    &a->halt);
		agent_tick(a);
	}
}

double
agent_turn_in(struct agent *a)
{
	if (!a->client.aws.adaptive)
		return 0;
	return pace_start(&a->client.aws.pace[AWS_AUTOSCALING], mono_now(), retry_random());
}

int
agent_turn(struct agent *a, const char *what)
{
	double	d, t0 = mono_now();

	if ((d = agent_turn_in(a)) <= 0)
		return 0;
	state_setf(&a->st.lifecycle, "%s in %.1f s, this instance's turn in the announced "
	    "scale-out", what, d);
	agent_save(a);
	/* The turn is a moment, not a span: time spent saving the state is not added to it. */
	log_debug("%.2f s to this instance's turn in the announced scale-out", d);
	agent_wait(a, agent_turn_in(a));
	pace_held(&a->client.aws.pace[AWS_AUTOSCALING], mono_now() - t0);
	return 1;
}

void
agent_retry(struct agent *a, struct retry *r, double base, double cap, double deadline,
    int patient, int tick)
{
	retry_init(r, base, cap, deadline);
	r->halt = &a->halt;
	r->patient = patient;
	if (tick) {
		r->tick = agent_tick;
		r->tick_arg = a;
	}
}

void
agent_stop_app(struct agent *a, const char *what)
{
	char	*err = NULL;

	if (!a->app_started)
		return;
	if (app_stop(&a->app, a->cfg->stop_timeout, &err) != 0)
		log_warn("stopping the %s: %s", what, err);
	free(err);
	a->app_started = 0;
	a->st.app_pid = 0;
}

enum outcome
agent_hook_recheck(struct agent *a, int launch, char **hook, struct hook_recheck *rc,
    char **cause)
{
	struct lifecycle_hook	 l, t, *h = launch ? &l : &t;
	enum outcome		 r;
	char			*term;

	memset(rc, 0, sizeof *rc);
	/* A group with two hooks of the transition: the tag's name, while it is one of them. */
	if ((r = lifecycle_find_named(&a->client.aws, a->group, launch ? *hook : NULL,
	    launch ? NULL : *hook, &l, &t, cause)) != OUTCOME_OK)
		return r;
	/* The answer names both hooks, for now: a scale-in soon after uses it, not the tags. */
	free(a->tag_launch.name);
	free(a->tag_term.name);
	a->tag_launch.name = a->tag_term.name = NULL;
	term = t.name != NULL ? xstrdup(t.name) : NULL;
	free(a->term_hook);
	a->term_hook = term;
	a->term_timeout = t.timeout;
	a->hooks_read = mono_now();
	rc->none = h->name == NULL;
	rc->timeout = h->timeout;
	if (h->name != NULL && (*hook == NULL || strcmp(h->name, *hook) != 0)) {
		log_warn("%s hook %s, named by tag %s, is not the group's: it is %s",
		    launch ? "launch" : "terminate", *hook != NULL ? *hook : "(none)",
		    launch ? LIFECYCLE_TAG_LAUNCH : LIFECYCLE_TAG_TERMINATE, h->name);
		free(*hook);
		*hook = h->name;
		h->name = NULL;
		rc->changed = 1;
	}
	free(l.name);
	free(t.name);
	return OUTCOME_OK;
}

/*
 * The tag's launch hook had no action pending: if the group's hook has
 * another name, complete that. OUTCOME_FATAL: the name could not be checked.
 */
static enum outcome
complete_renamed(struct agent *a, const char *result, char **cause)
{
	struct hook_recheck	 rc;
	enum outcome		 r;
	int			 hb = a->hb_hook == a->hook;

	if (outcome_retryable(r = agent_hook_recheck(a, 1, &a->hook, &rc, cause)))
		return r;	/* asked again with the next attempt */
	a->hook_tagged = 0;
	if (hb)
		arm_heartbeats(a, a->hook, rc.changed ? rc.timeout : 0);
	if (r != OUTCOME_OK)
		return r;
	if (!rc.changed)
		return OUTCOME_NOT_FOUND;
	return lifecycle_complete(&a->client.aws, a->group, a->hook, a->instance_id, result,
	    cause);
}

enum outcome
agent_complete(struct agent *a, const char *result)
{
	char		*cause = NULL, *what;
	enum outcome	 r;
	int		 waited;

	if (a->hook == NULL || a->completed)
		return OUTCOME_OK;
	a->owed = 1;
	what = xasprintf("%s for launch hook %s", result, a->hook);
	waited = agent_turn(a, what);
	free(what);
	/* In a big scale-out this call can wait on throttling for a while: say so. */
	if (!waited) {
		state_setf(&a->st.lifecycle, "sending %s for launch hook %s", result, a->hook);
		agent_save(a);
	}
	r = lifecycle_complete(&a->client.aws, a->group, a->hook, a->instance_id, result,
	    &cause);
	if (r == OUTCOME_NOT_FOUND && a->hook_tagged &&
	    (r = complete_renamed(a, result, &cause)) == OUTCOME_FATAL) {
		/* Nothing under the tag's name, and no way to learn another: say so, stop asking. */
		state_setf(&a->st.lifecycle, "launch hook %s (named by tag %s) has no pending "
		    "action, and the group's hooks cannot be read: %s", a->hook,
		    LIFECYCLE_TAG_LAUNCH, cause);
		log_error("lifecycle %s: launch hook %s has no pending action; "
		    "DescribeLifecycleHooks: %s", result, a->hook, cause);
		a->completed = 1;
	} else if (r == OUTCOME_OK) {
		state_setf(&a->st.lifecycle, "%s sent for launch hook %s", result, a->hook);
		log_info("lifecycle: %s sent for hook %s", result, a->hook);
		a->completed = 1;
		if (strcmp(result, "CONTINUE") == 0)
			a->st.marks[MARK_CONTINUE] = wall_now();
	} else if (r == OUTCOME_NOT_FOUND) {
		state_setf(&a->st.lifecycle, "launch hook %s already completed (no %s needed)",
		    a->hook, result);
		log_info("lifecycle: hook %s has no pending action", a->hook);
		a->completed = 1;
	} else {
		state_setf(&a->st.lifecycle, "%s for launch hook %s %s: %s", result, a->hook,
		    r == OUTCOME_FATAL ? "REFUSED by AWS" : "FAILED (retrying)", cause);
		log_error("lifecycle %s: %s", result, cause);
	}
	if (a->completed && a->hb_hook == a->hook)
		a->hb_hook = NULL;
	free(cause);
	return r;
}

void
agent_complete_again(struct agent *a, const char *result, double every)
{
	double	now = mono_now(), held;

	if (a->hook == NULL || a->completed || now < a->complete_next)
		return;
	if ((held = aws_held(&a->client.aws, AWS_AUTOSCALING)) > 0) {
		a->complete_next = now + held;
		return;
	}
	/* Refused (a role without the permission): a fleet of them would take the quota for good. */
	if (agent_complete(a, result) == OUTCOME_FATAL && !a->completed) {
		a->complete_pause = a->complete_pause < every ? 2 * every : 2 * a->complete_pause;
		if (a->complete_pause > AGENT_REFUSED_CAP)
			a->complete_pause = AGENT_REFUSED_CAP;
		log_info("lifecycle: %s asked again in %.0f s", result, a->complete_pause);
	} else
		a->complete_pause = every;
	a->complete_next = mono_now() + a->complete_pause;
	agent_save(a);
}

char *
agent_target_state(struct agent *a)
{
	struct imds	*imds = &a->client.imds;
	char		*s = NULL, *cause = NULL;
	double		 saved = imds->timeout;

	/* While serving, a slow IMDS must not hold up the loop for long. */
	if (a->st.phase == PHASE_SERVING || a->st.phase == PHASE_WARMED)
		imds->timeout = 3;
	if (imds_get(imds, "meta-data/autoscaling/target-lifecycle-state", &s,
	    &cause) != OUTCOME_OK) {
		/* Once is a blip; in a row it is blind to a scale-in or Standby (in a group): say so. */
		if (a->group != NULL && ++a->target_misses == AGENT_TARGET_MISSES)
			log_warn("target lifecycle state not read %d times in a row (a scale-in "
			    "or Standby would go unseen): %s", a->target_misses,
			    cause != NULL ? cause : "not found");
		else
			log_debug("target lifecycle state: %s", cause != NULL ? cause :
			    "not found");
		free(s);
		s = NULL;
	} else {
		if (a->target_misses >= AGENT_TARGET_MISSES)
			log_info("target lifecycle state read again");
		a->target_misses = 0;
		s[strcspn(s, "\r\n")] = '\0';
	}
	imds->timeout = saved;
	free(cause);
	return s;
}
