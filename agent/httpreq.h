/* httpreq.h - the health endpoint's HTTP/1.1 request parser: bytes in, the answer's status out. */
#ifndef ASG_HTTPREQ_H
#define ASG_HTTPREQ_H

#include <stddef.h>

#define HTTPREQ_MAX_HEAD	8192	/* request line and headers, bytes */

/* What one request gets. */
struct httpreq {
	int	status;		/* 200 stands for the current answer (200 or 503); else 400,
				   404, 405, 431 or 505 */
	int	head;		/* HEAD: the answer carries no body */
	int	http10;
	int	close;		/* close the connection after this answer */
	int	metrics;	/* status 200 stands for the metrics page */
	int	elb;		/* User-Agent: ELB-HealthChecker/... (a load balancer's check) */
};

/*
 * Parse the request at the start of in[0..len) against the path served
 * (GET or HEAD of it: 200) and the metrics path (NULL or "": none; 200 with
 * rq->metrics set). in starts at a request line (blank lines before
 * one are the caller's to skip). Returns the bytes the request used, with
 * *rq set: its head, or all of len when it is turned away unread (a bad
 * method: 400; no end of the headers within HTTPREQ_MAX_HEAD bytes: 431).
 * Returns 0, *rq untouched, while the head is incomplete. *scan keeps the
 * search position across calls on the same growing input: 0 at first, and
 * again after bytes are consumed. No I/O, no allocation, no global state.
 */
size_t	httpreq_parse(const char *path, const char *metrics, const char *in, size_t len,
	    size_t *scan, struct httpreq *rq);

#endif
