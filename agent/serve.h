/* serve.h - the running life: lifecycle watch, continuous health, standby, drain, reload. */
#ifndef ASG_SERVE_H
#define ASG_SERVE_H

struct agent;

/* After a successful boot: serve until stopped or terminated, then drain. Returns the exit code. */
int	serve_run(struct agent *);

#endif
