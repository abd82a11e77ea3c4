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

/*
 * The milestones from launch to load-balancer healthy, around the agent's
 * own steps: wall clock seconds, 0 while not known.
 */
enum mark {
	MARK_LAUNCH,		/* EC2's pendingTime: EC2's clock, whole seconds */
	MARK_KERNEL,		/* the running kernel's boot */
	MARK_USERSPACE,		/* systemd's userspace start */
	MARK_UNIT,		/* the agent's unit left inactive */
	MARK_AGENT,		/* the agent's process started its boot */
	MARK_SERVING,		/* the endpoint answers 200 */
	MARK_CONTINUE,		/* CONTINUE sent */
	MARK_LB_FIRST,		/* the first load-balancer check after that */
	MARK_LB_HEALTHY,	/* the check after which the LB counts us healthy */
	MARK_COUNT
};

#define STATE_MAX_STEPS		32
#define STATE_MAX_COUNTERS	32
#define STATE_MAX_PACE		8

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

/* The adaptive pacing of one API bucket (pace.c), as status shows it. */
struct state_pace {
	char		*service;
	double		 rate;		/* learned requests per second; 0: free */
	double		 held;		/* seconds requests were held back */
	unsigned long	 throttles;
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
	char			*scale_out;	/* an announced scale-out, and its spread */
	double			 drain_until;	/* wall clock; 0: not draining */
	unsigned long		 probes;	/* continuous health, after serving */
	unsigned long		 probe_failures;
	unsigned long		 failing;	/* failures in a row */
	double			 last_probe_ok;	/* wall clock */
	struct state_step	 steps[STATE_MAX_STEPS];
	int			 nsteps;
	struct state_counter	 counters[STATE_MAX_COUNTERS];
	int			 ncounters;
	struct state_pace	 pace[STATE_MAX_PACE];
	int			 npace;
	double			 marks[MARK_COUNT];
	unsigned long		 lb_checks;	/* load-balancer checks answered 200 */
	double			 lb_interval;	/* seconds between one LB node's checks */
	int			 lb_threshold;	/* checks in a row the LB wants */
	double			 imds_clock;	/* IMDS's clock minus ours, seconds */
	int			 imds_clock_known;
};

const char *state_phase_name(int);
/* A process's start time in clock ticks since boot (0 if it does not exist). */
unsigned long long state_process_start(int);
/* This boot's id (allocated), so pids from another boot are never trusted. */
char	*state_boot_id(void);
/* The running kernel's boot as wall clock: now minus CLOCK_BOOTTIME. */
double	state_kernel_boot(void);
/*
 * Whether a record made under boot id and kernel boot time "then" belongs to
 * this boot: the same id, or (a container's overmounted boot id seen through a
 * private /proc) the same kernel boot time, within a second.
 */
int	state_same_boot(const char *id_then, double kernel_then, const char *id_now,
	    double kernel_now);
/* Whether the process recorded in st (pid, start time, boot) is still running. */
int	state_process_alive(const struct state *, int pid, unsigned long long start);
int	state_phase_parse(const char *);
/* A milestone's key ("kernel_start") and its words for people ("kernel started"). */
const char *state_mark_key(int);
const char *state_mark_label(int);
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
/* Read path: 0, -1 when it cannot be read or parsed (cause), -2 when there is none yet. */
int	state_load(struct state *, const char *path, char **);
/* The state as a JSON document (allocated). */
char	*state_to_json(const struct state *, int pretty);
int	state_from_json(struct state *, const char *, char **);

#endif
