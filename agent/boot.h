/* boot.h - the boot path: from a fresh instance to a healthy app, or a clean ABANDON. */
#ifndef ASG_BOOT_H
#define ASG_BOOT_H

struct agent;
struct config;

/* Where boot_run left the instance. */
enum boot_end {
	BOOT_SERVE,	/* healthy, CONTINUE sent (or owed): serve_run next */
	BOOT_STOPPED,	/* stopped in the warm pool: exit 0 */
	BOOT_TERMINATED, /* terminated from the warm pool: serve_leave next */
	BOOT_FAILED,	/* failed closed (503, app stopped, ABANDON sent): exit 1 */
};

/*
 * Bake time: fetch, verify and install a release (version and digest given,
 * or read from the group's tags) without starting anything, so that `run`
 * at boot finds it installed. Returns 0 or -1 with a cause.
 */
int	boot_prefetch(struct config *, const char *version, const char *sha256,
	    const char *group, char **);
/*
 * The boot path, the warm-pool wait included: signals, state dir, endpoint,
 * identity, version, release, app, health, CONTINUE.
 */
enum boot_end boot_run(struct agent *);
/*
 * One run per state dir (flock on STATE_DIR/.run, *fd held until exit): -1
 * when another holds it. A state dir that cannot be used is left to the boot.
 */
int	boot_lock_run(const struct config *, int *, char **);
/*
 * What run needs of the configuration (check-config's note): at its start,
 * and with late what the boot checks once it can ABANDON, before it fetches.
 */
int	boot_check(const struct config *, int late, char **);

#endif
