/* rollrec.h - where a rollout is, as the value of the rollout tag on both its groups. */
#ifndef ASG_ROLLREC_H
#define ASG_ROLLREC_H

#include <stddef.h>

#define ROLLREC_MAX_SIZE	100000	/* a recorded capacity beyond this is not ours */
#define ROLLREC_MAX_PCT		5	/* --steps entries: ten steps' times fit the history tag */
#define ROLLREC_MAX_BAKE	86400	/* seconds: a day */
#define ROLLREC_MAX_TIME	99999999999LL	/* the year 5138 */
#define ROLLREC_MAX		256	/* an Auto Scaling tag value's limit */

/*
 * "VERSION live=G idle=G step=K/N phase=P size=W steps=LIST bake=S since=T
 * hist=T min=M". Phases: scaling (the step's capacity and health), baking
 * (since T), baked, switched (the last step baked), finishing (the old group
 * on its way out: only finish may go on) and rolling-back (only back).
 */
struct rollrec {
	char		*version;
	char		*live;
	char		*idle;
	int		 step, nsteps;
	char		*phase;
	int		 size;		/* the live group's capacity when it began */
	char		*steps;		/* the --steps list, "-" for one step */
	int		 bake;
	long long	 since;
	long long	 hist;		/* the history entry's start time */
	int		 min;		/* the live group's MinSize when it began; -1 unknown */
};

void	 rollrec_clear(struct rollrec *);
/* 0, or -1 with r cleared: a field missing, out of range or not a number. */
int	 rollrec_parse(const char *, struct rollrec *);
char	*rollrec_encode(const struct rollrec *);
/* The --steps list as percentages (none for NULL or "-"): rising, 1 to 100, ending at 100. */
int	 rollrec_steps(const char *, int *pct, size_t *n, char **cause);

#endif
