/*
 * fuzz_sigv4.c - SigV4 canonicalisation and signing: sigv4_canonical_request,
 * sigv4_string_to_sign, sigv4_authorization.
 *
 * Input: a request in the shape of the AWS SigV4 test suite's .req files:
 *
 *	METHOD SP PATH[?QUERY][ SP HTTP/1.1]\n
 *	Name:value\n			(one per header; no ':' means no value)
 *	<SP or TAB>more\n		(continues the header before: a folded value)
 *	\n
 *	body...
 *
 * Pseudo-headers set the rest of the request and are not signed:
 * X-Fuzz-Region, X-Fuzz-Service, X-Fuzz-Date, X-Fuzz-Payload (payload hash),
 * X-Fuzz-Key (access key id), X-Fuzz-Secret, X-Fuzz-S3 (any value: S3 rules).
 *
 * Checks: the three functions agree (one fails exactly when the others do);
 * a failure has a cause and leaves the caller's buffer as it was; output is
 * deterministic (same bytes on a second call); the canonical request has one
 * line per distinct header plus five, a canonical URI of unreserved bytes,
 * '/' and %XX only (S3 aside), a sorted canonical query; the string to sign
 * ends in the canonical request's SHA-256; the Authorization header has the
 * expected shape. ASan's leak check covers the rest.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigv4.h"
#include "util.h"

#include "fuzz.h"

#define MAX_HEADERS	64
#define PREFIX		"prefix kept on failure"

struct parsed {
	char			*text;		/* the input, cut into strings in place */
	struct sigv4_header	 h[MAX_HEADERS];
	char			*hv[MAX_HEADERS];	/* folded values, allocated */
	size_t			 nh;
	struct sigv4_request	 req;
	const char		*key;
	const char		*secret;
};

static int
pseudo(struct parsed *p, const char *name, const char *value)
{
	const char	*v = value != NULL ? value : "";

	if (strcasecmp(name, "X-Fuzz-Region") == 0)
		p->req.region = v;
	else if (strcasecmp(name, "X-Fuzz-Service") == 0)
		p->req.service = v;
	else if (strcasecmp(name, "X-Fuzz-Date") == 0)
		p->req.amz_date = v;
	else if (strcasecmp(name, "X-Fuzz-Payload") == 0)
		p->req.payload_hash = v;
	else if (strcasecmp(name, "X-Fuzz-Key") == 0)
		p->key = v;
	else if (strcasecmp(name, "X-Fuzz-Secret") == 0)
		p->secret = v;
	else if (strcasecmp(name, "X-Fuzz-S3") == 0)
		p->req.s3 = 1;
	else
		return 0;
	return 1;
}

static void
parse_input(struct parsed *p, const uint8_t *data, size_t len)
{
	char	*s, *nl, *line, *colon, *q, *http, *body;
	size_t	 i, textlen;

	memset(p, 0, sizeof *p);
	p->req.region = "us-east-1";
	p->req.service = "service";
	p->req.amz_date = "20150830T123600Z";
	p->key = "AKIDEXAMPLE";
	p->secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

	/* The body starts after the first blank line; it may hold any byte. */
	body = memmem(data, len, "\n\n", 2);
	textlen = body != NULL ? (size_t)(body - (char *)data) + 1 : len;
	if (body != NULL) {
		p->req.body = body + 2;
		p->req.body_len = len - textlen - 1;
	}
	p->text = fuzz_cstring(data, textlen);

	/* Request line. */
	s = p->text;
	if ((nl = strchr(s, '\n')) != NULL)
		*nl = '\0';
	p->req.method = s;
	if ((q = strchr(s, ' ')) != NULL) {
		*q++ = '\0';
		if ((http = strstr(q, " HTTP/")) != NULL)
			*http = '\0';
		p->req.path = q;
		if ((q = strchr(q, '?')) != NULL) {
			*q++ = '\0';
			p->req.query = q;
		}
	} else
		p->req.path = "";
	if (nl == NULL)
		return;

	/* Headers, with folded continuation lines kept as "\n " in the value. */
	for (line = nl + 1; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if ((*line == ' ' || *line == '\t') && p->nh > 0 &&
		    p->h[p->nh - 1].value != NULL) {
			i = p->nh - 1;
			s = xasprintf("%s\n%s", p->h[i].value, line);
			free(p->hv[i]);
			p->hv[i] = s;
			p->h[i].value = s;
		} else if ((colon = strchr(line, ':')) != NULL) {
			*colon = '\0';
			if (!pseudo(p, line, colon + 1) && p->nh < MAX_HEADERS) {
				p->h[p->nh].name = line;
				p->h[p->nh].value = colon + 1;
				p->nh++;
			}
		} else if (!pseudo(p, line, NULL) && p->nh < MAX_HEADERS) {
			p->h[p->nh].name = line;
			p->h[p->nh].value = NULL;
			p->nh++;
		}
		if (nl == NULL)
			break;
	}
	p->req.headers = p->nh > 0 ? p->h : NULL;
	p->req.nheaders = p->nh;
}

static void
parsed_free(struct parsed *p)
{
	size_t	i;

	for (i = 0; i < p->nh; i++)
		free(p->hv[i]);
	free(p->text);
}

/* Distinct header names, case-insensitively. */
static size_t
distinct_headers(const struct parsed *p)
{
	size_t	i, j, n = 0;

	for (i = 0; i < p->nh; i++) {
		for (j = 0; j < i; j++) {
			if (strcasecmp(p->h[i].name, p->h[j].name) == 0)
				break;
		}
		if (j == i)
			n++;
	}
	return n;
}

/* strcmp on counted strings. */
static int
cmp_counted(const char *a, size_t alen, const char *b, size_t blen)
{
	int	c;

	if ((c = memcmp(a, b, alen < blen ? alen : blen)) != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* One canonical query parameter at p: name and value, and where the next one starts. */
static const char *
query_param(const char *p, const char **name, size_t *nlen, const char **value,
    size_t *vlen)
{
	const char	*e = p;

	while (*e != '=' && *e != '&' && *e != '\n')
		e++;
	FUZZ_CHECK(*e == '=', "canonical query parameter without '='");
	*name = p;
	*nlen = (size_t)(e - p);
	*value = ++e;
	while (*e != '&' && *e != '\n')
		e++;
	*vlen = (size_t)(e - *value);
	return e;
}

static void
check_canonical(const struct parsed *p, const char *creq, size_t len)
{
	const char	*uri, *query, *e, *n1, *v1, *n2, *v2;
	size_t		 nl = 0, i, nl1, vl1, nl2, vl2;
	int		 c;

	FUZZ_CHECK(strlen(creq) == len, "NUL inside the canonical request");
	for (i = 0; i < len; i++) {
		if (creq[i] == '\n')
			nl++;
	}
	FUZZ_CHECK(nl == 5 + distinct_headers(p), "%zu newlines for %zu distinct headers:\n%s",
	    nl, distinct_headers(p), creq);
	FUZZ_CHECK(strncmp(creq, p->req.method, strlen(p->req.method)) == 0 &&
	    creq[strlen(p->req.method)] == '\n', "method line");
	uri = strchr(creq, '\n') + 1;
	query = strchr(uri, '\n') + 1;
	FUZZ_CHECK(uri[0] == '/', "canonical URI does not start with '/'");
	if (!p->req.s3) {
		/* Normalised and encoded again: unreserved bytes, '/' and %XX, no empty segment. */
		for (e = uri; *e != '\n'; e++) {
			if (*e == '%') {
				FUZZ_CHECK(isxdigit((unsigned char)e[1]) &&
				    isxdigit((unsigned char)e[2]), "bad escape in the URI");
				continue;
			}
			FUZZ_CHECK(isalnum((unsigned char)*e) || strchr("-_.~/", *e) != NULL,
			    "byte 0x%02x in the canonical URI", (unsigned char)*e);
			FUZZ_CHECK(!(e[0] == '/' && e[1] == '/'), "empty segment in the URI");
		}
	}
	/* The query's parameters come sorted by name, then value. */
	if (*query == '\n')
		return;
	e = query_param(query, &n1, &nl1, &v1, &vl1);
	while (*e == '&') {
		e = query_param(e + 1, &n2, &nl2, &v2, &vl2);
		c = cmp_counted(n1, nl1, n2, nl2);
		if (c == 0)
			c = cmp_counted(v1, vl1, v2, vl2);
		FUZZ_CHECK(c <= 0, "canonical query not sorted: %.*s",
		    (int)(strchr(query, '\n') - query), query);
		n1 = n2, nl1 = nl2, v1 = v2, vl1 = vl2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct parsed	 p;
	struct buf	 c1 = { NULL, 0, 0 }, c2 = { NULL, 0, 0 }, s1 = { NULL, 0, 0 };
	struct buf	 a1 = { NULL, 0, 0 }, a2 = { NULL, 0, 0 };
	char		*cause = NULL, hash[65], *expect;
	const char	*last;
	int		 rc, rs, ra, ra2;

	parse_input(&p, data, len);
	buf_adds(&c1, PREFIX);
	buf_adds(&s1, PREFIX);
	buf_adds(&a1, PREFIX);

	rc = sigv4_canonical_request(&p.req, &c1, &cause);
	if (rc != 0) {
		FUZZ_CHECK(rc == -1 && cause != NULL, "failure without a cause");
		FUZZ_CHECK(c1.len == strlen(PREFIX) && strcmp(c1.data, PREFIX) == 0,
		    "failure changed the caller's buffer");
	}
	free(cause);
	cause = NULL;
	rs = sigv4_string_to_sign(&p.req, &s1, &cause);
	if (rs != 0) {
		FUZZ_CHECK(cause != NULL && strcmp(s1.data, PREFIX) == 0, "string to sign");
		free(cause);
		cause = NULL;
	}
	ra = sigv4_authorization(&p.req, p.key, p.secret, &a1, &cause);
	if (ra != 0) {
		FUZZ_CHECK(cause != NULL && strcmp(a1.data, PREFIX) == 0, "authorization");
		free(cause);
		cause = NULL;
	}
	FUZZ_CHECK(rc == rs, "canonical request %d, string to sign %d", rc, rs);
	if (rc != 0)
		goto out;
	FUZZ_CHECK(ra == 0 || strcmp(p.key, "") == 0 || strcmp(p.secret, "") == 0 ||
	    strspn(p.key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_.~") != strlen(p.key), "authorization failed for a good request");

	/* Deterministic. */
	FUZZ_CHECK(sigv4_canonical_request(&p.req, &c2, &cause) == 0, "second call failed");
	FUZZ_CHECK(c1.len == strlen(PREFIX) + c2.len &&
	    memcmp(c1.data + strlen(PREFIX), c2.data, c2.len) == 0,
	    "canonical request not deterministic");
	check_canonical(&p, c2.data, c2.len);

	/* The string to sign ends in the canonical request's hash. */
	sigv4_sha256_hex(c2.data, c2.len, hash);
	last = strrchr(s1.data, '\n');
	FUZZ_CHECK(last != NULL && strcmp(last + 1, hash) == 0, "string to sign hash");
	FUZZ_CHECK(strncmp(s1.data + strlen(PREFIX), "AWS4-HMAC-SHA256\n", 17) == 0,
	    "string to sign algorithm");

	if (ra == 0) {
		ra2 = sigv4_authorization(&p.req, p.key, p.secret, &a2, &cause);
		FUZZ_CHECK(ra2 == 0 && strcmp(a1.data + strlen(PREFIX), a2.data) == 0,
		    "authorization not deterministic");
		expect = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
		    "SignedHeaders=", p.key, p.req.amz_date, p.req.region, p.req.service);
		FUZZ_CHECK(strncmp(a2.data, expect, strlen(expect)) == 0,
		    "authorization shape: %s", a2.data);
		last = strstr(a2.data, ", Signature=");
		FUZZ_CHECK(last != NULL && strlen(last + 12) == 64 &&
		    strspn(last + 12, "0123456789abcdef") == 64, "signature: %s", a2.data);
		free(expect);
	}
out:
	free(cause);
	buf_free(&c1);
	buf_free(&c2);
	buf_free(&s1);
	buf_free(&a1);
	buf_free(&a2);
	parsed_free(&p);
	return 0;
}
