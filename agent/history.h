/* history.h - one past rollout as the value of a group tag (at most 256 characters). */
#ifndef ASG_HISTORY_H
#define ASG_HISTORY_H

#include <stddef.h>

#define HISTORY_PREFIX	"asg-agent:history:"	/* the key is this and the start time */
#define HISTORY_MAX	256			/* an Auto Scaling tag value's limit */
#define HISTORY_STEPS	32
#define HISTORY_MAX_TIME 99999999999LL			/* the year 5138 */

/* Times are Unix seconds; a step's begin or end is -1 until it happened. */
struct history {
	long long	 started;
	char		*version;
	char		*sha256;	/* NULL: none known */
	char		*outcome;	/* running, finished, rolled-back */
	char		*from;		/* the group that was live */
	char		*to;		/* the group that holds the tag (not in the value) */
	char		*by;		/* the caller's identity (ARN) */
	long long	 begin[HISTORY_STEPS];
	long long	 end[HISTORY_STEPS];
	size_t		 nsteps;
};

void	 history_clear(struct history *);
/*
 * The tag value: "VERSION SHA256|- OUTCOME from=G t=B-E,B-... by=ARN", by cut
 * to fit, and the last steps' times left out when even they do not.
 */
char	*history_encode(const struct history *);
/* Whether version, digest and old group fit whatever the outcome: else from= would be cut. */
int	 history_fits(const struct history *);
int	 history_parse(const char *key, const char *value, struct history *);
/* Mark step (0-based) begun or ended at t; 0, or -1 past HISTORY_STEPS. */
int	 history_mark(struct history *, size_t step, int end, long long t);

#endif
