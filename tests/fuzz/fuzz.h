/* fuzz.h - helpers the libFuzzer targets share: checks that abort, descriptor counts, scratch space. */
#ifndef ASG_FUZZ_H
#define ASG_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/*
 * A broken invariant is a finding like a sanitizer report: say which and
 * abort, so libFuzzer saves the input as a crash.
 */
#define FUZZ_CHECK(cond, ...) do {						\
	if (!(cond)) {								\
		fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s: ", __FILE__,	\
		    __LINE__, #cond);						\
		fprintf(stderr, __VA_ARGS__);					\
		fputc('\n', stderr);						\
		abort();							\
	}									\
} while (0)

/* The input as a NUL-terminated string (the parsers under test take C strings). */
static inline char *
fuzz_cstring(const uint8_t *data, size_t len)
{
	char	*s;

	if ((s = malloc(len + 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/* Open descriptors of this process, to catch a leak per input. */
static inline int
fuzz_open_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1;	/* the directory stream's own */
}

/*
 * Whether a check is switched off with FUZZ_IGNORE=ID[,ID...]: a known,
 * reported finding must not hide the next one while its fix is pending.
 */
static inline int
fuzz_ignored(const char *id)
{
	const char	*list = getenv("FUZZ_IGNORE"), *p;
	size_t		 n = strlen(id);

	if (list == NULL)
		return 0;
	for (p = list; (p = strstr(p, id)) != NULL; p += n) {
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
	}
	return 0;
}

/* Where the targets may make files: $FUZZ_TMPDIR (the driver's), else /tmp. */
static inline const char *
fuzz_tmpdir(void)
{
	const char	*t = getenv("FUZZ_TMPDIR");

	return t != NULL && *t != '\0' ? t : "/tmp";
}

#endif
