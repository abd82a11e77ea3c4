/* util.h - allocation, growable buffers, time and string helpers shared by every module. */
#ifndef ASG_UTIL_H
#define ASG_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Print the message and end the process: abort(), or, with a hook set (and
 * on the thread that set it), the hook once (the boot's fail path: state,
 * 503, ABANDON) and exit 1.
 */
void fatal(const char *, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fatal_hook(void (*)(const char *));
/*
 * Cap the data segment (RLIMIT_DATA) at bytes, so a runaway allocation fails
 * (libarchive's cleanly, ours through fatal) before the kernel's OOM killer
 * is woken; a spare block is kept for the fatal path. mem_limit_undo puts
 * the old limit back, in a forked child before exec. An AddressSanitizer
 * build sets no limit.
 */
int mem_limit(long long, char **);
void mem_limit_undo(void);
/* The data segment's cap (RLIMIT_DATA) in force now, in bytes, or -1: none. */
long long mem_limit_now(void);
/*
 * Lift the soft descriptor limit toward want (at most the hard limit) and
 * return the soft limit now (-1: none).
 */
long long nofile_raise(long long);
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *, va_list) __attribute__((format(printf, 1, 0)));

/* Wipe a secret string before freeing it; accepts NULL. */
void freezero_str(char *);

/* Growable byte buffer, always NUL-terminated after the data. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};
void buf_add(struct buf *, const void *, size_t);
void buf_adds(struct buf *, const char *);
void buf_addc(struct buf *, char);
void buf_addf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *);
void buf_free(struct buf *);
/* Buffers are wiped when they grow and when freed: they carry secrets. */
/* Detach the data (NUL-terminated, never NULL) and leave the buffer empty. */
char *buf_take(struct buf *);

/* Seconds on the monotonic clock. */
double mono_now(void);
/* Seconds since the epoch, with sub-second precision. */
double wall_now(void);
/* Sleep for fractional seconds (restarts after signals unless the halt stops us; NULL: never). */
struct halt;
void sleep_for(double, const struct halt *);

/* Whether s is 64 hex digits (a SHA-256 digest, either case). */
int hex64_ok(const char *);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *, size_t, char *out);

/* A string made safe to show (control bytes escaped as \\ooo, cut at 200 bytes), allocated. */
char *str_vis(const char *);

/* write(2) until all of len is written (EINTR retried); -1 with errno set. */
int	write_all(int, const void *, size_t);
/* fsync a directory, so that a rename or a new entry in it survives a crash. */
int	dir_sync(const char *, char **);
/* Replace a small file durably (temp file, fsync, rename, fsync of the directory). */
int	file_replace(const char *, const void *, size_t, mode_t, char **);

/* Set *cause to a formatted message (if cause is not NULL). Always returns -1. */
int set_cause(char **cause, const char *, ...) __attribute__((format(printf, 2, 3)));

#endif
