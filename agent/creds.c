/* creds.c - the credential chain: environment, else the instance role through IMDS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "creds.h"
#include "log.h"
#include "util.h"

void
creds_init(struct creds_provider *p, struct imds *imds)
{
	memset(p, 0, sizeof *p);
	p->imds = imds;
}

void
creds_clear(struct creds *c)
{
	if (c == NULL)
		return;
	free(c->access_key_id);
	freezero_str(c->secret_access_key);
	freezero_str(c->session_token);
	memset(c, 0, sizeof *c);
}

void
creds_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	creds_clear(&p->cur);
	free(p->role);
	free(p->source);
	p->role = p->source = NULL;
}

void
creds_invalidate(struct creds_provider *p)
{
	creds_clear(&p->cur);
}

/* An expiration as the log shows it, ISO 8601 UTC; 0 means none. */
static void
expiration_text(double when, char *out, size_t len)
{
	struct tm	tm;
	time_t		t = (time_t)when;

	if (when <= 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, len, "never");
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double
creds_parse_time(const char *s)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof tm);
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*end == '.') {	/* fractional seconds */
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	return (double)timegm(&tm);
}

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int
creds_parse_imds(const char *text, struct creds *c, char **cause)
{
	struct json_object	*o = NULL;
	const char		*code, *ak, *sk, *tok, *exp;
	double			 when;
	int			 ret = -1;

	memset(c, 0, sizeof *c);
	if ((o = json_tokener_parse(text)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		set_cause(cause, "role credentials are not a JSON object");
		goto out;
	}
	if ((code = jstr(o, "Code")) != NULL && strcmp(code, "Success") != 0) {
		set_cause(cause, "role credentials not available: Code %s", code);
		goto out;
	}
	ak = jstr(o, "AccessKeyId");
	sk = jstr(o, "SecretAccessKey");
	tok = jstr(o, "Token");
	exp = jstr(o, "Expiration");
	if (ak == NULL || sk == NULL || *ak == '\0' || *sk == '\0') {
		set_cause(cause, "role credentials lack AccessKeyId or SecretAccessKey");
		goto out;
	}
	when = 0;
	if (exp != NULL && (when = creds_parse_time(exp)) < 0) {
		set_cause(cause, "role credentials: bad Expiration '%s'", exp);
		goto out;
	}
	c->access_key_id = xstrdup(ak);
	c->secret_access_key = xstrdup(sk);
	c->session_token = tok != NULL && *tok != '\0' ? xstrdup(tok) : NULL;
	c->expiration = when;
	ret = 0;
out:
	/* json-c keeps its own copy of the secret: wipe it before the object goes. */
	if (o != NULL && json_object_is_type(o, json_type_object)) {
		struct json_object	*v;
		const char		*keys[] = { "SecretAccessKey", "Token" };
		size_t			 i;

		for (i = 0; i < nitems(keys); i++) {
			if (json_object_object_get_ex(o, keys[i], &v) &&
			    json_object_is_type(v, json_type_string))
				explicit_bzero((char *)json_object_get_string(v),
				    (size_t)json_object_get_string_len(v));
		}
	}
	json_object_put(o);
	return ret;
}

static int
from_env(struct creds_provider *p)
{
	const char	*ak, *sk, *tok;

	ak = getenv("AWS_ACCESS_KEY_ID");
	sk = getenv("AWS_SECRET_ACCESS_KEY");
	tok = getenv("AWS_SESSION_TOKEN");
	if (ak == NULL || sk == NULL || *ak == '\0' || *sk == '\0')
		return -1;
	creds_clear(&p->cur);
	p->cur.access_key_id = xstrdup(ak);
	p->cur.secret_access_key = xstrdup(sk);
	p->cur.session_token = tok != NULL && *tok != '\0' ? xstrdup(tok) : NULL;
	free(p->source);
	p->source = xstrdup("environment");
	log_debug("creds: using AWS_ACCESS_KEY_ID from the environment (%s session token)",
	    p->cur.session_token != NULL ? "with a" : "no");
	return 0;
}

/* One line per fetch from IMDS: which role, until when; never the keys. */
static void
log_refreshed(const struct creds_provider *p)
{
	char	when[32];

	expiration_text(p->cur.expiration, when, sizeof when);
	if (p->cur.expiration > 0)
		log_debug("creds: role %s credentials fetched (fetch %lu): expire %s, in %.0f s",
		    p->role, p->refreshes, when, p->cur.expiration - wall_now());
	else
		log_debug("creds: role %s credentials fetched (fetch %lu): no expiration",
		    p->role, p->refreshes);
}

static int
from_imds(struct creds_provider *p, char **cause)
{
	struct creds	 c;
	char		*list = NULL, *text = NULL, *path = NULL, *nl;
	enum outcome	 r;
	int		 ret = -1;

	if (p->role == NULL) {
		r = imds_get(p->imds, "meta-data/iam/security-credentials/", &list, cause);
		if (r == OUTCOME_NOT_FOUND) {
			set_cause(cause, "no credentials: no AWS_ACCESS_KEY_ID and the "
			    "instance has no IAM role");
			goto out;
		}
		if (r != OUTCOME_OK)
			goto out;
		if ((nl = strchr(list, '\n')) != NULL)
			*nl = '\0';
		if (*list == '\0' || strchr(list, '/') != NULL) {
			set_cause(cause, "IMDS gave a bad role name");
			goto out;
		}
		p->role = xstrdup(list);
		log_debug("creds: instance role is %s", p->role);
	}
	path = xasprintf("meta-data/iam/security-credentials/%s", p->role);
	if ((r = imds_get(p->imds, path, &text, cause)) != OUTCOME_OK) {
		if (r == OUTCOME_NOT_FOUND)
			set_cause(cause, "IMDS has no credentials for role %s", p->role);
		goto out;
	}
	if (creds_parse_imds(text, &c, cause) != 0)
		goto out;
	creds_clear(&p->cur);
	p->cur = c;
	free(p->source);
	p->source = xasprintf("instance role %s", p->role);
	p->refreshes++;
	log_refreshed(p);
	ret = 0;
out:
	free(list);
	freezero_str(text);
	free(path);
	return ret;
}

/* Why the role's credentials are fetched now: none yet, or close to their expiration. */
static void
log_refreshing(const struct creds_provider *p)
{
	char	when[32];

	if (p->cur.access_key_id == NULL) {
		log_debug("creds: fetching instance role credentials from IMDS (none cached)");
		return;
	}
	expiration_text(p->cur.expiration, when, sizeof when);
	log_debug("creds: refreshing role %s credentials: they expire %s, within %d s",
	    p->role != NULL ? p->role : "?", when, CREDS_REFRESH_MARGIN);
}

int
creds_get(struct creds_provider *p, const struct creds **out, char **cause)
{
	double	now = wall_now();

	*out = NULL;
	if (p->cur.access_key_id != NULL && (p->cur.expiration == 0 ||
	    now < p->cur.expiration - CREDS_REFRESH_MARGIN)) {
		*out = &p->cur;
		return 0;
	}
	if (from_env(p) == 0) {
		*out = &p->cur;
		return 0;
	}
	log_refreshing(p);
	if (from_imds(p, cause) != 0) {
		/* Still valid, if close to expiry: use them rather than fail. */
		if (p->cur.access_key_id != NULL && now < p->cur.expiration) {
			log_debug("creds: refresh failed (%s): the current ones stay in use, "
			    "%.0f s left", *cause != NULL ? *cause : "unknown error",
			    p->cur.expiration - now);
			*out = &p->cur;
			return 0;
		}
		return -1;
	}
	p->fetched = now;
	*out = &p->cur;
	return 0;
}
