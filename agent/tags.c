/* tags.c - the instance's and its group's tags: read (IMDS, EC2, Auto Scaling), set (CI). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "imds.h"
#include "tags.h"
#include "util.h"
#include "xml.h"

#define TAGS_MAX_KEYS	8

void
tags_free(struct tags *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

const char *
tags_get(const struct tags *t, const char *key)
{
	size_t	i;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].key, key) == 0)
			return t->v[i].value;
	}
	return NULL;
}

void
tags_add(struct tags *t, const char *key, const char *value)
{
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n].key = xstrdup(key);
	t->v[t->n].value = xstrdup(value);
	t->n++;
}

enum outcome
tags_from_imds(struct imds *m, const char *const *keys, struct tags *t, char **cause)
{
	char		*list = NULL, *value = NULL, *path = NULL, *line, *save = NULL;
	size_t		 i;
	enum outcome	 r, ret = OUTCOME_FATAL;

	memset(t, 0, sizeof *t);
	if ((r = imds_get(m, "meta-data/tags/instance", &list, cause)) != OUTCOME_OK) {
		/* IMDS itself retried what it could: what is left is an answer. */
		ret = r == OUTCOME_NOT_FOUND ? OUTCOME_NOT_FOUND : OUTCOME_FATAL;
		goto out;
	}
	for (line = strtok_r(list, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; keys[i] != NULL; i++) {
			if (strcmp(line, keys[i]) != 0)
				continue;
			free(path);
			path = xasprintf("meta-data/tags/instance/%s", line);
			free(value);
			value = NULL;
			/* A tag removed between the two reads is simply not there. */
			if ((r = imds_get(m, path, &value, cause)) == OUTCOME_FATAL)
				goto out;
			if (r == OUTCOME_OK)
				tags_add(t, line, value);
		}
	}
	ret = OUTCOME_OK;
out:
	free(list);
	free(value);
	free(path);
	if (ret == OUTCOME_FATAL)
		tags_free(t);
	return ret;
}

void
tags_parse_ec2(const struct xml_node *root, struct tags *t)
{
	struct xml_node	*item;
	const char	*k, *v;

	for (item = xml_child(xml_find(root, "tagSet"), "item"); item != NULL;
	    item = xml_next(item)) {
		if ((k = xml_child_text(item, "key")) == NULL)
			continue;
		v = xml_child_text(item, "value");
		tags_add(t, k, v != NULL ? v : "");
	}
}

void
tags_parse_autoscaling(const struct xml_node *root, struct tags *t)
{
	struct xml_node	*item;
	const char	*k, *v;

	for (item = xml_child(xml_find(root, "Tags"), "member"); item != NULL;
	    item = xml_next(item)) {
		if ((k = xml_child_text(item, "Key")) == NULL)
			continue;
		v = xml_child_text(item, "Value");
		tags_add(t, k, v != NULL ? v : "");
	}
}

/* Append Name/Value pairs for a filter whose values are the wanted keys. */
static size_t
key_filter(struct aws_param *p, size_t n, char names[][48], const char *const *keys,
    const char *prefix)
{
	size_t	i;

	for (i = 0; keys[i] != NULL && i < TAGS_MAX_KEYS; i++) {
		snprintf(names[i], sizeof names[i], "%s%zu", prefix, i + 1);
		p[n].name = names[i];
		p[n].value = keys[i];
		n++;
	}
	return n;
}

/*
 * EC2 and Auto Scaling DescribeTags differ only in their filter names and
 * answer shapes: one resource filter, one key filter with the wanted keys.
 */
static enum outcome
describe_tags(struct aws *a, int svc, const char *const names[4], const char *resource,
    const char *const *keys, struct tags *t, char **cause)
{
	struct aws_param	p[4 + TAGS_MAX_KEYS];
	struct aws_result	res;
	char			buf[TAGS_MAX_KEYS][48];
	size_t			n = 0;
	enum outcome		ret;

	memset(t, 0, sizeof *t);
	p[n++] = (struct aws_param){ names[0], names[1] };
	p[n++] = (struct aws_param){ names[2], resource };
	p[n++] = (struct aws_param){ names[3], "key" };
	n = key_filter(p, n, buf, keys, svc == AWS_EC2 ? "Filter.2.Value." :
	    "Filters.member.2.Values.member.");
	if ((ret = aws_call(a, svc, "DescribeTags", p, n, &res, cause)) != OUTCOME_OK)
		goto out;
	if (svc == AWS_EC2)
		tags_parse_ec2(res.xml, t);
	else
		tags_parse_autoscaling(res.xml, t);
out:
	aws_result_free(&res);
	return ret;
}

enum outcome
tags_from_instance(struct aws *a, const char *instance_id, const char *const *keys,
    struct tags *t, char **cause)
{
	static const char *const names[4] = {
		"Filter.1.Name", "resource-id", "Filter.1.Value.1", "Filter.2.Name"
	};

	return describe_tags(a, AWS_EC2, names, instance_id, keys, t, cause);
}

enum outcome
tags_from_group(struct aws *a, const char *group, const char *const *keys,
    struct tags *t, char **cause)
{
	static const char *const names[4] = {
		"Filters.member.1.Name", "auto-scaling-group",
		"Filters.member.1.Values.member.1", "Filters.member.2.Name"
	};

	return describe_tags(a, AWS_AUTOSCALING, names, group, keys, t, cause);
}

enum outcome
tags_instance_group(struct aws *a, const char *instance_id, char **group,
    char **lifecycle_state, char **cause)
{
	struct aws_param	 p[] = { { "InstanceIds.member.1", instance_id } };
	struct aws_result	 res;
	struct xml_node		*m;
	const char		*g, *s;
	enum outcome		 ret;

	*group = NULL;
	if (lifecycle_state != NULL)
		*lifecycle_state = NULL;
	if ((ret = aws_call(a, AWS_AUTOSCALING, "DescribeAutoScalingInstances", p, nitems(p),
	    &res, cause)) != OUTCOME_OK)
		goto out;
	m = xml_child(xml_find(res.xml, "AutoScalingInstances"), "member");
	if (m == NULL || (g = xml_child_text(m, "AutoScalingGroupName")) == NULL) {
		ret = OUTCOME_NOT_FOUND;
		goto out;
	}
	*group = xstrdup(g);
	if (lifecycle_state != NULL && (s = xml_child_text(m, "LifecycleState")) != NULL)
		*lifecycle_state = xstrdup(s);
out:
	aws_result_free(&res);
	return ret;
}

/*
 * One CreateOrUpdateTags (nfield 5: key, value, propagation) or DeleteTags
 * (nfield 3: the key alone) for up to TAGS_SET_MAX tags of a group.
 */
static enum outcome
group_tags_call(struct aws *a, const char *action, const char *group, const char *const kv[][2],
    size_t n, size_t nfield, int propagate, char **cause)
{
	static const char	*field[] = { "ResourceId", "ResourceType", "Key", "Value",
				    "PropagateAtLaunch" };
	struct aws_param	 p[TAGS_SET_MAX * nitems(field)];
	struct aws_result	 res;
	char			 names[nitems(p)][48];
	const char		*value[nitems(field)];
	size_t			 i, f, np = 0;
	enum outcome		 ret;

	if (n > TAGS_SET_MAX)
		fatal("%s: %zu tags, at most %d", action, n, TAGS_SET_MAX);
	for (i = 0; i < n; i++) {
		value[0] = group;
		value[1] = "auto-scaling-group";
		value[2] = kv[i][0];
		value[3] = kv[i][1];
		value[4] = propagate ? "true" : "false";
		for (f = 0; f < nfield; f++, np++) {
			snprintf(names[np], sizeof names[np], "Tags.member.%zu.%s", i + 1,
			    field[f]);
			p[np].name = names[np];
			p[np].value = value[f];
		}
	}
	ret = aws_call(a, AWS_AUTOSCALING, action, p, np, &res, cause);
	aws_result_free(&res);
	return ret;
}

enum outcome
tags_set_group(struct aws *a, const char *group, const char *const kv[][2], size_t n,
    int propagate, char **cause)
{
	return group_tags_call(a, "CreateOrUpdateTags", group, kv, n, 5, propagate, cause);
}

enum outcome
tags_delete_group(struct aws *a, const char *group, const char *const *keys, size_t n,
    char **cause)
{
	const char	*kv[TAGS_SET_MAX][2];
	size_t		 i;

	for (i = 0; i < n && i < TAGS_SET_MAX; i++) {
		kv[i][0] = keys[i];
		kv[i][1] = NULL;
	}
	return group_tags_call(a, "DeleteTags", group, kv, n, 3, 0, cause);
}
