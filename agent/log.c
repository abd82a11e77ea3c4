/* log.c - the agent's log: the journal (with fields) under systemd, stderr otherwise. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

static const char	*log_ident = "asg-agent";
static int		 log_level = LOGL_INFO;
static int		 log_journal;

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error", LOGL_ERROR },
	{ "warn", LOGL_WARN },
	{ "info", LOGL_INFO },
	{ "debug", LOGL_DEBUG },
};

/* Log to the journal directly only when systemd connected our stderr to it. */
void
log_init(const char *ident, int level)
{
	if (ident != NULL)
		log_ident = ident;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL &&
	    getenv("ASG_AGENT_LOG_STDERR") == NULL;
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	size_t	i;

	for (i = 0; i < nitems(log_levels); i++) {
		if (strcmp(s, log_levels[i].name) == 0)
			return log_levels[i].level;
	}
	return -1;
}

const char *
log_level_name(int level)
{
	size_t	i;

	for (i = 0; i < nitems(log_levels); i++) {
		if (log_levels[i].level == level)
			return log_levels[i].name;
	}
	return "?";
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list		 ap;
	char		*msg;
	struct timespec	 ts;
	struct tm	 tm;
	char		 when[32];

	if (level > log_level)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (log_journal) {
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
		    "SYSLOG_IDENTIFIER=%s", log_ident, NULL);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s %s: %s\n", when, ts.tv_nsec / 1000000,
		    log_ident, log_level_name(level), msg);
	}
	free(msg);
}
