/* boot.h - `asg-agent run`: from a fresh instance to a serving app, or a clean ABANDON. */
#ifndef ASG_BOOT_H
#define ASG_BOOT_H

#include <signal.h>

#include "app.h"
#include "aws.h"
#include "creds.h"
#include "imds.h"
#include "state.h"

struct config;
struct health_server;

/* What `run` knows; shared by the boot path (boot.c) and the running life (serve.c). */
struct boot {
	struct config		*cfg;
	struct state		 st;
	char			*state_path;
	struct imds		 imds;
	struct creds_provider	 creds;
	struct aws		 aws;
	struct health_server	*health;
	struct app		 app;
	int			 app_ready;	/* app_init succeeded */
	int			 app_started;
	char			*instance_id;
	char			*group;
	char			*hook;		/* launch hook, or NULL */
	int			 hook_checked;
	int			 group_checked;	/* asked DescribeAutoScalingInstances */
	int			 completed;	/* launch action settled */
	char			*version;
	char			*sha256;	/* expected digest from the tag */
	int			 warm;		/* booting into a warm pool */
	int			 launch_fresh;	/* first boot of this instance: its launch-time tags are current */
	const char		*hb_hook;	/* hook owed heartbeats, or NULL */
	double			 hb_interval;
	double			 next_heartbeat;
	double			 last_extend;
};

/* Set by signal handlers, read by every wait. */
extern volatile sig_atomic_t	boot_stop;	/* SIGTERM/SIGINT, or the deadline */
extern volatile sig_atomic_t	boot_signals;	/* how many stop signals so far */
extern volatile sig_atomic_t	boot_reload;	/* SIGHUP */
extern volatile sig_atomic_t	boot_hurry;	/* a second stop signal: cut waits short */

/* Expand {version} {group} {region} {instance_id} {url}; values are percent-encoded when encode. */
char	*boot_expand(const char *, const char *const vars[][2], int encode, char **);
/* Check what run needs beyond check-config; returns 0 or -1 with a cause. */
int	boot_check_config(const struct config *, char **);
/*
 * Bake time: fetch, verify and install a release (version and digest given,
 * or read from the group's tags) without starting anything, so that `run`
 * at boot finds it installed. Returns 0 or -1 with a cause.
 */
int	boot_prefetch(struct config *, const char *version, const char *sha256,
	    const char *group, char **);
/* Run the boot path and then serve until stopped. Returns the process exit code. */
int	boot_run(struct config *);

/* Shared by boot.c and serve.c. */
void	boot_save(struct boot *);
void	boot_phase(struct boot *, int, const char *step, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
void	boot_notify(struct boot *, const char *, ...) __attribute__((format(printf, 2, 3)));
void	boot_tick(void *);
void	boot_heartbeats(struct boot *, const char *hook, int hook_timeout);
void	boot_wait(struct boot *, double);
/* Stop the app if we started (or adopted) it; what names it in the log. */
void	boot_stop_app(struct boot *, const char *what);
/*
 * CompleteLifecycleAction for the launch hook; sets b->completed when
 * settled. Returns lifecycle_complete's outcome (OUTCOME_OK with no hook).
 */
enum outcome boot_complete(struct boot *, const char *result);

/* serve.c: the running life after the boot; returns the exit code. */
int	serve_run(struct boot *);
/* Read IMDS's target lifecycle state (allocated), or NULL. */
char	*serve_target_state(struct boot *);

#endif
