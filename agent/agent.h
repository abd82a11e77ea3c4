/* agent.h - the run context of `asg-agent run` and the services its parts share. */
#ifndef ASG_AGENT_H
#define ASG_AGENT_H

#include "app.h"
#include "client.h"
#include "halt.h"
#include "lifecycle.h"
#include "outcome.h"
#include "state.h"

struct config;
struct health_server;
struct retry;

/*
 * What `run` knows, from the first IMDS call to the end of the drain: shared
 * by the boot path (boot.c), the warm-pool wait (boot.c) and the running life
 * (serve.c), which call the services below and never each other.
 */
struct agent {
	struct config		*cfg;
	struct halt		 halt;		/* set by the signal handlers */
	struct state		 st;
	char			*state_path;	/* NULL: never saved (prefetch) */
	struct client		 client;
	int			 client_ready;
	struct health_server	*health;
	struct app		 app;
	int			 app_ready;	/* app_init succeeded */
	int			 app_started;
	char			*instance_id;
	char			*group;
	char			*hook;		/* launch hook, or NULL */
	char			*term_hook;	/* terminate hook as of hooks_read, or NULL */
	int			 term_timeout;
	struct lifecycle_hook	 tag_launch;	/* hooks the group's tags named (LIFECYCLE_TAG_*) */
	struct lifecycle_hook	 tag_term;
	int			 tag_warned;	/* an unreadable hook tag was logged */
	int			 dereg;		/* LIFECYCLE_TAG_DEREG; -1 none, -2 bad */
	int			 hook_tagged;	/* a->hook came from a tag: AWS may know it by another name */
	long			 scale_n;	/* an announced scale-out's count (PACE_TAG_SCALE_OUT); 0: none */
	double			 scale_at;	/* and when it was announced, Unix seconds */
	double			 hooks_read;	/* mono_now() of the DescribeLifecycleHooks; 0: never */
	int			 owed;		/* a launch result is queued (no heartbeats needed) */
	int			 hb_skipped;	/* a heartbeat was skipped since the last one sent */
	int			 hook_checked;
	int			 group_checked;	/* asked DescribeAutoScalingInstances */
	int			 completed;	/* launch action settled */
	char			*version;
	char			*sha256;	/* expected digest from the tag */
	int			 warm;		/* booting into a warm pool */
	int			 launch_fresh;	/* first boot of this instance: its launch-time tags are current */
	const char		*hb_hook;	/* hook owed heartbeats, or NULL */
	char			**hb_ref;	/* where a tag-named hb_hook's name lives, or NULL */
	int			 hb_launch;	/* hb_ref is the launch hook's */
	int			 hb_ok;		/* a heartbeat for hb_hook was answered OK */
	double			 hb_interval;
	double			 next_heartbeat;
	double			 last_extend;
	double			 last_metrics;	/* mono_now() of the last metrics page */
	int			 metrics_phase;	/* the phase that page showed */
	int			 target_misses;	/* target lifecycle state reads failed in a row */
	int			 hb_failed;	/* the last heartbeat got no answer or a refusal */
	double			 complete_next;	/* mono: a launch result not settled is asked again */
	double			 complete_pause;
};

void	agent_init(struct agent *, struct config *);
/* Stop the app if still ours, stop the endpoint, free everything; accepts NULL. */
void	agent_free(struct agent *);
/* Route SIGTERM, SIGINT, SIGALRM and SIGHUP into a->halt; ignore SIGPIPE. */
void	agent_signals(struct agent *);
/* Arm (or with 0, disarm) the deadline: SIGALRM then stops whatever waits. */
void	agent_deadline(int seconds);
/* IMDS, credentials and the API client, all giving up when we are stopped. */
void	agent_clients(struct agent *);

/* Write the state file (failures logged, not fatal) and the journal fields. */
void	agent_save(struct agent *);
/* A message to systemd (sd_notify(3)); outside a notify service, nobody to tell. */
void	agent_tell(const char *, ...) __attribute__((format(printf, 1, 2)));
/* A STATUS= line that is also logged. */
void	agent_notify(struct agent *, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Enter a phase: a timeline step, a STATUS= line, and the state file. */
void	agent_phase(struct agent *, int, const char *step, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
/*
 * Heartbeats for hook, as often as its timeout needs; a short one gets one
 * now. tagged: where the name lives when a tag named it (else NULL), so that
 * a rename is followed; launch: it is the launch hook.
 */
void	agent_heartbeats(struct agent *, const char *hook, int hook_timeout, char **tagged,
	    int launch);
/* Called from every wait and as bytes arrive: heartbeats, systemd's start timeout. */
void	agent_tick(void *);
/* Sleep in small slices so heartbeats and signals are never late. */
void	agent_wait(struct agent *, double);
/* Seconds to this instance's turn in an announced scale-out (drawn at the first ask); 0: none. */
double	agent_turn_in(struct agent *);
/*
 * Wait for that turn, ticking, before the first Auto Scaling call, what (the
 * call) in status meanwhile; 1 when it waited, 0 when its turn had come.
 */
int	agent_turn(struct agent *, const char *what);
/* A retry that pauses at the given pace and ends on stop (or, patient, on hurry). */
void	agent_retry(struct agent *, struct retry *, double base, double cap,
	    double deadline, int patient, int tick);
/* Stop the app if we started (or adopted) it; what names it in the log. */
void	agent_stop_app(struct agent *, const char *what);
/* What a recheck of a tag-named hook found. */
struct hook_recheck {
	int	changed;	/* the group's hook has another name, now in *hook */
	int	none;		/* the group has no hook of that transition */
	int	timeout;	/* the group's hook's HeartbeatTimeout */
};
/*
 * A hook named by a tag had no pending action: the tag may be older than a
 * rename of the hook. One DescribeLifecycleHooks (launch: the launch hook's,
 * else the terminate hook's) fills rc; once it answers, that answer also
 * serves a scale-in and neither hook tag is used again. Returns the call's
 * outcome.
 */
enum outcome agent_hook_recheck(struct agent *, int launch, char **hook, struct hook_recheck *,
	    char **cause);
/*
 * CompleteLifecycleAction for the launch hook; sets a->completed when
 * settled. Returns lifecycle_complete's outcome (OUTCOME_OK with no hook).
 */
enum outcome agent_complete(struct agent *, const char *result);
/*
 * agent_complete for a launch result not settled yet, from a loop: when
 * a->complete_next is due, and not while AWS's throttling holds the call
 * (then later); every seconds apart, doubling up to 5 minutes once AWS
 * refused it.
 */
void	agent_complete_again(struct agent *, const char *result, double every);
/* Read IMDS's target lifecycle state (allocated), or NULL. */
char	*agent_target_state(struct agent *);

#endif
