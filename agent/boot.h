/* boot.h - `asg-agent run`: from a fresh instance to a serving app, or a clean ABANDON. */
#ifndef ASG_BOOT_H
#define ASG_BOOT_H

struct config;

/* Expand {version} {group} {region} {instance_id} {url} in a template (allocated). */
char	*boot_expand(const char *, const char *const vars[][2], char **);
/* Check what run needs beyond check-config; returns 0 or -1 with a cause. */
int	boot_check_config(const struct config *, char **);
/* Run the boot path and then serve until stopped. Returns the process exit code. */
int	boot_run(struct config *);

#endif
