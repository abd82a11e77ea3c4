/* log.h - the agent's log: the journal (with fields) under systemd, stderr otherwise. */
#ifndef ASG_LOG_H
#define ASG_LOG_H

#include <stddef.h>

enum log_level {
	LOGL_ERROR = 3,
	LOGL_WARN = 4,
	LOGL_INFO = 6,
	LOGL_DEBUG = 7,
};

/* What the boot is at: every journal entry carries these once set (ASG_AGENT_PHASE=...). */
enum log_field {
	LOGF_PHASE,
	LOGF_STEP,
	LOGF_VERSION,
	LOGF_INSTANCE,
	LOGF_GROUP,
	LOGF_COUNT
};

void	log_init(const char *ident, int level);
/* Set (or, with NULL or "", clear) a field the journal entries from now on carry. */
void	log_set_field(enum log_field, const char *);
void	log_set_level(int);
/* Where journal entries go (tests own one); NULL restores journald's socket. */
void	log_set_journal_socket(const char *);
int	log_get_level(void);
/* Parse error|warn|info|debug; returns -1 when unknown. */
int	log_level_parse(const char *);
const char *log_level_name(int);
void	log_msg(int, const char *, ...) __attribute__((format(printf, 2, 3)));
/* One entry with extra journal fields ("NAME=value") on it alone; elsewhere just the text. */
void	log_msg_fields(int, const char *const *, size_t, const char *, ...)
	    __attribute__((format(printf, 4, 5)));

#define log_error(...)	log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOGL_DEBUG, __VA_ARGS__)

#endif
