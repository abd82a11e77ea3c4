/*
 * fuzz_health.c - the health endpoint's request parser, httpreq_parse (agent/httpreq.c).
 *
 * Input: the bytes a client sends on one connection. They are delivered the
 * way conn_read/conn_process see them: appended in chunks (at most
 * HTTPREQ_MAX_HEAD unanswered bytes), leading blank lines skipped, the
 * parser called after each chunk with the saved scan position, each complete
 * request consumed, until one asks for the connection to close.
 * The first input byte picks the chunk size (1 + byte % 64; 0 means all at once).
 *
 * Checks: the bytes used lie in 1..held; statuses are 200 400 404 405 431 505
 * and only 200 for GET/HEAD of the configured path or the metrics path
 * (and the metrics flag only for the latter); head only for HEAD; every
 * error closes the connection; and the answers are the same whether the bytes
 * arrive in chunks or all at once (the scan position only saves work).
 */
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "util.h"

#include "fuzz.h"

#define PATH		"/healthz"
#define METRICS_PATH	"/metrics"
#define MAX_ANSWERS	256

struct answers {
	struct httpreq		rq[MAX_ANSWERS];
	size_t			used[MAX_ANSWERS];
	size_t			n;
	size_t			left;	/* bytes never answered */
};

static void
check_request(const struct httpreq *rq, const char *in, size_t used)
{
	switch (rq->status) {
	case 200:
		FUZZ_CHECK((used >= 4 && memcmp(in, "GET ", 4) == 0) ||
		    (used >= 5 && memcmp(in, "HEAD ", 5) == 0), "200 for %.*s",
		    (int)(used < 40 ? used : 40), in);
		FUZZ_CHECK(memmem(in, used, PATH, strlen(PATH)) != NULL ||
		    memmem(in, used, METRICS_PATH, strlen(METRICS_PATH)) != NULL,
		    "200 off the health and metrics paths");
		FUZZ_CHECK(!rq->metrics || memmem(in, used, METRICS_PATH,
		    strlen(METRICS_PATH)) != NULL, "the metrics page off its path");
		break;
	case 404:
	case 405:
		break;
	case 400:
	case 431:
	case 505:
		FUZZ_CHECK(rq->close, "error %d keeps the connection", rq->status);
		break;
	default:
		FUZZ_CHECK(0, "status %d", rq->status);
	}
	FUZZ_CHECK(!rq->head || (used >= 5 && memcmp(in, "HEAD ", 5) == 0), "head for non-HEAD");
	FUZZ_CHECK(rq->head == 0 || rq->head == 1, "head %d", rq->head);
	FUZZ_CHECK(rq->close == 0 || rq->close == 1, "close %d", rq->close);
	FUZZ_CHECK(rq->http10 == 0 || rq->http10 == 1, "http10 %d", rq->http10);
}

/* One connection: feed data in chunks of step bytes (0: all at once). */
static void
serve(const uint8_t *data, size_t len, size_t step, struct answers *a)
{
	struct httpreq		 rq;
	char			*in;
	size_t			 inlen = 0, off = 0, scan = 0, n, skip, used;
	int			 closing = 0;

	memset(a, 0, sizeof *a);
	in = xmalloc(HTTPREQ_MAX_HEAD);
	while (!closing && (off < len || inlen > 0)) {
		/* conn_read: at most HTTPREQ_MAX_HEAD bytes held. */
		n = len - off;
		if (step != 0 && n > step)
			n = step;
		if (n > HTTPREQ_MAX_HEAD - inlen)
			n = HTTPREQ_MAX_HEAD - inlen;
		memcpy(in + inlen, data + off, n);
		inlen += n;
		off += n;
		/* conn_process */
		for (;;) {
			for (skip = 0; skip < inlen && (in[skip] == '\r' || in[skip] == '\n'); skip++)
				;
			if (skip > 0) {
				memmove(in, in + skip, inlen - skip);
				inlen -= skip;
				scan = 0;
			}
			if (inlen == 0)
				break;
			memset(&rq, 0xa5, sizeof rq);
			used = httpreq_parse(PATH, METRICS_PATH, in, inlen, &scan, &rq);
			if (used == 0) {
				FUZZ_CHECK(inlen < HTTPREQ_MAX_HEAD, "full buffer left unanswered");
				FUZZ_CHECK(scan <= inlen, "scan %zu past %zu", scan, inlen);
				break;
			}
			FUZZ_CHECK(used <= inlen, "used %zu of %zu", used, inlen);
			check_request(&rq, in, used);
			if (a->n < MAX_ANSWERS) {
				a->rq[a->n] = rq;
				a->used[a->n] = used;
			}
			a->n++;
			memmove(in, in + used, inlen - used);
			inlen -= used;
			scan = 0;
			if (rq.close) {
				closing = 1;
				inlen = 0;
				break;
			}
		}
		if (off == len && !closing)
			break;	/* the client's FIN: what is left can never complete */
	}
	a->left = inlen;
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct answers	*whole, *chunked;
	size_t		 step, i;

	if (len == 0)
		return 0;
	step = data[0] == 0 ? 0 : 1 + data[0] % 64;
	data++;
	len--;
	whole = xmalloc(sizeof *whole);
	chunked = xmalloc(sizeof *chunked);
	serve(data, len, 0, whole);
	serve(data, len, step, chunked);
	/*
	 * Requests over HTTPREQ_MAX_HEAD depend on how bytes arrive (431 when
	 * the buffer fills); below that, chunking must not change any answer.
	 */
	if (len < HTTPREQ_MAX_HEAD) {
		FUZZ_CHECK(whole->n == chunked->n, "%zu answers at once, %zu in chunks of %zu",
		    whole->n, chunked->n, step);
		for (i = 0; i < whole->n && i < MAX_ANSWERS; i++) {
			/* What a closing answer used does not matter: the rest is dropped. */
			FUZZ_CHECK(memcmp(&whole->rq[i], &chunked->rq[i], sizeof whole->rq[i]) == 0 &&
			    (whole->used[i] == chunked->used[i] || whole->rq[i].close),
			    "answer %zu differs (status %d/%d, used %zu/%zu) in chunks of %zu", i,
			    whole->rq[i].status, chunked->rq[i].status, whole->used[i],
			    chunked->used[i], step);
		}
	}
	free(whole);
	free(chunked);
	return 0;
}
