/*
 * fuzz_config.c - the configuration loader: config_load on a file holding the
 * input (inih, the option table, the cross-option checks), then config_reload
 * as SIGHUP does.
 *
 * The file is an unlinked O_TMPFILE in $FUZZ_TMPDIR (else /tmp), rewritten for
 * each input and opened by config_load through /proc/self/fd/N, so nothing is
 * left behind even when the target crashes.
 *
 * Checks: 0 exactly when there are no errors; every error is one
 * "FILE:LINE: message\n" line (or "FILE: message\n") naming a line the file
 * has (FUZZ_IGNORE=config-line turns that one off); a loaded configuration
 * passes its own rules; no descriptor leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#include "fuzz.h"

static int	 cfd = -1;
static char	 cpath[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfd = open(fuzz_tmpdir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	FUZZ_CHECK(cfd != -1, "O_TMPFILE in %s: %s", fuzz_tmpdir(), strerror(errno));
	snprintf(cpath, sizeof cpath, "/proc/self/fd/%d", cfd);
	return 0;
}

/* Lines in the file as a reader of lines sees them. */
static long
physical_lines(const uint8_t *data, size_t len)
{
	long	n = 0;
	size_t	i;

	for (i = 0; i < len; i++) {
		if (data[i] == '\n')
			n++;
	}
	if (len > 0 && data[len - 1] != '\n')
		n++;
	return n;
}

static void
check_errors(const char *errors, long lines)
{
	const char	*p, *nl, *q;
	size_t		 plen = strlen(cpath);
	long		 line;
	char		*end;

	FUZZ_CHECK(*errors != '\0', "empty error text");
	for (p = errors; *p != '\0'; p = nl + 1) {
		FUZZ_CHECK((nl = strchr(p, '\n')) != NULL, "error without a newline: %s", p);
		FUZZ_CHECK(strncmp(p, cpath, plen) == 0 && p[plen] == ':',
		    "error does not start with the file name: %.*s", (int)(nl - p), p);
		q = p + plen + 1;
		if (*q == ' ')
			continue;	/* "FILE: message" */
		line = strtol(q, &end, 10);
		FUZZ_CHECK(end != q && *end == ':' && end[1] == ' ',
		    "error is not FILE:LINE: message: %.*s", (int)(nl - p), p);
		FUZZ_CHECK(fuzz_ignored("config-line") || (line >= 1 && line <= lines),
		    "error names line %ld of a %ld-line file: %.*s", line, lines,
		    (int)(nl - p), p);
	}
}

static void
check_config(const struct config *c)
{
	FUZZ_CHECK(c->state_dir != NULL && c->state_dir[0] == '/', "state_dir");
	FUZZ_CHECK(c->health_path != NULL && c->health_path[0] == '/', "health path");
	FUZZ_CHECK(c->version_tag != NULL && c->version_tag[0] != '\0', "version tag");
	FUZZ_CHECK(c->deadline >= 10 && c->deadline <= 86400, "deadline %d", c->deadline);
	FUZZ_CHECK(c->keep >= 1 && c->keep <= 100, "keep %d", c->keep);
	FUZZ_CHECK(c->max_size >= 1024 && c->max_size <= (1LL << 50), "max_size %lld",
	    c->max_size);
	FUZZ_CHECK(c->version_source >= VERSION_SOURCE_GROUP &&
	    c->version_source <= VERSION_SOURCE_IMDS, "source %d", c->version_source);
	FUZZ_CHECK(c->log_level == 3 || c->log_level == 4 || c->log_level == 6 ||
	    c->log_level == 7, "log level %d", c->log_level);
	FUZZ_CHECK(c->allow_unverified == 0 || c->allow_unverified == 1, "bool");
	FUZZ_CHECK(c->app_unit[0] == '\0' || c->app_command[0] == '\0', "unit and command");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct config	 cfg, running;
	struct buf	 applied = { NULL, 0, 0 }, ignored = { NULL, 0, 0 };
	char		*errors = NULL;
	int		 fds, r;

	FUZZ_CHECK(ftruncate(cfd, 0) == 0, "ftruncate");
	FUZZ_CHECK(pwrite(cfd, data, len, 0) == (ssize_t)len, "pwrite");
	fds = fuzz_open_fds();

	r = config_load(&cfg, cpath, 0, &errors);
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "config_load: %d\n%s", r, errors != NULL ? errors : "");
	if (r == 0) {
		FUZZ_CHECK(errors == NULL, "success with errors: %s", errors);
		check_config(&cfg);
		/* SIGHUP: the running configuration takes what may change. */
		config_defaults(&running);
		config_reload(&running, &cfg, &applied, &ignored);
		config_free(&running);
	} else {
		FUZZ_CHECK(r == -1 && errors != NULL, "failure without errors");
		check_errors(errors, physical_lines(data, len));
	}
	config_free(&cfg);
	buf_free(&applied);
	buf_free(&ignored);
	free(errors);
	FUZZ_CHECK(fuzz_open_fds() == fds, "descriptors: %d before, %d after", fds,
	    fuzz_open_fds());
	return 0;
}
