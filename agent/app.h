/* app.h - the application: a systemd unit started over D-Bus, or a command the agent supervises. */
#ifndef ASG_APP_H
#define ASG_APP_H

#include <sys/types.h>

struct halt;

struct app {
	char	*unit;		/* systemd unit, or NULL */
	char	**argv;		/* command, or NULL */
	char	**envp;		/* the agent's environment plus ASG_AGENT_* */
	char	*release_dir;
	pid_t	 pid;		/* command's process (group leader) */
	int	 exited;
	int	 status;	/* wait status once exited */
	int	 adopted;	/* started by an earlier agent: not our child */
	int	 group_gone;	/* the leader's group emptied: its id may be another's now */
	unsigned long long start; /* adopted: its start time, for a reused pid (0: unknown) */
	const struct halt *halt;	/* give up waiting when stopped */
	void	(*tick)(void *);	/* called while waiting: heartbeats */
	void	*tick_arg;
};

/* Split a command line into argv: whitespace, '...' and "..." quoting, backslash escapes. */
int	app_split(const char *, char ***, char **);
void	app_argv_free(char **);
/* Set up from the config: exactly one of unit and command (non-empty). */
int	app_init(struct app *, const char *unit, const char *command, const char *release_dir,
	    const char *version, const char *instance_id, char **);
void	app_free(struct app *);
/* Write state_dir/release.env (for the unit's EnvironmentFile=) atomically. */
int	app_write_env(const char *state_dir, const char *version, const char *release_dir,
	    const char *instance_id, char **);
/* Run a program inside the release (relative path) with a timeout. */
int	app_pre_start(struct app *, const char *prog, double timeout, const struct halt *,
	    char **);
/* Start the app: RestartUnit and wait for the job, or fork and exec the command. */
int	app_start(struct app *, double timeout, char **);
/*
 * Take over a command an earlier agent started (after a crash), started at
 * start (state_process_start): a pid the kernel has given to another process
 * since is not the app, and is never signalled.
 */
void	app_adopt(struct app *, pid_t, unsigned long long start);
/* 0 while running; -1 with a cause once a command has exited or a unit is not active. */
int	app_check(struct app *, double timeout, char **);
/*
 * Stop it: StopUnit (after a stop signal only queued: the unit stops after us),
 * or SIGTERM to the group then SIGKILL after timeout seconds.
 */
int	app_stop(struct app *, double timeout, char **);
/* `systemctl show --property=PROPS [UNIT]` (no unit: the manager) into out. */
struct buf;
int	app_systemctl_show(const char *unit, const char *props, struct buf *out, char **);
/* A one-line description for the status view. */
char	*app_describe(const struct app *);

#endif
