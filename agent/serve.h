/* serve.h - the running life: lifecycle watch, continuous health, standby, drain, reload. */
#ifndef ASG_SERVE_H
#define ASG_SERVE_H

struct agent;

/*
 * After a successful boot: serve until stopped or terminated, then drain.
 * Returns the exit code; *to_pool set when the instance went back to its
 * warm pool, to be booted again when it leaves it.
 */
int	serve_run(struct agent *, int *to_pool);
/*
 * Terminated from the warm pool: nothing serves and no load balancer has the
 * instance, so no drain; complete the terminate hook. Returns the exit code.
 */
int	serve_leave(struct agent *);

#endif
