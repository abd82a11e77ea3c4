/* rollalarm.c - the CloudWatch alarms a rollout watches: one tag value, their states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "aws.h"
#include "history.h"
#include "rollalarm.h"
#include "util.h"
#include "xml.h"

#define ROLLALARM_MAX	16	/* --alarm names: AlarmNames in one DescribeAlarms */

/* The alarms of a DescribeAlarms answer, metric ones then composite ones; NULL after the last. */
static struct xml_node *
alarm_next(const struct xml_node *root, const struct xml_node *m)
{
	struct xml_node	*n = NULL;

	if (m != NULL && (n = xml_next(m)) != NULL)
		return n;
	if (m == NULL)
		n = xml_child(xml_find(root, "MetricAlarms"), "member");
	if (n == NULL && (m == NULL || strcmp(m->parent->name, "MetricAlarms") == 0))
		n = xml_child(xml_find(root, "CompositeAlarms"), "member");
	return n;
}

/*
 * DescribeAlarms for a comma-separated list of names, composite alarms too
 * (without AlarmTypes AWS answers metric alarms only); every name must exist.
 */
static int
describe_alarms(struct aws *a, const char *alarms, struct aws_result *res, char **cause)
{
	struct aws_param	 p[2 + ROLLALARM_MAX];
	char			 names[ROLLALARM_MAX][40], *copy, *w, *save = NULL;
	struct xml_node		*m;
	size_t			 n = 0, found = 0;
	int			 ret = -1;

	memset(res, 0, sizeof *res);
	copy = xstrdup(alarms);
	p[0] = (struct aws_param){ "AlarmTypes.member.1", "CompositeAlarm" };
	p[1] = (struct aws_param){ "AlarmTypes.member.2", "MetricAlarm" };
	for (w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		if (n == ROLLALARM_MAX) {
			set_cause(cause, "more than %d alarms in '%s'", ROLLALARM_MAX,
			    alarms);
			goto out;
		}
		snprintf(names[n], sizeof names[n], "AlarmNames.member.%zu", n + 1);
		p[2 + n].name = names[n];
		p[2 + n].value = w;
		n++;
	}
	if (aws_call_ok(a, AWS_CLOUDWATCH, "DescribeAlarms", p, 2 + n, res, cause) != 0)
		goto out;
	for (m = alarm_next(res->xml, NULL); m != NULL; m = alarm_next(res->xml, m))
		found += xml_child_text(m, "AlarmName") != NULL;
	if (found < n) {
		set_cause(cause, "DescribeAlarms: %zu of the alarms %s do not exist", n - found,
		    alarms);
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

/* 1, with the alarm and its reason, when any alarm is in state ALARM; 0 when none is. */
int
rollalarm_check(struct aws *a, const char *alarms, char **cause)
{
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*state, *reason;
	int			 ret = -1;

	if (alarms == NULL || *alarms == '\0')
		return 0;
	if (describe_alarms(a, alarms, &res, cause) != 0)
		goto out;
	ret = 0;
	for (m = alarm_next(res.xml, NULL); m != NULL; m = alarm_next(res.xml, m)) {
		state = xml_child_text(m, "StateValue");
		if (state == NULL || strcmp(state, "ALARM") != 0)
			continue;
		reason = xml_child_text(m, "StateReason");
		set_cause(cause, "alarm %s is in ALARM (%s)", xml_child_text(m, "AlarmName"),
		    reason != NULL ? reason : "no reason given");
		ret = 1;
		break;
	}
out:
	aws_result_free(&res);
	return ret;
}

/* The --alarm names as one tag value (NULL for none). */
int
rollalarm_join(const char *const *names, size_t n, char **out, char **cause)
{
	struct buf	b;
	size_t		i;

	*out = NULL;
	if (n == 0)
		return 0;
	if (n > ROLLALARM_MAX)
		return set_cause(cause, "at most %d --alarm", ROLLALARM_MAX);
	memset(&b, 0, sizeof b);
	for (i = 0; i < n; i++) {
		if (*names[i] == '\0' || strchr(names[i], ',') != NULL) {
			buf_free(&b);
			return set_cause(cause, "bad --alarm '%s' (empty, or with a comma)",
			    names[i]);
		}
		buf_addf(&b, "%s%s", i > 0 ? "," : "", names[i]);
	}
	*out = buf_take(&b);
	if (strlen(*out) > HISTORY_MAX) {
		free(*out);
		*out = NULL;
		return set_cause(cause, "the --alarm names exceed %d characters together (one "
		    "tag value)", HISTORY_MAX);
	}
	return 0;
}

/* The alarms' states, printed to out (text), or added to doc when it is not NULL (--json). */
int
rollalarm_status(struct aws *a, const char *alarms, FILE *out, struct json_object *doc,
    char **cause)
{
	struct aws_result	 res;
	struct json_object	*arr, *ja;
	struct xml_node		*m;
	const char		*name, *state, *reason;

	if (alarms == NULL)
		return 0;
	if (describe_alarms(a, alarms, &res, cause) != 0) {
		aws_result_free(&res);
		return -1;
	}
	arr = json_object_new_array();
	for (m = alarm_next(res.xml, NULL); m != NULL; m = alarm_next(res.xml, m)) {
		name = xml_child_text(m, "AlarmName");
		state = xml_child_text(m, "StateValue");
		reason = xml_child_text(m, "StateReason");
		if (name == NULL)
			continue;
		if (doc == NULL) {
			fprintf(out, "  alarm %s: %s (%s)\n", name, state != NULL ? state : "?",
			    reason != NULL ? reason : "");
			continue;
		}
		ja = json_object_new_object();
		json_object_object_add(ja, "name", json_object_new_string(name));
		json_object_object_add(ja, "state", state != NULL ?
		    json_object_new_string(state) : NULL);
		json_object_object_add(ja, "reason", reason != NULL ?
		    json_object_new_string(reason) : NULL);
		json_object_array_add(arr, ja);
	}
	if (doc != NULL)
		json_object_object_add(doc, "alarms", arr);
	else
		json_object_put(arr);
	aws_result_free(&res);
	return 0;
}

