/* rollalarm.h - the CloudWatch alarms a rollout watches: one tag value, their states. */
#ifndef ASG_ROLLALARM_H
#define ASG_ROLLALARM_H

#include <stddef.h>
#include <stdio.h>

struct aws;
struct json_object;

/* The names comma-separated, as the alarms tag holds them; *out NULL for none. */
int	rollalarm_join(const char *const *names, size_t n, char **out, char **cause);
/* 1 when an alarm of the list is in ALARM (cause: which and why), 0 when none; -1 error. */
int	rollalarm_check(struct aws *, const char *alarms, char **cause);
/* Each alarm's state: lines on out, or (doc not NULL) an "alarms" array in doc. */
int	rollalarm_status(struct aws *, const char *alarms, FILE *out, struct json_object *doc,
	    char **cause);

#endif
