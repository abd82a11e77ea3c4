/* creds.c - the credential chain: environment, else the instance role through IMDS. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "creds.h"
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
	return 0;
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
	ret = 0;
out:
	free(list);
	freezero_str(text);
	free(path);
	return ret;
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
	if (from_imds(p, cause) != 0) {
		/* Still valid, if close to expiry: use them rather than fail. */
		if (p->cur.access_key_id != NULL && now < p->cur.expiration) {
			*out = &p->cur;
			return 0;
		}
		return -1;
	}
	p->fetched = now;
	*out = &p->cur;
	return 0;
}
