/* halt.h - when waits end: the flags the signal handlers set and every wait reads. */
#ifndef ASG_HALT_H
#define ASG_HALT_H

#include <signal.h>

/*
 * One per process, owned by whoever installs the signal handlers (the run
 * context); the modules below get a const pointer and never a bare flag.
 */
struct halt {
	volatile sig_atomic_t	stop;		/* SIGTERM/SIGINT or the deadline: end waits */
	volatile sig_atomic_t	hurry;		/* a second stop signal: end the drain's too */
	volatile sig_atomic_t	signals;	/* stop signals so far */
	volatile sig_atomic_t	reload;		/* SIGHUP */
	volatile sig_atomic_t	deadline;	/* the stop came from the boot deadline */
};

/* Whether a wait watching h should end now; a wait with no halt never ends early. */
static inline int
halt_stopped(const struct halt *h)
{
	return h != NULL && h->stop;
}

/* The same for the waits that outlive the first stop signal (the drain's). */
static inline int
halt_hurried(const struct halt *h)
{
	return h != NULL && h->hurry;
}

#endif
