/* test_sigv4.c - sigv4.c against the AWS SigV4 test suite, plus cases the suite lacks. */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigv4.h"
#include "tap.h"
#include "util.h"

#define VECTORS_DEFAULT	"../shared/testdata/aws4_testsuite"
#define VECTORS_EXPECTED 34
#define AKID		"AKIDEXAMPLE"
#define SECRET		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* One parsed .req file; the strings are owned here, hs points into names/values. */
struct vreq {
	char			 *method;
	char			 *path;
	char			 *query;
	char			**names;
	char			**values;
	size_t			  n;
	struct sigv4_header	 *hs;
	char			 *body;
	size_t			  body_len;
};

struct vlist {
	char	**v;
	size_t	  n;
};

static char *
read_text(const char *path, size_t *lenp)
{
	FILE		*f;
	struct buf	 b = { 0 };
	char		 chunk[4096];
	size_t		 got;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, got);
	if (ferror(f)) {
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	if (lenp != NULL)
		*lenp = b.len;
	return buf_take(&b);
}

/* The expected files may or may not end in a newline; the values never do. */
static char *
read_expected(const char *dir, const char *name, const char *ext)
{
	char	*path, *s;
	size_t	 len;

	path = xasprintf("%s/%s.%s", dir, name, ext);
	s = read_text(path, &len);
	free(path);
	if (s != NULL && len > 0 && s[len - 1] == '\n')
		s[len - 1] = '\0';
	return s;
}

static void
vreq_add_header(struct vreq *v, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	v->names = xrealloc(v->names, (v->n + 1) * sizeof *v->names);
	v->values = xrealloc(v->values, (v->n + 1) * sizeof *v->values);
	v->names[v->n] = xstrndup(name, nlen);
	v->values[v->n] = xstrndup(value, vlen);
	v->n++;
}

static void
vreq_free(struct vreq *v)
{
	size_t	i;

	free(v->method);
	free(v->path);
	free(v->query);
	for (i = 0; i < v->n; i++) {
		free(v->names[i]);
		free(v->values[i]);
	}
	free(v->names);
	free(v->values);
	free(v->hs);
	free(v->body);
	memset(v, 0, sizeof *v);
}

static const char *
vreq_header(const struct vreq *v, const char *name)
{
	size_t	i;

	for (i = 0; i < v->n; i++) {
		if (strcasecmp(v->names[i], name) == 0)
			return v->values[i];
	}
	return NULL;
}

/*
 * Parse "METHOD TARGET HTTP/1.1", header lines "Name:value" (a line starting
 * with a blank continues the previous value, kept with its line break for
 * sigv4 to fold), a blank line, then the body. The target may hold spaces.
 */
static int
parse_req(const char *text, size_t len, struct vreq *v, char **cause)
{
	const char	*end = text + len, *line, *eol, *sp1, *sp2, *colon, *q;
	size_t		 llen, old;
	int		 rv = -1;

	memset(v, 0, sizeof *v);
	if ((eol = memchr(text, '\n', len)) == NULL)
		eol = end;
	sp1 = memchr(text, ' ', (size_t)(eol - text));
	for (sp2 = eol; sp2 > text && sp2[-1] != ' '; sp2--)
		;
	sp2 = sp2 > text ? sp2 - 1 : NULL;
	if (sp1 == NULL || sp1 == sp2) {
		set_cause(cause, "bad request line");
		goto out;
	}
	v->method = xstrndup(text, (size_t)(sp1 - text));
	if ((q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1))) != NULL) {
		v->path = xstrndup(sp1 + 1, (size_t)(q - sp1 - 1));
		v->query = xstrndup(q + 1, (size_t)(sp2 - q - 1));
	} else
		v->path = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));

	for (line = eol < end ? eol + 1 : end; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			eol = end;
		llen = (size_t)(eol - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0) {
			if (eol < end) {
				v->body_len = (size_t)(end - eol - 1);
				v->body = xmalloc(v->body_len + 1);
				memcpy(v->body, eol + 1, v->body_len);
				v->body[v->body_len] = '\0';
			}
			break;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (v->n == 0) {
				set_cause(cause, "continuation before any header");
				goto out;
			}
			old = strlen(v->values[v->n - 1]);
			v->values[v->n - 1] = xrealloc(v->values[v->n - 1],
			    old + 1 + llen + 1);
			v->values[v->n - 1][old] = '\n';
			memcpy(v->values[v->n - 1] + old + 1, line, llen);
			v->values[v->n - 1][old + 1 + llen] = '\0';
		} else {
			if ((colon = memchr(line, ':', llen)) == NULL) {
				set_cause(cause, "header line without ':'");
				goto out;
			}
			vreq_add_header(v, line, (size_t)(colon - line),
			    colon + 1, llen - (size_t)(colon - line) - 1);
		}
		if (eol == end)
			break;
	}
	rv = 0;
out:
	return rv;
}

static void
vreq_finish(struct vreq *v)
{
	size_t	i;

	v->hs = xcalloc(v->n, sizeof *v->hs);
	for (i = 0; i < v->n; i++) {
		v->hs[i].name = v->names[i];
		v->hs[i].value = v->values[i];
	}
}

/* The session token of a vector is the x-amz-security-token line of its .creq. */
static char *
creq_token(const char *creq)
{
	const char	*p, *e;
	const char	 key[] = "\nx-amz-security-token:";

	if ((p = strstr(creq, key)) == NULL)
		return NULL;
	p += sizeof key - 1;
	e = strchr(p, '\n');
	return e != NULL ? xstrndup(p, (size_t)(e - p)) : xstrdup(p);
}

static int
is_dir(const char *path)
{
	struct stat	sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A vector is a directory D holding D/basename(D).req; they may nest (normalize-path/). */
static void
find_vectors(const char *root, const char *rel, struct vlist *out)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		*dir, *sub, *full, *req;

	dir = rel[0] == '\0' ? xstrdup(root) : xasprintf("%s/%s", root, rel);
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		sub = rel[0] == '\0' ? xstrdup(de->d_name) :
		    xasprintf("%s/%s", rel, de->d_name);
		full = xasprintf("%s/%s", root, sub);
		if (is_dir(full)) {
			req = xasprintf("%s/%s.req", full, de->d_name);
			if (stat(req, &sb) == 0 && S_ISREG(sb.st_mode)) {
				out->v = xrealloc(out->v,
				    (out->n + 1) * sizeof *out->v);
				out->v[out->n++] = xstrdup(sub);
			}
			free(req);
			find_vectors(root, sub, out);
		}
		free(full);
		free(sub);
	}
	closedir(d);
	free(dir);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_vector(const char *root, const char *rel)
{
	struct vreq		 v;
	struct sigv4_request	 req;
	struct buf		 got = { 0 };
	char			*dir, *path = NULL, *text = NULL, *cause = NULL;
	char			*creq = NULL, *sts = NULL, *authz = NULL;
	char			*token = NULL;
	const char		*name, *amz_date;
	size_t			 len;

	memset(&v, 0, sizeof v);
	name = strrchr(rel, '/') != NULL ? strrchr(rel, '/') + 1 : rel;
	dir = xasprintf("%s/%s", root, rel);
	path = xasprintf("%s/%s.req", dir, name);
	creq = read_expected(dir, name, "creq");
	sts = read_expected(dir, name, "sts");
	authz = read_expected(dir, name, "authz");
	if ((text = read_text(path, &len)) == NULL ||
	    creq == NULL || sts == NULL || authz == NULL) {
		tap_ok(0, "read vector files");
		goto out;
	}
	if (parse_req(text, len, &v, &cause) != 0) {
		tap_ok(0, "parse .req: %s", cause);
		goto out;
	}
	/*
	 * A token in the .creq is signed: add it unless the .req has it
	 * already. post-sts-header-after adds its token only after signing,
	 * so its .creq has none and nothing is added.
	 */
	if ((token = creq_token(creq)) != NULL &&
	    vreq_header(&v, "X-Amz-Security-Token") == NULL)
		vreq_add_header(&v, "X-Amz-Security-Token", 20, token,
		    strlen(token));
	vreq_finish(&v);
	if ((amz_date = vreq_header(&v, "X-Amz-Date")) == NULL) {
		tap_ok(0, "X-Amz-Date header");
		goto out;
	}

	memset(&req, 0, sizeof req);
	req.method = v.method;
	req.path = v.path;
	req.query = v.query;
	req.headers = v.hs;
	req.nheaders = v.n;
	req.body = v.body;
	req.body_len = v.body_len;
	req.region = "us-east-1";
	req.service = "service";
	req.amz_date = amz_date;
	req.s3 = 0;

	buf_reset(&got);
	if (sigv4_canonical_request(&req, &got, &cause) != 0)
		tap_diag("%s: %s", rel, cause);
	tap_str(got.data, creq, "canonical request");
	buf_reset(&got);
	if (sigv4_string_to_sign(&req, &got, &cause) != 0)
		tap_diag("%s: %s", rel, cause);
	tap_str(got.data, sts, "string to sign");
	buf_reset(&got);
	if (sigv4_authorization(&req, AKID, SECRET, &got, &cause) != 0)
		tap_diag("%s: %s", rel, cause);
	tap_str(got.data, authz, "authorization");
out:
	buf_free(&got);
	vreq_free(&v);
	free(token);
	free(creq);
	free(sts);
	free(authz);
	free(text);
	free(path);
	free(dir);
	free(cause);
}

/* A request with only what every case needs; callers change fields. */
static void
base_request(struct sigv4_request *req, const struct sigv4_header *hs,
    size_t n)
{
	memset(req, 0, sizeof *req);
	req->method = "GET";
	req->path = "/";
	req->headers = hs;
	req->nheaders = n;
	req->region = "us-east-1";
	req->service = "service";
	req->amz_date = "20150830T123600Z";
}

/* Line n (from 0) of s, or "" past the end. */
static char *
nth_line(const char *s, int n)
{
	const char	*e;

	for (; n > 0 && s != NULL; n--) {
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	}
	if (s == NULL)
		return xstrdup("");
	e = strchr(s, '\n');
	return e != NULL ? xstrndup(s, (size_t)(e - s)) : xstrdup(s);
}

/* Canonical request line n of req, "(error: cause)" when signing fails. */
static char *
creq_line(const struct sigv4_request *req, int n)
{
	struct buf	 b = { 0 };
	char		*cause = NULL, *line;

	if (sigv4_canonical_request(req, &b, &cause) != 0)
		line = xasprintf("(error: %s)", cause);
	else
		line = nth_line(b.data, n);
	buf_free(&b);
	free(cause);
	return line;
}

static void
test_s3(void)
{
	const struct sigv4_header	 hs[] = {
		{ "Host", "bucket.s3.amazonaws.com" },
		{ "X-Amz-Date", "20150830T123600Z" },
	};
	struct sigv4_request		 req;
	struct buf			 b = { 0 };
	char				*cause = NULL, *line;

	base_request(&req, hs, nitems(hs));
	req.path = "/my-bucket//a/../b%20c~d";
	req.service = "s3";
	req.payload_hash = "UNSIGNED-PAYLOAD";
	req.s3 = 1;
	if (sigv4_canonical_request(&req, &b, &cause) != 0)
		tap_diag("s3: %s", cause);
	tap_str(b.data, "GET\n/my-bucket//a/../b%20c~d\n\n"
	    "host:bucket.s3.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	    "host;x-amz-date\nUNSIGNED-PAYLOAD",
	    "s3: path signed as sent (// and .. kept, not encoded again)");

	req.s3 = 0;
	line = creq_line(&req, 1);
	tap_str(line, "/my-bucket/b%2520c~d",
	    "not s3: same path normalised and encoded again");
	free(line);
	buf_free(&b);
	free(cause);
}

static void
test_paths(void)
{
	static const struct {
		const char	*path;
		const char	*want;
	} cases[] = {
		{ "/a/b/..", "/a/" },		/* RFC 3986 5.2.4, not botocore */
		{ "/a/.", "/a/" },
		{ "/a/./", "/a/" },
		{ "/../a", "/a" },
		{ "/a/../../b//", "/b/" },
		{ "/.../..b/b..", "/.../..b/b.." },
		{ "/%41%2F", "/%2541%252F" },
		{ "/a b/\xc3\xbc$", "/a%20b/%C3%BC%24" },
		{ "/a+b=c:d@e!f", "/a%2Bb%3Dc%3Ad%40e%21f" },
	};
	const struct sigv4_header	 hs[] = {
		{ "Host", "example.amazonaws.com" },
	};
	struct sigv4_request		 req;
	char				*line;
	size_t				 i;

	base_request(&req, hs, nitems(hs));
	for (i = 0; i < nitems(cases); i++) {
		req.path = cases[i].path;
		line = creq_line(&req, 1);
		tap_str(line, cases[i].want, "canonical path of %s", cases[i].path);
		free(line);
	}
}

static void
test_queries(void)
{
	static const struct {
		const char	*query;
		const char	*want;
	} cases[] = {
		{ "", "" },
		{ "b&a=&c=%41%e1%88%b4+", "a=&b=&c=A%E1%88%B4%2B" },
		{ "x=1&&x=0&", "x=0&x=1" },
		{ "a=b=c", "a=b%3Dc" },
		{ "k=%2F/?", "k=%2F%2F%3F" },
		{ "a-b=1&a=2&a=10", "a=10&a=2&a-b=1" },
		{ "%00=%ff", "%00=%FF" },
	};
	const struct sigv4_header	 hs[] = {
		{ "Host", "example.amazonaws.com" },
	};
	struct sigv4_request		 req;
	char				*line;
	size_t				 i;

	base_request(&req, hs, nitems(hs));
	for (i = 0; i < nitems(cases); i++) {
		req.query = cases[i].query;
		line = creq_line(&req, 2);
		tap_str(line, cases[i].want, "canonical query of '%s'", cases[i].query);
		free(line);
	}
}

static void
test_headers(void)
{
	const struct sigv4_header	 hs[] = {
		{ "My-H", "a" },
		{ "Host", "example.amazonaws.com" },
		{ "my-h", "  b \t  c  " },
		{ "X-Folded", "x\r\n   y\n\tz" },
		{ "MY-H", "\td" },
		{ "Empty", "   " },
	};
	struct sigv4_request		 req;
	struct buf			 b = { 0 };
	char				*cause = NULL;

	base_request(&req, hs, nitems(hs));
	if (sigv4_canonical_request(&req, &b, &cause) != 0)
		tap_diag("headers: %s", cause);
	tap_str(b.data, "GET\n/\n\nempty:\nhost:example.amazonaws.com\n"
	    "my-h:a,b c,d\nx-folded:x y z\n\nempty;host;my-h;x-folded\n"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "headers: duplicates joined in order whatever their case, "
	    "values trimmed and folded");
	buf_free(&b);
	free(cause);
}

static void
test_helpers(void)
{
	struct buf	b = { 0 };
	char		hex[65], date[17];

	sigv4_uri_encode(&b, "a b/c~*", 7, 0);
	tap_str(b.data, "a%20b%2Fc~%2A", "uri_encode 'a b/c~*'");
	buf_reset(&b);
	sigv4_uri_encode(&b, "a b/c~*", 7, 1);
	tap_str(b.data, "a%20b/c~%2A", "uri_encode 'a b/c~*' keeping '/'");
	buf_free(&b);

	sigv4_amz_date(1440938160, date);
	tap_str(date, "20150830T123600Z", "amz_date of 1440938160");
	sigv4_amz_date(0, date);
	tap_str(date, "19700101T000000Z", "amz_date of 0");
	if (sizeof(time_t) > 4) {
		sigv4_amz_date((time_t)2147483648LL, date);
		tap_str(date, "20380119T031408Z", "amz_date past 2038");
	} else
		tap_skip("32-bit time_t", "amz_date past 2038");

	sigv4_sha256_hex("", 0, hex);
	tap_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "sha256_hex of nothing");
	sigv4_sha256_hex("abc", 3, hex);
	tap_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256_hex of 'abc'");
}

/* Every malformed request fails with a cause and leaves the output buffer alone. */
static void
expect_reject(const struct sigv4_request *req, const char *akid,
    const char *secret, const char *what)
{
	struct buf	 b = { 0 };
	char		*cause = NULL;
	int		 rv;

	buf_adds(&b, "keep");
	rv = sigv4_authorization(req, akid, secret, &b, &cause);
	tap_int(rv, -1, "rejects %s (%s)", what, cause != NULL ? cause : "no cause");
	tap_true(cause != NULL, "%s: with a cause", what);
	tap_str(b.data, "keep", "%s: the output buffer left alone", what);
	buf_free(&b);
	free(cause);
}

static void
test_rejects(void)
{
	const struct sigv4_header	 good[] = {
		{ "Host", "example.amazonaws.com" },
	};
	const struct sigv4_header	 ctl_name[] = { { "Bad\001Name", "x" } };
	const struct sigv4_header	 sp_name[] = { { "Bad Name", "x" } };
	const struct sigv4_header	 no_name[] = { { "", "x" } };
	const struct sigv4_header	 null_value[] = { { "X-A", NULL } };
	const struct sigv4_header	 smuggle[] = {
		{ "X-A", "a\r\nX-Evil: 1" },
	};
	const struct sigv4_header	 ctl_value[] = { { "X-A", "a\001b" } };
	struct sigv4_request		 req;

	expect_reject(NULL, AKID, SECRET, "a NULL request");
	base_request(&req, good, nitems(good));
	req.method = NULL;
	expect_reject(&req, AKID, SECRET, "a NULL method");
	req.method = "GE T";
	expect_reject(&req, AKID, SECRET, "a method with a space");
	base_request(&req, good, nitems(good));
	req.path = NULL;
	expect_reject(&req, AKID, SECRET, "a NULL path");
	req.path = "relative";
	expect_reject(&req, AKID, SECRET, "a relative path");
	req.path = "/a\r\nb";
	expect_reject(&req, AKID, SECRET, "a path with CR LF");
	base_request(&req, good, nitems(good));
	req.amz_date = "20150830T1236Z";
	expect_reject(&req, AKID, SECRET, "a short amz_date");
	req.amz_date = "2015083OT123600Z";
	expect_reject(&req, AKID, SECRET, "an amz_date with a letter");
	req.amz_date = NULL;
	expect_reject(&req, AKID, SECRET, "a NULL amz_date");
	base_request(&req, good, nitems(good));
	req.query = "a=%zz";
	expect_reject(&req, AKID, SECRET, "a bad percent-escape in the query");
	req.query = "a=%4";
	expect_reject(&req, AKID, SECRET, "a truncated percent-escape");
	base_request(&req, good, nitems(good));
	req.region = "us/east-1";
	expect_reject(&req, AKID, SECRET, "a region with '/'");
	req.region = NULL;
	expect_reject(&req, AKID, SECRET, "a NULL region");
	base_request(&req, good, nitems(good));
	req.service = "";
	expect_reject(&req, AKID, SECRET, "an empty service");
	base_request(&req, ctl_name, nitems(ctl_name));
	expect_reject(&req, AKID, SECRET, "a header name with a control char");
	base_request(&req, sp_name, nitems(sp_name));
	expect_reject(&req, AKID, SECRET, "a header name with a space");
	base_request(&req, no_name, nitems(no_name));
	expect_reject(&req, AKID, SECRET, "an empty header name");
	base_request(&req, null_value, nitems(null_value));
	expect_reject(&req, AKID, SECRET, "a NULL header value");
	base_request(&req, smuggle, nitems(smuggle));
	expect_reject(&req, AKID, SECRET, "a line break starting a new header");
	base_request(&req, ctl_value, nitems(ctl_value));
	expect_reject(&req, AKID, SECRET, "a header value with a control char");
	base_request(&req, NULL, 1);
	expect_reject(&req, AKID, SECRET, "headers counted but missing");
	base_request(&req, good, nitems(good));
	req.payload_hash = "";
	expect_reject(&req, AKID, SECRET, "an empty payload hash");
	req.payload_hash = NULL;
	req.body_len = 3;
	expect_reject(&req, AKID, SECRET, "a body length without a body");
	base_request(&req, good, nitems(good));
	expect_reject(&req, "", SECRET, "an empty access key id");
	expect_reject(&req, "AKID/X", SECRET, "an access key id with '/'");
	expect_reject(&req, AKID, NULL, "a NULL secret");
	expect_reject(&req, AKID, "", "an empty secret");
}

int
main(void)
{
	const char	*root;
	struct vlist	 vl = { NULL, 0 };
	size_t		 i;

	if ((root = getenv("AWS4_TESTSUITE")) == NULL || *root == '\0')
		root = VECTORS_DEFAULT;
	if (!is_dir(root)) {
		printf("1..0 # SKIP vectors not found at %s\n", root);
		return 0;
	}
	find_vectors(root, "", &vl);
	qsort(vl.v, vl.n, sizeof *vl.v, str_cmp);
	tap_case("test suite");
	tap_size(vl.n, VECTORS_EXPECTED, "vectors found under %s", root);
	for (i = 0; i < vl.n; i++) {
		tap_case("vector %s", vl.v[i]);
		run_vector(root, vl.v[i]);
	}

	tap_run("s3 paths", test_s3);
	tap_run("paths", test_paths);
	tap_run("queries", test_queries);
	tap_run("headers", test_headers);
	tap_run("helpers", test_helpers);
	tap_run("rejects", test_rejects);

	for (i = 0; i < vl.n; i++)
		free(vl.v[i]);
	free(vl.v);
	return tap_done();
}
