/* health.h - the load balancer's health endpoint, answered from a thread of its own. */
#ifndef ASG_HEALTH_H
#define ASG_HEALTH_H

struct health_server;

/* The load balancer's checks as they reach us (wall clock times; 0: not yet). */
struct health_lb {
	double		first;		/* the first check answered 200 */
	double		healthy;	/* the check that made the threshold in a row */
	unsigned long	checks;		/* checks answered 200 */
	double		interval;	/* seconds between one node's last two checks */
};

/*
 * Listen on ADDR:PORT ("0.0.0.0:8081", "127.0.0.1:0", "[::]:8081") and answer
 * GET/HEAD on path from a thread of its own, so a slow boot step never delays
 * a probe. Starts answering 503 until health_set says otherwise. metrics
 * (NULL or "": none) is a second path, answered with health_set_metrics's page.
 */
/* Whether listen is an address health_start takes: 0, or -1 and why. */
int	health_listen_check(const char *, char **);
int	health_start(const char *listen, const char *path, const char *metrics,
	    struct health_server **, char **cause);
/* The metrics page served from now on (copied). */
void	health_set_metrics(struct health_server *, const char *page);
/* Load-balancer checks (User-Agent ELB-HealthChecker/) in a row that count us healthy. */
void	health_lb_threshold(struct health_server *, int);
void	health_lb(struct health_server *, struct health_lb *);
/* Set the answer: ok = 1 gives 200, ok = 0 gives 503 with reason in the body. */
void	health_set(struct health_server *, int ok, const char *reason);
int	health_get(struct health_server *);
/* The port actually bound (useful with port 0). */
int	health_port(const struct health_server *);
/* Counters for the status view. */
unsigned long health_requests(const struct health_server *);
void	health_stop(struct health_server *);

#endif
