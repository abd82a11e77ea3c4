/* milestone.c - the boot's milestones outside the agent: EC2's launch and systemd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "app.h"
#include "imds.h"
#include "milestone.h"
#include "util.h"

#define MILESTONE_UNIT_FALLBACK	"asg-agent.service"

/* A CLOCK_MONOTONIC time in microseconds (systemd's *TimestampMonotonic) as wall clock. */
static double
mono_usec_to_wall(unsigned long long usec)
{
	if (usec == 0)
		return 0;
	return wall_now() - (mono_now() - (double)usec / 1e6);
}

/* The value of NAME= in systemctl show's output, as microseconds (0: absent or empty). */
static unsigned long long
show_usec(const char *text, const char *name)
{
	const char	*p = text;
	size_t		 n = strlen(name);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return strtoull(p + n + 1, NULL, 10);
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return 0;
}

char *
milestone_unit_name(const char *cgroup)
{
	const char	*line, *eol, *path, *base;
	size_t		 len;

	for (line = cgroup; line != NULL && *line != '\0'; line = eol != NULL ? eol + 1 : NULL) {
		eol = strchr(line, '\n');
		len = eol != NULL ? (size_t)(eol - line) : strlen(line);
		/* cgroup v2 ("0::PATH") or v1's systemd hierarchy ("N:name=systemd:PATH"). */
		if (strncmp(line, "0::", 3) == 0)
			path = line + 3;
		else if ((path = memmem(line, len, ":name=systemd:", 14)) != NULL)
			path += 14;
		else
			continue;
		for (base = line + len; base > path && base[-1] != '/'; base--)
			;
		len = (size_t)(line + len - base);
		if (len > 8 && strncmp(base + len - 8, ".service", 8) == 0)
			return xstrndup(base, len);
	}
	return NULL;
}

/* The unit we run in, when systemd started us (INVOCATION_ID set), else NULL. */
static char *
own_unit(void)
{
	char	 text[4096];
	size_t	 n;
	FILE	*f;
	char	*unit = NULL;

	if (getenv("INVOCATION_ID") == NULL)
		return NULL;
	if ((f = fopen("/proc/self/cgroup", "re")) != NULL) {
		n = fread(text, 1, sizeof text - 1, f);
		text[n] = '\0';
		fclose(f);
		unit = milestone_unit_name(text);
	}
	return unit != NULL ? unit : xstrdup(MILESTONE_UNIT_FALLBACK);
}

int
milestone_systemd(double *userspace, double *unit_start, char **cause)
{
	struct buf	 out = { NULL, 0, 0 };
	char		*unit = NULL;
	int		 ret = -1;

	*userspace = *unit_start = 0;
	if (app_systemctl_show(NULL, "UserspaceTimestampMonotonic", &out, cause) != 0)
		goto out;
	buf_add(&out, "", 1);
	*userspace = mono_usec_to_wall(show_usec(out.data, "UserspaceTimestampMonotonic"));
	buf_free(&out);
	if ((unit = own_unit()) != NULL) {
		if (app_systemctl_show(unit, "InactiveExitTimestampMonotonic,"
		    "ExecMainStartTimestampMonotonic", &out, cause) != 0)
			goto out;
		buf_add(&out, "", 1);
		*unit_start = mono_usec_to_wall(show_usec(out.data,
		    "InactiveExitTimestampMonotonic"));
		if (*unit_start == 0)
			*unit_start = mono_usec_to_wall(show_usec(out.data,
			    "ExecMainStartTimestampMonotonic"));
	}
	ret = 0;
out:
	buf_free(&out);
	free(unit);
	return ret;
}

double
milestone_pending_time(const char *document)
{
	struct json_object	*o, *v;
	struct tm		 tm;
	const char		*s, *end;
	double			 t = 0;

	if ((o = json_tokener_parse(document)) == NULL)
		return 0;
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "pendingTime", &v) &&
	    json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		memset(&tm, 0, sizeof tm);
		if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL &&
		    (*end == 'Z' || strcmp(end, "+00:00") == 0))
			t = (double)timegm(&tm);
	}
	json_object_put(o);
	return t > 0 ? t : 0;
}

int
milestone_launch(struct imds *imds, double *launch, char **cause)
{
	char	*doc = NULL;
	int	 ret = -1;

	*launch = 0;
	if (imds_get(imds, "dynamic/instance-identity/document", &doc, cause) != OUTCOME_OK) {
		set_cause(cause, "instance identity document: %s", *cause != NULL ? *cause :
		    "not found");
		goto out;
	}
	if ((*launch = milestone_pending_time(doc)) == 0) {
		set_cause(cause, "instance identity document: no pendingTime");
		goto out;
	}
	ret = 0;
out:
	free(doc);
	return ret;
}
