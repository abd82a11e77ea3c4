/*
 * log.c - the agent's log: the journal (with fields) under systemd, "<N>"
 * prefixed lines when the journal only has our stderr, a timestamped line on
 * a terminal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdproto.h"
#include "util.h"

static const char	*log_ident = "asg-agent";
static int		 log_level = LOGL_INFO;
static int		 log_journal;
static const char	*log_journal_path = SDPROTO_JOURNAL_SOCKET;

static char		*log_fields[LOGF_COUNT];

/* Journal field names: `journalctl ASG_AGENT_PHASE=failed` finds failed boots. */
static const char *const log_field_names[LOGF_COUNT] = {
	[LOGF_PHASE] = "ASG_AGENT_PHASE",
	[LOGF_STEP] = "ASG_AGENT_STEP",
	[LOGF_VERSION] = "ASG_AGENT_VERSION",
	[LOGF_INSTANCE] = "ASG_AGENT_INSTANCE",
	[LOGF_GROUP] = "ASG_AGENT_GROUP",
};

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error", LOGL_ERROR },
	{ "warn", LOGL_WARN },
	{ "info", LOGL_INFO },
	{ "debug", LOGL_DEBUG },
};

/* Whether $JOURNAL_STREAM names our stderr (it is inherited by children that redirect it). */
static int
stderr_is_journal(void)
{
	const char		*v = getenv("JOURNAL_STREAM");
	struct stat		 sb;
	unsigned long long	 dev, ino;

	if (v == NULL || sscanf(v, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &sb) == -1)
		return 0;
	return (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

/* Log to the journal directly only when systemd connected our stderr to it. */
void
log_init(const char *ident, int level)
{
	if (ident != NULL)
		log_ident = ident;
	log_level = level;
	log_journal = stderr_is_journal() && getenv("ASG_AGENT_LOG_STDERR") == NULL;
}

void
log_set_journal_socket(const char *path)
{
	log_journal_path = path != NULL ? path : SDPROTO_JOURNAL_SOCKET;
}

void
log_set_field(enum log_field f, const char *value)
{
	if ((int)f < 0 || f >= LOGF_COUNT)
		return;
	free(log_fields[f]);
	log_fields[f] = value != NULL && *value != '\0' ? xstrdup(value) : NULL;
}

/* One entry with fields; when journald's socket is not there, a "<N>" line it can still parse. */
static void
log_to_journal(int level, const char *msg, const char *const *extra, size_t nextra)
{
	char		**fields;
	size_t		  i, n = 0;
	int		  r;

	fields = xcalloc(3 + LOGF_COUNT + nextra, sizeof *fields);
	fields[n++] = xasprintf("MESSAGE=%s", msg);
	fields[n++] = xasprintf("PRIORITY=%d", level);
	fields[n++] = xasprintf("SYSLOG_IDENTIFIER=%s", log_ident);
	for (i = 0; i < LOGF_COUNT; i++) {
		if (log_fields[i] != NULL)
			fields[n++] = xasprintf("%s=%s", log_field_names[i], log_fields[i]);
	}
	for (i = 0; i < nextra; i++)
		fields[n++] = xstrdup(extra[i]);
	r = sdproto_journal_send(log_journal_path, (const char *const *)fields, n);
	for (i = 0; i < n; i++)
		free(fields[i]);
	free(fields);
	if (r != SDPROTO_OK)
		fprintf(stderr, "<%d>%s\n", level, msg);
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

static void
log_vmsg(int level, const char *const *extra, size_t nextra, const char *fmt, va_list ap)
{
	char		*msg;
	struct timespec	 ts;
	struct tm	 tm;
	char		 when[32];

	if (level > log_level)
		return;
	msg = xvasprintf(fmt, ap);
	if (log_journal)
		log_to_journal(level, msg, extra, nextra);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s %s: %s\n", when, ts.tv_nsec / 1000000,
		    log_ident, log_level_name(level), msg);
	}
	free(msg);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_msg_fields(int level, const char *const *extra, size_t nextra, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(level, extra, nextra, fmt, ap);
	va_end(ap);
}
