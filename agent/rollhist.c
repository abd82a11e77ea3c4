/* rollhist.c - the history of rollouts on the groups' tags: read, pruned, looked up, listed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "aws.h"
#include "history.h"
#include "rollgrp.h"
#include "rollhist.h"
#include "util.h"
#include "xml.h"

#define ROLLHIST_KEEP	16	/* history entries kept on each group */

/* The digest of the newest rollout of version, from the groups' history. */
const char *
rollhist_digest(const struct rollgrp *const *gs, size_t n, const char *version)
{
	const struct history	*best = NULL, *h;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < gs[i]->nhist; j++) {
			h = &gs[i]->hist[j];
			if (h->sha256 != NULL && strcmp(h->version, version) == 0 &&
			    (best == NULL || h->started > best->started))
				best = h;
		}
	}
	return best != NULL ? best->sha256 : NULL;
}

/* Keep room on the group for one more entry: the oldest go. */
int
rollhist_prune(struct aws *a, const struct rollgrp *g, char **cause)
{
	size_t	i, oldest, left = g->nhist;
	char	*key;
	int	 gone[ROLLGRP_MAX_INSTANCES] = { 0 };

	while (left >= ROLLHIST_KEEP) {
		oldest = g->nhist;
		for (i = 0; i < g->nhist; i++) {
			if (!gone[i] && (oldest == g->nhist ||
			    g->hist[i].started < g->hist[oldest].started))
				oldest = i;
		}
		key = xasprintf(HISTORY_PREFIX "%lld", g->hist[oldest].started);
		if (rollgrp_delete_tag(a, g->name, key, cause) != 0) {
			free(key);
			return -1;
		}
		free(key);
		gone[oldest] = 1;
		left--;
	}
	return 0;
}

/* Every history tag of every group: DescribeTags, page by page. */
int
rollhist_all(struct aws *a, struct history **hist, size_t *nhist, char **cause)
{
	struct aws_param	 p[1];
	struct aws_result	 res;
	struct xml_node		*m;
	struct history		*h = NULL;
	const char		*k, *v, *id;
	char			*token = NULL;
	size_t			 n = 0;
	int			 ret = -1;

	memset(&res, 0, sizeof res);
	do {
		p[0] = (struct aws_param){ "NextToken", token };
		aws_result_free(&res);
		if (aws_call_ok(a, AWS_AUTOSCALING, "DescribeTags", p, token != NULL, &res,
		    cause) != 0)
			goto out;
		for (m = xml_child(xml_find(res.xml, "Tags"), "member"); m != NULL &&
		    n < ROLLGRP_MAX_INSTANCES * 4; m = xml_next(m)) {
			k = xml_child_text(m, "Key");
			v = xml_child_text(m, "Value");
			id = xml_child_text(m, "ResourceId");
			if (k == NULL || v == NULL || id == NULL)
				continue;
			h = xrealloc(h, (n + 1) * sizeof *h);
			if (history_parse(k, v, &h[n]) == 0)
				h[n++].to = xstrdup(id);
		}
		free(token);
		v = xml_find_text(res.xml, "NextToken");
		token = v != NULL && *v != '\0' ? xstrdup(v) : NULL;
	} while (token != NULL);
	ret = 0;
out:
	*hist = h;
	*nhist = n;
	free(token);
	aws_result_free(&res);
	return ret;
}

static int
history_cmp(const void *a, const void *b)
{
	const struct history	*x = a, *y = b;

	return x->started < y->started ? -1 : x->started > y->started;
}

static char *
iso_time(long long t)
{
	time_t		tt = (time_t)t;
	struct tm	tm;
	char		s[32];

	if (t < 0 || gmtime_r(&tt, &tm) == NULL)
		return NULL;
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(s);
}

static struct json_object *
json_time(long long t)
{
	char			*s = iso_time(t);
	struct json_object	*j = s != NULL ? json_object_new_string(s) : NULL;

	free(s);
	return j;
}

/* The entries oldest first: lines on out, or one JSON array. */
void
rollhist_print(FILE *out, int json, struct history *h, size_t n)
{
	struct json_object	*arr = json_object_new_array(), *jh, *js, *jst;
	size_t			 i, k;
	char			*t, *b, *e;

	qsort(h, n, sizeof *h, history_cmp);
	for (i = 0; i < n; i++) {
		if (!json) {
			t = iso_time(h[i].started);
			fprintf(out, "%s  %s  %s -> %s  %s  sha256 %.12s  by %s\n", t,
			    h[i].version, h[i].from, h[i].to, h[i].outcome, h[i].sha256 != NULL ?
			    h[i].sha256 : "-", h[i].by != NULL ? h[i].by : "?");
			free(t);
			for (k = 0; k < h[i].nsteps; k++) {
				b = iso_time(h[i].begin[k]);
				e = iso_time(h[i].end[k]);
				fprintf(out, "    step %zu: %s .. %s\n", k + 1, b != NULL ? b :
				    "-", e != NULL ? e : "-");
				free(b);
				free(e);
			}
			continue;
		}
		jh = json_object_new_object();
		json_object_object_add(jh, "started", json_time(h[i].started));
		json_object_object_add(jh, "version", json_object_new_string(h[i].version));
		json_object_object_add(jh, "sha256", h[i].sha256 != NULL ?
		    json_object_new_string(h[i].sha256) : NULL);
		json_object_object_add(jh, "outcome", json_object_new_string(h[i].outcome));
		json_object_object_add(jh, "from", json_object_new_string(h[i].from));
		json_object_object_add(jh, "to", json_object_new_string(h[i].to));
		json_object_object_add(jh, "by", h[i].by != NULL ?
		    json_object_new_string(h[i].by) : NULL);
		jst = json_object_new_array();
		for (k = 0; k < h[i].nsteps; k++) {
			js = json_object_new_object();
			json_object_object_add(js, "began", json_time(h[i].begin[k]));
			json_object_object_add(js, "ended", json_time(h[i].end[k]));
			json_object_array_add(jst, js);
		}
		json_object_object_add(jh, "steps", jst);
		json_object_array_add(arr, jh);
	}
	if (json)
		fprintf(out, "%s\n", json_object_to_json_string_ext(arr,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
}

