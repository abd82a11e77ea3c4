/* tap.h - a small Test Anything Protocol emitter for the unit tests: named cases, typed checks. */
#ifndef ASG_TAP_H
#define ASG_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * A case is a function run by tap_run("name", fn), or the points after
 * tap_case("name %s", arg) up to the next case: every point it makes is
 * named "name: what", and tap_done lists the cases that failed.
 *
 * The checks are macros (GNU statement expressions, as systemd's ASSERT_EQ)
 * so that a failure can show the expressions: after the "not ok" line it
 * prints "#   file:line: GOT == WANT", then the value of each side.
 *   tap_int(got, want, fmt, ...)	signed integers; tap_ll is the same
 *   tap_size(got, want, fmt, ...)	unsigned integers (size_t, unsigned)
 *   tap_dbl(got, want, tol, fmt, ...)	doubles, equal within tol
 *   tap_str(got, want, fmt, ...)	strings; NULL never matches
 *   tap_has(got, part, fmt, ...)	got contains part
 *   tap_mem(got, glen, want, wlen, fmt, ...) byte buffers
 *   tap_null(got, fmt, ...)		got is NULL
 *   tap_true(cond, fmt, ...)		a boolean predicate
 * Each makes one test point and returns whether it passed.
 */

#define TAP_SHOW_WHOLE	512	/* longer strings show only around the first difference */

static int	tap_n, tap_failed, tap_case_failed, tap_case_open;
static char	tap_case_name[160];
static char	tap_failed_cases[1024];

static inline void
tap_plan(int n)
{
	printf("1..%d\n", n);
}

static inline void __attribute__((format(printf, 1, 2)))
tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

/* Close the current case; a failed one joins the list tap_done prints. */
static inline void
tap_case_end(void)
{
	size_t	used = strlen(tap_failed_cases);

	if (tap_case_open && tap_case_failed > 0 && used + 3 < sizeof tap_failed_cases)
		snprintf(tap_failed_cases + used, sizeof tap_failed_cases - used, "%s'%s'",
		    used > 0 ? ", " : "", tap_case_name);
	tap_case_open = tap_case_failed = 0;
	tap_case_name[0] = '\0';
}

/* Start a case: the points from here on are named after it. */
static inline void __attribute__((format(printf, 1, 2)))
tap_case(const char *fmt, ...)
{
	va_list	ap;

	tap_case_end();
	va_start(ap, fmt);
	vsnprintf(tap_case_name, sizeof tap_case_name, fmt, ap);
	va_end(ap);
	tap_case_open = 1;
}

static inline void
tap_run(const char *name, void (*fn)(void))
{
	tap_case("%s", name);
	fn();
	tap_case_end();
}

static inline int __attribute__((format(printf, 2, 0)))
tap_vok(int cond, const char *fmt, va_list ap)
{
	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	if (tap_case_open)
		printf("%s: ", tap_case_name);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	if (!cond) {
		tap_failed++;
		tap_case_failed++;
	}
	fflush(stdout);
	return cond;
}

static inline int __attribute__((format(printf, 2, 3)))
tap_ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tap_vok(cond, fmt, ap);
	va_end(ap);
	return cond;
}

static inline void __attribute__((format(printf, 2, 3)))
tap_skip(const char *why, const char *fmt, ...)
{
	va_list	ap;

	printf("ok %d - ", ++tap_n);
	if (tap_case_open)
		printf("%s: ", tap_case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
}

/* The failed check's place and expressions: "#   file:line: GOT OP WANT". */
static inline void
tap_where(const char *file, int line, const char *got, const char *op, const char *want)
{
	const char	*base = strrchr(file, '/');

	printf("#   %s:%d: %s%s%s\n", base != NULL ? base + 1 : file, line, got,
	    op != NULL ? op : "", want != NULL ? want : "");
}

/* Bytes as a quoted C literal: one line whatever they hold. */
static inline void
tap_quote(const char *p, size_t len)
{
	unsigned char	c;
	size_t		i;

	putchar('"');
	for (i = 0; i < len; i++) {
		c = (unsigned char)p[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* One side of a failed comparison; a long one only around byte diff. */
static inline void
tap_show(const char *label, const char *p, size_t len, size_t diff)
{
	size_t	from = 0, to = len;

	printf("#   %s ", label);
	if (p == NULL) {
		puts("(null)");
		return;
	}
	if (len > TAP_SHOW_WHOLE) {
		from = diff > 64 ? diff - 64 : 0;
		to = from + 192 < len ? from + 192 : len;
		printf("(%zu bytes, %zu to %zu) %s", len, from, to, from > 0 ? "..." : "");
	}
	tap_quote(p + from, to - from);
	puts(to < len ? "..." : "");
}

/* Both sides of a failed string or memory comparison, and where they part. */
static inline void
tap_show_both(const char *got, size_t glen, const char *want, size_t wlen)
{
	size_t	diff = 0;

	while (got != NULL && want != NULL && diff < glen && diff < wlen &&
	    got[diff] == want[diff])
		diff++;
	tap_show("got: ", got, glen, diff);
	tap_show("want:", want, wlen, diff);
	if (got != NULL && want != NULL)
		printf("#   they differ from byte %zu\n", diff);
}

/* What a failed check prints after its point: where, the expressions, both sides; 0. */
static inline int __attribute__((format(printf, 5, 6)))
tap_fail(const char *file, int line, const char *ge, const char *we, const char *fmt, ...)
{
	va_list	ap;

	tap_where(file, line, ge, " == ", we);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	return 0;
}

static inline int
tap_fail_mem(const char *file, int line, const char *ge, const char *we, const void *got,
    size_t glen, const void *want, size_t wlen)
{
	tap_where(file, line, ge, " == ", we);
	if (got != NULL && want != NULL && glen != wlen)
		printf("#   lengths: got %zu, want %zu\n", glen, wlen);
	tap_show_both((const char *)got, glen, (const char *)want, wlen);
	return 0;
}

static inline int
tap_fail_str(const char *file, int line, const char *ge, const char *we, const char *got,
    const char *want)
{
	return tap_fail_mem(file, line, ge, we, got, got != NULL ? strlen(got) : 0, want,
	    want != NULL ? strlen(want) : 0);
}

static inline int
tap_fail_has(const char *file, int line, const char *ge, const char *pe, const char *got,
    const char *part)
{
	tap_where(file, line, ge, " contains ", pe);
	tap_show("got: ", got, got != NULL ? strlen(got) : 0, 0);
	tap_show("part:", part, part != NULL ? strlen(part) : 0, 0);
	return 0;
}

/* Each check evaluates its operands once, makes one point and on failure shows why. */
#define tap_int(got, want, ...) ({						\
	intmax_t tap_g = (got), tap_w = (want);					\
	tap_ok(tap_g == tap_w, __VA_ARGS__) ||					\
	    tap_fail(__FILE__, __LINE__, #got, #want,				\
	    "#   got:  %jd\n#   want: %jd\n", tap_g, tap_w); })
#define tap_ll(got, want, ...)	tap_int(got, want, __VA_ARGS__)
#define tap_size(got, want, ...) ({						\
	uintmax_t tap_g = (got), tap_w = (want);				\
	tap_ok(tap_g == tap_w, __VA_ARGS__) ||					\
	    tap_fail(__FILE__, __LINE__, #got, #want,				\
	    "#   got:  %ju\n#   want: %ju\n", tap_g, tap_w); })
#define tap_dbl(got, want, tol, ...) ({						\
	double tap_g = (got), tap_w = (want), tap_t = (tol);			\
	tap_ok(tap_g - tap_w <= tap_t && tap_w - tap_g <= tap_t, __VA_ARGS__) || \
	    tap_fail(__FILE__, __LINE__, #got, #want,				\
	    "#   got:  %.17g\n#   want: %.17g (within %g)\n", tap_g, tap_w, tap_t); })
#define tap_str(got, want, ...) ({						\
	const char *tap_g = (got), *tap_w = (want);				\
	tap_ok(tap_g != NULL && tap_w != NULL && strcmp(tap_g, tap_w) == 0,	\
	    __VA_ARGS__) ||							\
	    tap_fail_str(__FILE__, __LINE__, #got, #want, tap_g, tap_w); })
#define tap_has(got, part, ...) ({						\
	const char *tap_g = (got), *tap_p = (part);				\
	tap_ok(tap_g != NULL && tap_p != NULL && strstr(tap_g, tap_p) != NULL,	\
	    __VA_ARGS__) ||							\
	    tap_fail_has(__FILE__, __LINE__, #got, #part, tap_g, tap_p); })
#define tap_mem(got, glen, want, wlen, ...) ({					\
	const void *tap_g = (got), *tap_w = (want);				\
	size_t tap_gl = (glen), tap_wl = (wlen);				\
	tap_ok(tap_g != NULL && tap_w != NULL && tap_gl == tap_wl &&		\
	    memcmp(tap_g, tap_w, tap_gl) == 0, __VA_ARGS__) ||			\
	    tap_fail_mem(__FILE__, __LINE__, #got, #want, tap_g, tap_gl, tap_w, tap_wl); })
#define tap_null(got, ...) ({							\
	const void *tap_g = (got);						\
	tap_ok(tap_g == NULL, __VA_ARGS__) ||					\
	    tap_fail(__FILE__, __LINE__, #got, "NULL",				\
	    "#   got:  %p\n#   want: NULL\n", tap_g); })
#define tap_true(cond, ...) ({							\
	int tap_c = !!(cond);							\
	tap_ok(tap_c, __VA_ARGS__) ||						\
	    tap_fail(__FILE__, __LINE__, #cond, "true", "#   got:  false\n"); })

/* The plan, trailing; the exit status: 1 when a point failed. */
static inline int
tap_done(void)
{
	tap_case_end();
	if (tap_failed > 0)
		printf("# %d of %d points failed, in cases: %s\n", tap_failed, tap_n,
		    tap_failed_cases[0] != '\0' ? tap_failed_cases : "(none)");
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}

#endif
