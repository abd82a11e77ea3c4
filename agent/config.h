/* config.h - the agent's INI configuration, parsed through one table of options. */
#ifndef ASG_CONFIG_H
#define ASG_CONFIG_H

#include <stdio.h>

enum retry_mode {
	RETRY_MODE_ADAPTIVE,	/* throttling answers hold the whole bucket (pace.c) */
	RETRY_MODE_STANDARD,	/* each call backs off on its own */
};

enum version_source {
	VERSION_SOURCE_GROUP,
	VERSION_SOURCE_INSTANCE,
	VERSION_SOURCE_IMDS,
};

struct config {
	char		*path;
	int		 verbose;	/* -v: debug, whatever log_level says (a reload too) */

	/* [agent] */
	int		 log_level;
	char		*state_dir;
	int		 deadline;
	long long	 memory_limit;

	/* [aws] */
	char		*region;
	char		*imds_endpoint;
	char		*endpoint_url;
	int		 imds_timeout;
	int		 api_timeout;
	int		 max_rate;
	int		 retry_mode;
	int		 autoscaling_burst;	/* an announced scale-out's spread: the */
	int		 autoscaling_rate;	/* Auto Scaling bucket's assumed size */

	/* [version] */
	char		*version_tag;
	int		 version_source;
	int		 version_launch_copy;
	int		 version_wait;

	/* [artifact] */
	char		*artifact_url;
	char		*sha256_tag;
	char		*public_key;
	char		*signature_url;
	int		 keep;
	long long	 max_size;
	int		 connections;
	int		 allow_unverified;

	/* [app] */
	char		*app_unit;
	char		*app_command;
	char		*pre_start;
	int		 pre_start_timeout;
	char		*health_url;
	int		 health_timeout;
	int		 probe_timeout;
	int		 stop_timeout;
	int		 health_interval;
	int		 unhealthy_after;
	int		 unhealthy_grace;
	int		 replace_unhealthy;
	int		 warm_start;

	/* [health] */
	char		*health_listen;
	char		*health_path;
	char		*metrics_path;
	int		 lb_healthy_threshold;

	/* [metrics] */
	int		 cloudwatch;

	/* [lifecycle] */
	char		*launch_hook;
	char		*terminate_hook;
	int		 heartbeat;
	int		 poll;
	int		 drain;
};

/* The file used when -c is not given. */
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/asg-agent/agent.conf"

/*
 * Load path into cfg (defaults first). Every problem is appended to errors as
 * "FILE:LINE: message\n"; returns 0 when there were none. A missing file at the
 * default path is not an error when missing_ok is set.
 */
int	config_load(struct config *, const char *path, int missing_ok, char **errors);
void	config_defaults(struct config *);
void	config_free(struct config *);
/* What `run` needs beyond a valid file (an artifact URL, an app, a way to verify); 0 or -1 with a cause. */
int	config_check_run(const struct config *, char **);
/*
 * The URLs' templates as the boot will expand them: run checks this once it
 * knows its hook (a typo then ABANDONs) and before it fetches.
 */
int	config_check_urls(const struct config *, char **);
/*
 * SIGHUP: copy the options that may change while running from next into cfg;
 * the names of those applied and of those that need a restart are listed.
 */
struct buf;
void	config_reload(struct config *, const struct config *next, struct buf *applied,
	    struct buf *ignored);
/* Write a commented example file holding every option with its default. */
void	config_write_example(FILE *);
/*
 * The option reference of asg-agent.conf(5) in roff: one entry per option under
 * .SS [section], and the list of the options SIGHUP applies.
 */
void	config_write_man(FILE *);
void	config_write_man_reload(FILE *);

#endif
