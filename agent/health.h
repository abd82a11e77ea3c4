/* health.h - the load balancer's health endpoint (its own thread) and the app's health probe. */
#ifndef ASG_HEALTH_H
#define ASG_HEALTH_H

#include <stddef.h>

#define HEALTH_MAX_REQUEST	8192	/* request line and headers, bytes */

struct health_server;

/* What one request gets. */
struct health_request {
	int	status;		/* 200 stands for the current answer (200 or 503); else 400,
				   404, 405, 431 or 505 */
	int	head;		/* HEAD: the answer carries no body */
	int	http10;
	int	close;		/* close the connection after this answer */
};

/*
 * Listen on ADDR:PORT ("0.0.0.0:8081", "127.0.0.1:0", "[::]:8081") and answer
 * GET/HEAD on path from a thread of its own, so a slow boot step never delays
 * a probe. Starts answering 503 until health_set says otherwise.
 */
int	health_start(const char *listen, const char *path, struct health_server **,
	    char **cause);
/* Set the answer: ok = 1 gives 200, ok = 0 gives 503 with reason in the body. */
void	health_set(struct health_server *, int ok, const char *reason);
int	health_get(struct health_server *);
/* The port actually bound (useful with port 0). */
int	health_port(const struct health_server *);
/* Counters for the status view. */
unsigned long health_requests(const struct health_server *);
void	health_stop(struct health_server *);

/*
 * The endpoint's request parser, exported for the fuzz target. in[0..len)
 * starts at a request line (blank lines before one are the caller's to skip).
 * Returns the bytes the request used, with *rq set: its head, or all of len
 * when it is turned away unread (a bad method: 400; no end of the headers
 * within HEALTH_MAX_REQUEST bytes: 431). Returns 0, *rq untouched, while the
 * head is incomplete. *scan keeps the search position across calls on the
 * same growing input: 0 at first, and again after bytes are consumed.
 */
size_t	health_parse_request(const char *path, const char *in, size_t len, size_t *scan,
	    struct health_request *rq);

/*
 * Probe the app once: GET url within timeout seconds. Returns 1 when it
 * answered 2xx, 0 otherwise with the reason in *cause.
 */
int	health_probe(const char *url, double timeout, char **cause);

#endif
