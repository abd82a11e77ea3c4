/* state.h - what the agent is doing, kept in state_dir/state.json for `asg-agent status`. */
#ifndef ASG_STATE_H
#define ASG_STATE_H

enum phase {
	PHASE_STARTING_AGENT,
	PHASE_WAITING_FOR_IMDS,
	PHASE_WAITING_FOR_TAG,
	PHASE_FETCHING,
	PHASE_INSTALLING,
	PHASE_STARTING,
	PHASE_WAITING_FOR_HEALTH,
	PHASE_SERVING,
	PHASE_WARMED,		/* in a warm pool: installed, verified, not serving */
	PHASE_DRAINING,
	PHASE_STOPPED,
	PHASE_FAILED,
	PHASE_COUNT
};

#define STATE_MAX_STEPS		32
#define STATE_MAX_COUNTERS	32

struct state_step {
	char	*name;
	double	 start;		/* wall clock */
	double	 seconds;	/* -1 while running */
	int	 polls;
	char	*detail;
};

struct state_counter {
	char		*action;
	unsigned long	 calls;
	unsigned long	 throttled;
};

struct state {
	int			 phase;
	int			 pid;
	unsigned long long	 pid_start;	/* with boot_id: which process pid was */
	char			*boot_id;
	double			 boot_start;
	double			 updated;
	char			*version;
	char			*version_source;
	char			*instance_id;
	char			*group;
	char			*region;
	char			*artifact;	/* URL as expanded */
	char			*sha256;	/* digest of the installed artifact */
	char			*verification;	/* what was checked */
	char			*release_dir;
	int			 downloaded;	/* 0: reused an installed release */
	char			*app;
	char			*health;
	char			*lifecycle;
	char			*error;
	int			 app_pid;	/* a command's process, to adopt after a restart */
	unsigned long long	 app_pid_start;
	char			*target_state;	/* IMDS autoscaling/target-lifecycle-state */
	double			 drain_until;	/* wall clock; 0: not draining */
	unsigned long		 probes;	/* continuous health, after serving */
	unsigned long		 probe_failures;
	unsigned long		 failing;	/* failures in a row */
	double			 last_probe_ok;	/* wall clock */
	struct state_step	 steps[STATE_MAX_STEPS];
	int			 nsteps;
	struct state_counter	 counters[STATE_MAX_COUNTERS];
	int			 ncounters;
};

const char *state_phase_name(int);
/* A process's start time in clock ticks since boot (0 if it does not exist). */
unsigned long long state_process_start(int);
/* This boot's id (allocated), so pids from another boot are never trusted. */
char	*state_boot_id(void);
/* Whether the process recorded in st (pid, start time, boot) is still running. */
int	state_process_alive(const struct state *, int pid, unsigned long long start);
int	state_phase_parse(const char *);
void	state_init(struct state *);
void	state_free(struct state *);
/* Replace a string field (NULL clears it). */
void	state_set(char **, const char *);
void	state_setf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Open a timeline step (closing the one before), count a poll, close it. */
void	state_step_begin(struct state *, const char *name);
void	state_step_poll(struct state *);
void	state_step_detail(struct state *, const char *, ...) __attribute__((format(printf, 2, 3)));
void	state_step_end(struct state *);
/* Write path atomically: temp file, fsync, rename, fsync the directory. */
int	state_save(const struct state *, const char *path, char **);
int	state_load(struct state *, const char *path, char **);
/* The state as a JSON document (allocated). */
char	*state_to_json(const struct state *, int pretty);
int	state_from_json(struct state *, const char *, char **);

#endif
