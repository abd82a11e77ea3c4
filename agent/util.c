/* util.c - allocation, growable buffers, time and string helpers. */
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "halt.h"
#include "util.h"

#define MEM_SPARE	(4 << 20)	/* kept for the fatal path once the limit is reached */

/* AddressSanitizer's terabytes of shadow memory count against RLIMIT_DATA. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_LIMIT_USABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_LIMIT_USABLE 0
#endif
#endif
#ifndef MEM_LIMIT_USABLE
#define MEM_LIMIT_USABLE 1
#endif

static void	(*fatal_fn)(const char *);
static pthread_t  fatal_thread;	/* the hook runs only on the thread that set it */
static int	  fatal_running;
static void	 *mem_spare;
static struct rlimit mem_saved;
static int	  mem_limited;

void
fatal_hook(void (*fn)(const char *))
{
	fatal_fn = fn;
	fatal_thread = pthread_self();
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	char	why[256];

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fprintf(stderr, "asg-agent: fatal: %s\n", why);
	if (fatal_fn == NULL || fatal_running || !pthread_equal(pthread_self(), fatal_thread))
		abort();
	/* Once: a fatal error inside the hook ends the process at once. */
	fatal_running = 1;
	/* The spare block is the memory the hook has when an allocation failed. */
	free(mem_spare);
	mem_spare = NULL;
	fatal_fn(why);
	_exit(1);
}

int
mem_limit(long long bytes, char **cause)
{
	struct rlimit	rl;

	if (!MEM_LIMIT_USABLE)
		return 0;
	if (getrlimit(RLIMIT_DATA, &rl) != 0)
		return set_cause(cause, "getrlimit: %s", strerror(errno));
	if (!mem_limited)
		mem_saved = rl;
	if (rl.rlim_max == RLIM_INFINITY || (rlim_t)bytes < rl.rlim_max)
		rl.rlim_cur = (rlim_t)bytes;
	else
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_DATA, &rl) != 0)
		return set_cause(cause, "setrlimit RLIMIT_DATA: %s", strerror(errno));
	mem_limited = 1;
	/* Address space, not memory: RLIMIT_DATA counts it untouched, and RSS does not. */
	if (mem_spare == NULL)
		mem_spare = malloc(MEM_SPARE);
	return 0;
}

void
mem_limit_undo(void)
{
	if (mem_limited)
		(void)setrlimit(RLIMIT_DATA, &mem_saved);
}

long long
nofile_raise(long long want)
{
	struct rlimit	rl;
	rlim_t		w = (rlim_t)want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LLONG_MAX)
		return -1;
	if (rl.rlim_cur >= w)
		return (long long)rl.rlim_cur;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < w)
		w = rl.rlim_max;
	if (w <= rl.rlim_cur)
		return (long long)rl.rlim_cur;
	want = (long long)rl.rlim_cur;
	rl.rlim_cur = w;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long long)w : want;
}

long long
mem_limit_now(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_DATA, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (rlim_t)LLONG_MAX)
		return -1;
	return (long long)rl.rlim_cur;
}

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		fatal("out of memory");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		fatal("out of memory");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		fatal("out of memory");
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("out of memory");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("out of memory");
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char	*s;

	if (vasprintf(&s, fmt, ap) == -1)
		fatal("out of memory");
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
freezero_str(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void
buf_grow(struct buf *b, size_t more)
{
	char	*old;
	size_t	 need, oldcap;

	if (more > SIZE_MAX - b->len - 1)
		fatal("buffer overflow");
	need = b->len + more + 1;
	if (need <= b->cap)
		return;
	old = b->data;
	oldcap = b->cap;
	if (b->cap == 0)
		b->cap = 64;
	while (b->cap < need)
		b->cap *= 2;
	/* Not realloc: buffers carry secrets, and the old copy is wiped first. */
	b->data = xmalloc(b->cap);
	if (old != NULL) {
		memcpy(b->data, old, b->len + 1);
		explicit_bzero(old, oldcap);
		free(old);
	}
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_adds(b, s);
	free(s);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
buf_take(struct buf *b)
{
	char	*s;

	if (b->data == NULL)
		return xstrdup("");
	s = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

double
mono_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
wall_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
sleep_for(double seconds, const struct halt *halt)
{
	struct timespec	ts, rem;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR) {
		if (halt_stopped(halt))
			return;
		ts = rem;
	}
}

void
hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
set_cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	if (cause == NULL)
		return -1;
	/* Format first: the old cause may be one of the arguments. */
	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	free(*cause);
	*cause = s;
	return -1;
}

/* A name made safe to show in a cause: control bytes escaped, long names cut. */
char *
str_vis(const char *s)
{
	struct buf	 b = { NULL, 0, 0 };
	unsigned char	 c;
	size_t		 i;

	if (s == NULL)
		return xstrdup("(null)");
	for (i = 0; s[i] != '\0'; i++) {
		if (i == 200) {
			buf_adds(&b, "...");
			break;
		}
		c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			buf_addf(&b, "\\%03o", c);
		else
			buf_addc(&b, (char)c);
	}
	return buf_take(&b);
}

/* write(2) until all of it is written; -1 with errno set. */
int
write_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make a rename or a new entry in a directory durable. */
int
dir_sync(const char *path, char **cause)
{
	int	fd, ret = -1;

	if ((fd = open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC)) == -1) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fsync(fd) == -1) {
		set_cause(cause, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

/*
 * Replace path with data durably: a temporary file beside it, fsync, rename,
 * fsync of the directory. Readers see the old content or the new, never a part.
 */
int
file_replace(const char *path, const void *data, size_t len, mode_t mode, char **cause)
{
	char	*tmp, *dir = NULL;
	int	 fd = -1, r, ret = -1;

	tmp = xasprintf("%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|O_CLOEXEC, mode)) == -1) {
		set_cause(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, data, len) != 0) {
		set_cause(cause, "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fsync(fd) == -1) {
		set_cause(cause, "fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		set_cause(cause, "close %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) == -1) {
		set_cause(cause, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	dir = xstrdup(path);
	if (dir_sync(dirname(dir), cause) != 0)
		goto out;
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	if (ret != 0)
		unlink(tmp);
	free(dir);
	free(tmp);
	return ret;
}

int
hex64_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	}
	return i == 64;
}
