/* serve.c - the running life: lifecycle watch, continuous health, standby, drain, reload. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "appprobe.h"
#include "cloudwatch.h"
#include "config.h"
#include "health.h"
#include "lifecycle.h"
#include "log.h"
#include "retry.h"
#include "serve.h"
#include "state.h"
#include "util.h"

#define SERVE_COMPLETE_RETRY	5.0	/* seconds between CONTINUE retries */
#define SERVE_CALL_BUDGET	5.0	/* seconds a call from the serving loop may retry */
#define SERVE_RETRY_BASE	1.0	/* first terminate-hook retry ceiling, seconds */
#define SERVE_RETRY_CAP		2.0
/*
 * A terminate action exists only once the load balancer's deregistration
 * delay is over (300 s by default, at most 3600 s): "No active Lifecycle
 * Action" is retried that long on a scale-in (a minute when systemd stops
 * us), the pauses doubling up to SERVE_NOT_PENDING_CAP.
 */
#define SERVE_NOT_PENDING_WAIT	3660.0
#define SERVE_NOT_PENDING_STOP	60.0
#define SERVE_NOT_PENDING_CAP	30.0
#define SERVE_DEREG_EARLY	2.0	/* seconds before a told delay's end we ask closely */
#define SERVE_HOOKS_FRESH	900.0	/* seconds the boot's DescribeLifecycleHooks answer serves */
#define SERVE_CLOUDWATCH_RETRY	60.0	/* seconds before a PutMetricData is asked again */
#define SERVE_LB_SAVE_EVERY	10.0	/* seconds between saves of the load balancer's counts */
#define SERVE_CLOUDWATCH_TRIES	5

struct serve {
	struct agent	*a;
	int		 standby;
	int		 draining;
	double		 unhealthy_since;	/* mono; 0: healthy */
	int		 replaced;		/* SetInstanceHealth sent */
	char		*last_failure;
	char		*last_target;
	int		 cw_sent;		/* PutMetricData calls settled (0, 1 or 2) */
	int		 cw_tries;		/* of the next one */
	double		 cw_next;		/* mono; when to try it */
	double		 lb_saved;		/* mono; the load balancer's counts last saved */
};

/* The endpoint's answer follows from standby, draining and the app's health. */
static void
update_endpoint(struct serve *s)
{
	struct agent	*a = s->a;
	const char	*reason = NULL;

	if (s->draining)
		reason = "draining";
	else if (s->standby)
		reason = "standby";
	else if (s->unhealthy_since > 0)
		reason = "app unhealthy";
	health_set(a->health, reason == NULL, reason);
	if (reason == NULL)
		state_set(&a->st.health, "healthy");
	else if (s->unhealthy_since > 0 && s->last_failure != NULL)
		state_setf(&a->st.health, "%s (503): %s%s", reason, s->last_failure,
		    s->replaced ? "; SetInstanceHealth Unhealthy sent" : "");
	else
		state_setf(&a->st.health, "%s (503)", reason);
}

/* One continuous-health probe: 503 after unhealthy_after failures, replacement after the grace. */
static void
probe(struct serve *s)
{
	struct agent	*a = s->a;
	char		*err = NULL;
	int		 ok, was = s->unhealthy_since > 0;
	double		 t;

	/* At most an interval: the loop answers signals and the target state between probes. */
	t = a->cfg->probe_timeout < a->cfg->health_interval ? a->cfg->probe_timeout :
	    a->cfg->health_interval;
	ok = app_check(&a->app, t, &err) == 0 && appprobe_healthy(a->cfg->health_url, t, &err) == 1;
	a->st.probes++;
	if (ok) {
		a->st.failing = 0;
		a->st.last_probe_ok = wall_now();
		if (was) {
			log_info("app healthy again");
			s->unhealthy_since = 0;
			s->replaced = 0;
			update_endpoint(s);
			agent_save(a);
		}
		goto out;
	}
	a->st.probe_failures++;
	a->st.failing++;
	free(s->last_failure);
	s->last_failure = str_vis(err != NULL ? err : "no answer");
	log_warn("app health probe failed (%lu in a row): %s", a->st.failing, s->last_failure);
	if (!was && a->st.failing >= (unsigned long)a->cfg->unhealthy_after) {
		s->unhealthy_since = mono_now();
		log_error("app unhealthy after %lu failed probes: the endpoint answers 503",
		    a->st.failing);
		update_endpoint(s);
	}
	/* Held by the account's throttling: asked at a later probe, the loop not blocked. */
	if (s->unhealthy_since > 0 && !s->replaced && a->cfg->replace_unhealthy &&
	    mono_now() - s->unhealthy_since >= a->cfg->unhealthy_grace &&
	    aws_held(&a->client.aws, AWS_AUTOSCALING) <= 0) {
		free(err);
		err = NULL;
		if (lifecycle_set_unhealthy(&a->client.aws, a->instance_id, &err) == OUTCOME_OK) {
			log_error("app did not recover within %d s: SetInstanceHealth Unhealthy "
			    "sent, the group will replace this instance", a->cfg->unhealthy_grace);
			s->replaced = 1;
			update_endpoint(s);
		} else
			log_error("SetInstanceHealth: %s", err);
	}
	agent_save(a);
out:
	free(err);
}

/* The load balancer's checks as the endpoint saw them: into the state, logged once healthy. */
static void
watch_lb(struct serve *s)
{
	struct agent		*a = s->a;
	struct state		*st = &a->st;
	struct health_lb	 lb;
	int			 mark;

	health_lb(a->health, &lb);
	if (lb.checks == st->lb_checks && lb.healthy == st->marks[MARK_LB_HEALTHY])
		return;
	mark = lb.first != st->marks[MARK_LB_FIRST];
	st->marks[MARK_LB_FIRST] = lb.first;
	st->lb_checks = lb.checks;
	st->lb_interval = lb.interval;
	if (lb.healthy > 0 && st->marks[MARK_LB_HEALTHY] == 0) {
		mark = 1;
		st->marks[MARK_LB_HEALTHY] = lb.healthy;
		log_info("load balancer healthy (as seen from here): %d checks in a row, "
		    "%.3f s after serving", st->lb_threshold,
		    lb.healthy - st->marks[MARK_SERVING]);
	}
	/* Every node of an ALB checks every few seconds: counts alone are saved now and then. */
	if (!mark && mono_now() - s->lb_saved < SERVE_LB_SAVE_EVERY)
		return;
	s->lb_saved = mono_now();
	agent_save(a);
}

/*
 * The milestones to CloudWatch: once serving, once the load balancer counts
 * us healthy; only after CONTINUE, so the hook never waits on them. Each
 * call retries as every call does; a failed one is asked again later, a few
 * times, and a refused one (no permission) is given up on.
 */
static void
put_metrics(struct serve *s)
{
	struct agent	*a = s->a;
	enum outcome	 o;
	char		*err = NULL;
	int		 put = s->cw_sent == 0 ? CLOUDWATCH_SERVING : CLOUDWATCH_LB_HEALTHY;

	if (!a->cfg->cloudwatch || a->group == NULL || s->cw_sent == 2 ||
	    mono_now() < s->cw_next || (a->hook != NULL && !a->completed) ||
	    aws_held(&a->client.aws, AWS_CLOUDWATCH) > 0)
		return;
	if (put == CLOUDWATCH_LB_HEALTHY && a->st.marks[MARK_LB_HEALTHY] == 0)
		return;
	o = cloudwatch_put(&a->client.aws, a->group, &a->st, put, &err);
	if (o == OUTCOME_OK)
		log_info("milestones sent to CloudWatch (%s)", put == CLOUDWATCH_SERVING ?
		    "serving" : "load balancer healthy");
	else if (outcome_retryable(o) && ++s->cw_tries < SERVE_CLOUDWATCH_TRIES) {
		log_warn("CloudWatch PutMetricData (will retry): %s", err);
		s->cw_next = mono_now() + SERVE_CLOUDWATCH_RETRY;
		goto out;
	} else
		log_warn("CloudWatch PutMetricData: %s; not sent", err);
	s->cw_sent++;
	s->cw_tries = 0;
	agent_save(a);
out:
	free(err);
}

/* While stopping, retries go on until a second stop signal (or no deadline at all). */
static void
serve_retry(struct agent *a, struct retry *r, double deadline)
{
	agent_retry(a, r, SERVE_RETRY_BASE, SERVE_RETRY_CAP, deadline, 1, 0);
}

/*
 * A tag-named terminate hook had no action: check its name once. *next: 1
 * when it was renamed (in *hook now, its timeout in *timeout), -1 when the
 * group has no terminate hook, else 0 (a retryable outcome: asked again on
 * the next pass).
 */
static enum outcome
terminate_renamed(struct agent *a, char **hook, int *tagged, int *timeout, int *next,
    char **cause)
{
	struct hook_recheck	rc;
	enum outcome		r;

	*next = 0;
	if (outcome_retryable(r = agent_hook_recheck(a, 0, hook, &rc, cause)))
		return r;
	*tagged = 0;
	if (r != OUTCOME_OK)
		log_warn("terminate hook %s: DescribeLifecycleHooks: %s", *hook, *cause);
	else if (rc.none)
		*next = -1;
	else if (rc.changed) {
		*next = 1;
		*timeout = rc.timeout;
	}
	return r;
}

/*
 * When a scale-in seen at seen (mono) gets its terminate action at the
 * latest, as the group's tag tells the load balancers' deregistration delay
 * (a target with no connection left is deregistered sooner); 0: not told.
 * The scale-in began up to one IMDS poll before we saw it: asking that much
 * late costs a poll, asking early a call.
 */
static double
action_expected(struct agent *a, double seen)
{
	if (a->dereg <= 0)
		return 0;
	return seen + a->dereg - SERVE_DEREG_EARLY;
}

/* A pause between two asks, short enough that an action come meanwhile hears from us in time. */
static double
within_timeout(double pause, int timeout)
{
	return timeout > 0 && timeout / 3.0 < pause ? timeout / 3.0 : pause;
}

/* The longest pause between two asks while the action is missing. */
static double
not_pending_cap(int timeout)
{
	return within_timeout(SERVE_NOT_PENDING_CAP, timeout);
}

/*
 * How long to wait between asks before a told delay's end: a quarter of it
 * (an action that comes early, a target with no connection left, is found
 * that late at most), no less than 30 s, and within a third of the hook's
 * timeout, so that an early action hears from us in time; every 30 s when
 * that timeout is not known (a hook named in the configuration alone).
 */
static double
told_pace(struct agent *a, int timeout)
{
	double	p = a->dereg / 4.0;

	if (timeout <= 0)
		return SERVE_NOT_PENDING_CAP;
	return within_timeout(p > SERVE_NOT_PENDING_CAP ? p : SERVE_NOT_PENDING_CAP, timeout);
}

/* What status says while the action is missing. */
static void
say_waiting(struct agent *a, const char *hook, double expect, int beat)
{
	const char	*serves = beat ? "; the app serves the load balancer's last requests "
			    "meanwhile" : "";
	char		 at[32];
	time_t		 t;

	if (expect > mono_now()) {
		t = (time_t)(wall_now() + expect - mono_now());
		strftime(at, sizeof at, "%H:%M:%S UTC", gmtime(&t));
		state_setf(&a->st.lifecycle, "terminate hook %s: waiting for its action, "
		    "expected by %s (the load balancers' deregistration delay, %d s, from tag "
		    "%s)%s", hook, at, a->dereg, LIFECYCLE_TAG_DEREG, serves);
	} else
		state_setf(&a->st.lifecycle, "terminate hook %s: waiting for its action "
		    "(AWS registers it once the load balancer has deregistered the "
		    "instance)%s", hook, serves);
	agent_save(a);
}

/*
 * Complete the terminate hook (with beat, send it a heartbeat instead: one
 * answered means the action exists), retrying while AWS has not registered
 * the action yet, and for as long as it gives no answer (a scale-in of
 * hundreds of instances shares one Auto Scaling bucket; the hook's own
 * timeout is the backstop). A hook named by a tag is checked once against
 * AWS when it has no action: the tag may be older than a rename (*hook and
 * *tagged follow it; *hook NULL when the group has no terminate hook).
 * timeout: the hook's HeartbeatTimeout (0: not known); expect (mono, 0: not
 * told): the action comes by then, so until then we ask at told_pace rather
 * than every 30 s. Returns 0 once AWS answered OK, -2
 * when AWS refused the call itself (a role without the permission), else -1
 * (out of time, stopped, no hook).
 */
static int
terminate_action(struct agent *a, char **hook, int *tagged, int timeout, double expect,
    double wait, int beat)
{
	struct retry	 rt;
	char		*cause = NULL;
	double		 until = mono_now() + wait, settled, d, probe;
	enum outcome	 r;
	int		 next, ret = -1, waiting = 0;

	/* Before the told delay's end "no action" is the expected answer, not a rename. */
	settled = expect > 0 ? expect + a->cfg->poll + 2 * SERVE_DEREG_EARLY : 0;
	probe = told_pace(a, timeout);
	/* The hook's own timeout is the backstop: no deadline here. A beat stops at a signal. */
	if (beat)
		agent_retry(a, &rt, SERVE_RETRY_BASE, SERVE_RETRY_CAP, HUGE_VAL, 0, 1);
	else
		serve_retry(a, &rt, HUGE_VAL);
	for (;;) {
		r = beat ? lifecycle_heartbeat(&a->client.aws, a->group, *hook, a->instance_id,
		    &cause) : lifecycle_complete(&a->client.aws, a->group, *hook,
		    a->instance_id, "CONTINUE", &cause);
		if (r == OUTCOME_OK) {
			if (!beat) {
				state_setf(&a->st.lifecycle, "CONTINUE sent for terminate hook %s",
				    *hook);
				log_info("lifecycle: CONTINUE sent for terminate hook %s", *hook);
			}
			ret = 0;
			break;
		}
		if (r == OUTCOME_NOT_FOUND && *tagged && mono_now() >= settled) {
			r = terminate_renamed(a, hook, tagged, &timeout, &next, &cause);
			if (next > 0) {
				probe = told_pace(a, timeout);
				if (waiting)
					rt.cap = not_pending_cap(timeout);
				continue;	/* renamed: ask for that one now */
			}
			if (next < 0) {
				state_set(&a->st.lifecycle, "no terminate hook on the group");
				free(*hook);
				*hook = NULL;
				break;
			}
			/* Not known yet whether the name is right: no countdown meanwhile. */
			if (outcome_retryable(r))
				until = mono_now() + wait;
			else
				r = OUTCOME_NOT_FOUND;
		}
		if (r == OUTCOME_FATAL)
			ret = -2;
		if (r == OUTCOME_FATAL || a->halt.signals > 1 ||
		    (r == OUTCOME_NOT_FOUND && mono_now() >= until)) {
			state_setf(&a->st.lifecycle, "terminate hook %s not %s: %s", *hook,
			    beat ? "registered" : "completed",
			    r == OUTCOME_NOT_FOUND ? "no active lifecycle action" : cause);
			log_warn("terminate hook %s not %s: %s", *hook,
			    beat ? "registered" : "completed",
			    r == OUTCOME_NOT_FOUND ? "no active lifecycle action" : cause);
			break;
		}
		if (outcome_retryable(r))
			log_warn("terminate hook %s (will retry): %s", *hook, cause);
		/* Not pending yet: the deregistration delay may run for minutes more. */
		if (r == OUTCOME_NOT_FOUND && !waiting) {
			waiting = 1;
			rt.cap = not_pending_cap(timeout);
			say_waiting(a, *hook, expect, beat);
		}
		/* Told when it comes at the latest: ask at the hook's pace till then. */
		if (r == OUTCOME_NOT_FOUND && (d = expect - mono_now()) > 0 && !a->halt.stop) {
			log_debug("terminate hook %s: no action yet, asking again in %.0f s", *hook,
			    d < probe ? d : probe);
			agent_wait(a, d < probe ? d : probe);
			continue;
		}
		if (retry_pause(&rt, r, 1) != 0)
			break;
	}
	free(cause);
	return ret;
}

/*
 * The terminate hook's name: configured, named by the group's tag (*tagged
 * set), or asked for; with persist, asked again for as long as AWS gives
 * no answer (until a second stop signal).
 */
static enum outcome
terminate_hook(struct agent *a, int persist, char **hook, int *timeout, int *tagged)
{
	struct retry		 rt;
	struct lifecycle_hook	 launch, term = { NULL, 0 };
	char			*err = NULL;
	enum outcome		 r;

	*tagged = 0;
	if (*a->cfg->terminate_hook != '\0') {
		*hook = xstrdup(a->cfg->terminate_hook);
		/* Its timeout paces the asks: from the tag or the boot's read when they name it. */
		if (a->tag_term.name != NULL && strcmp(a->tag_term.name, *hook) == 0)
			*timeout = a->tag_term.timeout;
		else if (a->term_hook != NULL && strcmp(a->term_hook, *hook) == 0)
			*timeout = a->term_timeout;
		return OUTCOME_OK;
	}
	if (a->tag_term.name != NULL) {
		log_debug("terminate hook %s: from tag %s", a->tag_term.name,
		    LIFECYCLE_TAG_TERMINATE);
		*hook = xstrdup(a->tag_term.name);
		*timeout = a->tag_term.timeout;
		*tagged = 1;
		return OUTCOME_OK;
	}
	if (a->hooks_read > 0 && mono_now() - a->hooks_read < SERVE_HOOKS_FRESH) {
		log_debug("terminate hook %s: from the hooks read %.0f s ago",
		    a->term_hook != NULL ? a->term_hook : "(none)", mono_now() - a->hooks_read);
		*hook = a->term_hook != NULL ? xstrdup(a->term_hook) : NULL;
		*timeout = a->term_timeout;
		return OUTCOME_OK;
	}
	serve_retry(a, &rt, HUGE_VAL);
	while (outcome_retryable(r = lifecycle_find_hooks(&a->client.aws, a->group, &launch,
	    &term, &err)) && persist && a->halt.signals < 2) {
		log_warn("DescribeLifecycleHooks (will retry): %s", err);
		if (retry_pause(&rt, r, 1) != 0)
			break;
	}
	if (r != OUTCOME_OK)
		log_warn("DescribeLifecycleHooks: %s", err);
	free(launch.name);
	*hook = term.name;
	*timeout = term.timeout;
	free(err);
	return r;
}

/*
 * Leave the fleet without dropping a request: 503 first, wait while the load
 * balancer stops sending (on a scale-in, until the terminate action exists:
 * the load balancer has drained the instance), stop the app, then let the
 * ASG go on. stopping:
 * systemd stops us (a shutdown waits on it), so a terminate action that is
 * not there is asked for a minute, not through a deregistration delay.
 */
static int
drain(struct serve *s, int terminating, int stopping, const char *why)
{
	struct agent	*a = s->a;
	char		*hook = NULL;
	double		 end, budget, expect = 0, seen = mono_now();
	enum outcome	 found = OUTCOME_OK;
	int		 timeout = 0, tagged = 0;

	/* In Standby the load balancer let the instance go already: its action comes at once. */
	if (terminating && !stopping && !s->standby)
		expect = action_expected(a, seen);
	s->draining = 1;
	update_endpoint(s);	/* before anything slow: the next probe must see 503 */
	a->hb_ok = 0;		/* the boot's launch-hook heartbeats say nothing of this hook */
	a->st.drain_until = wall_now() + a->cfg->drain;
	agent_phase(a, PHASE_DRAINING, "drain", "%s: draining for %d s", why, a->cfg->drain);
	if (terminating && a->group != NULL) {
		found = terminate_hook(a, 0, &hook, &timeout, &tagged);
		if (hook != NULL)
			agent_heartbeats(a, hook, timeout, tagged ? &hook : NULL, 0);
	}
	end = mono_now() + a->cfg->drain;
	/* A second stop signal cuts the drain short. */
	while (mono_now() < end && a->halt.signals < 2) {
		sleep_for(0.25, NULL);
		agent_tick(a);
	}
	a->hb_hook = NULL;
	a->hb_ref = NULL;
	/* No answer before the drain (a fleet-wide scale-in): ask again now. */
	if (outcome_retryable(found))
		found = terminate_hook(a, 1, &hook, &timeout, &tagged);
	tagged = tagged && a->tag_term.name != NULL;
	/*
	 * Until the action exists the load balancer is still draining the
	 * instance (its deregistration delay): the app finishes its requests.
	 * Once the action was seen, or waited for, a CONTINUE that finds none
	 * is asked for a minute; when heartbeats were refused, for the delay.
	 */
	budget = SERVE_NOT_PENDING_STOP;
	if (hook != NULL && !stopping && !a->hb_ok) {
		a->st.drain_until = 0;
		if (terminate_action(a, &hook, &tagged, timeout, expect, SERVE_NOT_PENDING_WAIT,
		    1) == -2)
			budget = SERVE_NOT_PENDING_WAIT;
	}
	/* The drain is over: status must not say it goes on while the app stops. */
	a->st.drain_until = 0;
	if (hook != NULL)
		state_setf(&a->st.lifecycle, "terminate hook %s: stopping the app, then CONTINUE",
		    hook);
	agent_save(a);
	agent_stop_app(a, "app");
	if (hook != NULL)
		terminate_action(a, &hook, &tagged, timeout, 0, budget, 0);
	else if (terminating && found != OUTCOME_OK)
		state_set(&a->st.lifecycle, "terminate hook not known: the group's lifecycle "
		    "hooks could not be read (DescribeLifecycleHooks, see the log); the hook, if "
		    "any, waits for its timeout");
	else if (terminating)
		state_set(&a->st.lifecycle, "no terminate hook on the group");
	agent_phase(a, PHASE_STOPPED, "stopped", "app stopped after draining");
	state_step_end(&a->st);
	agent_save(a);
	free(hook);
	return 0;
}

int
serve_leave(struct agent *a)
{
	char	*hook = NULL;
	int	 timeout = 0, tagged = 0;

	agent_phase(a, PHASE_DRAINING, "leave", "terminated from the warm pool: "
	    "completing the terminate hook");
	if (a->group != NULL) {
		terminate_hook(a, 1, &hook, &timeout, &tagged);
		/* AWS registers the action as it enters Warmed:Terminating:Wait: no delay to wait out. */
		tagged = tagged && a->tag_term.name != NULL;
		if (hook != NULL)
			terminate_action(a, &hook, &tagged, timeout, 0, SERVE_NOT_PENDING_STOP, 0);
		else
			state_set(&a->st.lifecycle, "no terminate hook on the group");
	}
	agent_phase(a, PHASE_STOPPED, "stopped", "terminated from the warm pool");
	state_step_end(&a->st);
	agent_save(a);
	free(hook);
	return 0;
}

/* SIGHUP: apply what can change while running; say what needs a restart. */
static void
reload(struct serve *s)
{
	struct agent	*a = s->a;
	struct config	 next;
	struct buf	 applied = { NULL, 0, 0 }, ignored = { NULL, 0, 0 };
	char		*errors = NULL;

	a->halt.reload = 0;
	if (config_load(&next, a->cfg->path, 0, &errors) != 0) {
		log_error("reload: keeping the running configuration: %s", errors);
		free(errors);
		config_free(&next);
		return;
	}
	if (a->cfg->verbose) {
		next.verbose = 1;
		next.log_level = LOGL_DEBUG;
	}
	config_reload(a->cfg, &next, &applied, &ignored);
	log_set_level(a->cfg->log_level);
	if (applied.len > 0)
		log_info("reload: applied %s", applied.data);
	if (ignored.len > 0)
		log_warn("reload: not applied until the agent restarts: %s", ignored.data);
	if (applied.len == 0 && ignored.len == 0)
		log_info("reload: nothing changed");
	buf_free(&applied);
	buf_free(&ignored);
	config_free(&next);
}

/*
 * A new target lifecycle state: standby, back in service, or leaving: 1
 * terminating, 2 back to the warm pool (a scale-in with ReuseOnScaleIn, whose
 * terminate hook AWS fires at Warmed:Pending:Wait).
 */
static int
on_target(struct serve *s, const char *target)
{
	struct agent	*a = s->a;

	if (s->last_target == NULL || strcmp(s->last_target, target) != 0) {
		log_info("target lifecycle state: %s", target);
		free(s->last_target);
		s->last_target = xstrdup(target);
		state_set(&a->st.target_state, target);
		agent_save(a);
	}
	if (strcmp(target, "Terminated") == 0)
		return 1;
	if (strncmp(target, "Warmed:", 7) == 0)
		return 2;
	if (strcmp(target, "Standby") == 0 && !s->standby) {
		s->standby = 1;
		update_endpoint(s);
		agent_notify(a, "serving: standby, health endpoint 503, app kept running");
		agent_save(a);
	} else if (strcmp(target, "InService") == 0 && s->standby) {
		s->standby = 0;
		update_endpoint(s);
		agent_notify(a, "serving: back in service");
		agent_save(a);
	}
	return 0;
}

int
serve_run(struct agent *a, int *to_pool)
{
	struct serve	 s;
	char		*target;
	double		 now, next_poll, next_probe, budget;
	int		 ret, terminating;

	*to_pool = 0;
	memset(&s, 0, sizeof s);
	s.a = a;
	now = mono_now();
	next_poll = now;
	next_probe = now + a->cfg->health_interval;
	a->complete_next = now + SERVE_COMPLETE_RETRY;
	/* Its probes and polls wait on each call: a failing API must not blind it for a minute. */
	budget = a->client.aws.api_timeout;
	if (a->client.aws.api_timeout > SERVE_CALL_BUDGET)
		a->client.aws.api_timeout = SERVE_CALL_BUDGET;
	while (!a->halt.stop) {
		if (a->halt.reload)
			reload(&s);
		now = mono_now();
		/* A CONTINUE that failed is asked again: the hook must not time out on a healthy app. */
		agent_complete_again(a, "CONTINUE", SERVE_COMPLETE_RETRY);
		if (now >= next_poll) {
			next_poll = now + a->cfg->poll;
			if ((target = agent_target_state(a)) != NULL) {
				terminating = on_target(&s, target);
				free(target);
				if (terminating) {
					a->client.aws.api_timeout = budget;
					*to_pool = terminating == 2;
					ret = drain(&s, 1, 0, *to_pool ? "the group is putting this "
					    "instance back in its warm pool" : "the group is "
					    "terminating this instance");
					goto out;
				}
			}
		}
		if (now >= next_probe) {
			next_probe = now + a->cfg->health_interval;
			probe(&s);
		}
		watch_lb(&s);
		put_metrics(&s);
		agent_tick(a);
		sleep_for(0.1, &a->halt);
	}
	/* Stopped by systemd: 503 before anything slow; complete the terminate hook only if pending. */
	a->client.aws.api_timeout = budget;
	s.draining = 1;
	update_endpoint(&s);
	terminating = 0;
	if ((target = agent_target_state(a)) != NULL) {
		terminating = strcmp(target, "Terminated") == 0;
		free(target);
	}
	ret = drain(&s, terminating, 1, "stop requested");
out:
	free(s.last_failure);
	free(s.last_target);
	return ret;
}
