/* appprobe.h - the app's health probe: one HTTP GET of its health_url through the agent's client. */
#ifndef ASG_APPPROBE_H
#define ASG_APPPROBE_H

/*
 * Probe the app once: GET url within timeout seconds. Returns 1 when it
 * answered 2xx, 0 otherwise with the reason in *cause. Runs http_do, so only
 * on the thread that owns the HTTP client (after http_init).
 */
int	appprobe_healthy(const char *url, double timeout, char **cause);

#endif
