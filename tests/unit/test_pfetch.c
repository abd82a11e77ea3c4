/* test_pfetch.c - pfetch.c's memory: the connections that fit, and buffers it cannot have. */
#include <sys/resource.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "download.h"
#include "manifest.h"
#include "pfetch.h"
#include "util.h"

#include "tap.h"

/* AddressSanitizer's shadow counts against RLIMIT_DATA: no limit can be set there. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

#if ASAN
/* A request past what ASan allocates is refused with NULL, as malloc does, not a report. */
const char	*__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

#define MIB	(1LL << 20)

/* What a connection's thread takes for its stack, as pfetch's threads get it. */
static long long
stack_bytes(void)
{
	return PFETCH_STACK;
}

/* Under a limit of limit bytes, n connections of chunk-byte chunks: fit to the most that fit. */
static void
fits(long long limit, long long chunk, int n)
{
	struct rlimit	 old, rl;
	long long	 each = chunk + stack_bytes(), most;
	int		 got;

	getrlimit(RLIMIT_DATA, &old);
	rl = old;
	rl.rlim_cur = (rlim_t)limit;
	if (!tap_true(setrlimit(RLIMIT_DATA, &rl) == 0, "RLIMIT_DATA set to %lld", limit))
		return;
	got = pfetch_fit(chunk, n);
	setrlimit(RLIMIT_DATA, &old);
	most = limit / 2 / each;
	if (most > n)
		most = n;
	if (most < 1)
		most = 1;
	tap_int(got, most, "%d connections of %lld MiB chunks (%lld MiB each with the stack) "
	    "under %lld MiB: as many as fit in half, at least 1", n, chunk / MIB, each / MIB,
	    limit / MIB);
}

static void
test_fit(void)
{
	struct rlimit	rl;

	getrlimit(RLIMIT_DATA, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		tap_int(pfetch_fit(64 * MIB, 16), 16, "no limit: every connection");
	else
		tap_skip("a limit is in force already", "no limit: every connection");
	tap_int(pfetch_fit(64 * MIB, 1), 1, "one connection stays one");
	if (ASAN) {
		tap_skip("AddressSanitizer's shadow memory", "connections under a limit");
		return;
	}
	/* The review's repro: three 16 MiB chunks and three stacks are not in 32 MiB. */
	fits(32 * MIB, 16 * MIB, 3);
	fits(64 * MIB, 8 * MIB, 3);
	fits(256 * MIB, 4 * MIB, 16);
	fits(256 * MIB, 64 * MIB, 16);
	fits(1LL << 40, 4 * MIB, 16);
}

/* Buffers that cannot be had: an error on the caller's thread, no connection started. */
static void
test_buffers_refused(void)
{
	struct download_opts	 opts;
	struct manifest		 m;
	struct pfetch		*p;
	char			*cause = NULL;

	memset(&opts, 0, sizeof opts);
	memset(&m, 0, sizeof m);
	/* Far past any address space: the first buffer cannot be had. */
	m.chunk_size = 1LL << 50;
	m.size = 3 * m.chunk_size;
	m.nchunks = 3;
	p = pfetch_new(NULL, "http://127.0.0.1:9/none", &m, 3, &opts, &cause);
	tap_null(p, "no pool");
	tap_str(cause, "out of memory for 3 chunks of 1125899906842624 bytes",
	    "the cause says what could not be had");
	pfetch_free(p);
	free(cause);
}

int
main(void)
{
	tap_run("connections that fit", test_fit);
	tap_run("buffers that cannot be had", test_buffers_refused);
	return tap_done();
}
