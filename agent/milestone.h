/* milestone.h - the boot's milestones outside the agent: EC2's launch and systemd. */
#ifndef ASG_MILESTONE_H
#define ASG_MILESTONE_H

struct imds;

/*
 * systemd's userspace start and, when systemd started us, our unit's start
 * (wall clock; 0 when systemd does not say), from `systemctl show`.
 */
int	milestone_systemd(double *userspace, double *unit, char **);
/* The service unit in /proc/self/cgroup's text (allocated), or NULL. */
char	*milestone_unit_name(const char *cgroup);
/* EC2's launch time: the identity document's pendingTime (whole seconds, EC2's clock). */
int	milestone_launch(struct imds *, double *launch, char **);
/* pendingTime of an identity document as Unix time, or 0. */
double	milestone_pending_time(const char *document);

#endif
