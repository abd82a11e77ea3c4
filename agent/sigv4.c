/* sigv4.c - AWS Signature Version 4: canonical request, string to sign, Authorization. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"
#include "util.h"

/*
 * The public functions append to the caller's buffer only on success: every
 * piece is built in a buffer of our own first, so on failure the caller's
 * buffer is as it was and *cause says why.
 *
 * The path is taken exactly as it goes on the request line. For every service
 * but S3 it is normalised (RFC 3986 5.2.4, plus empty segments dropped) and
 * each segment is percent-encoded again, so "%20" on the wire signs as
 * "%2520" ("encoded twice" in AWS's words). S3 signs the path as sent.
 *
 * The query is split on '&', each name and value percent-decoded and encoded
 * again the AWS way; '+' is an ordinary character (RFC 3986), not a space.
 */

#define SIGV4_ALGORITHM	"AWS4-HMAC-SHA256"
#define SHA256_LEN	32

struct qparam {
	char	*name;		/* encoded */
	char	*value;		/* encoded */
};

struct chdr {
	char		*name;		/* lower-cased */
	const char	*value;
	size_t		 order;		/* position in the request */
};

struct segment {
	const char	*p;
	size_t		 len;
};

static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	    c == '~';
}

/* RFC 9110 token characters, what methods and header names are made of. */
static int
is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
sigv4_uri_encode(struct buf *b, const char *s, size_t len, int keep_slash)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	char			 esc[3];
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (is_unreserved(p[i]) || (keep_slash && p[i] == '/')) {
			buf_addc(b, (char)p[i]);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[p[i] >> 4];
		esc[2] = hex[p[i] & 0xf];
		buf_add(b, esc, sizeof esc);
	}
}

/* Internal SHA-256 that can fail politely; the public one has no way to. */
static int
sha256_hex(const void *data, size_t len, char out[65], char **cause)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;

	if (data == NULL)
		data = "";
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != SHA256_LEN) {
		out[0] = '\0';
		return set_cause(cause, "SHA-256 failed");
	}
	hex_encode(md, mdlen, out);
	return 0;
}

void
sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	if (sha256_hex(data, len, out, NULL) != 0)
		fatal("SHA-256 failed");
}

/* A year that is not four digits gives "", which signing then rejects with a cause. */
void
sigv4_amz_date(time_t t, char out[17])
{
	struct tm	tm;

	out[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL)
		return;
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return;
	if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		out[0] = '\0';
}

static int
hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
    unsigned char out[SHA256_LEN], char **cause)
{
	unsigned int	outlen = 0;

	if (keylen > INT_MAX)
		return set_cause(cause, "HMAC key too long");
	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out,
	    &outlen) == NULL || outlen != SHA256_LEN)
		return set_cause(cause, "HMAC-SHA256 failed");
	return 0;
}

/* Check a method or similar token: something that cannot break the request line. */
static int
check_token(const char *what, const char *s, char **cause)
{
	const unsigned char	*p;

	if (s == NULL || *s == '\0')
		return set_cause(cause, "%s is missing", what);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (!is_tchar(*p))
			return set_cause(cause, "%s has an invalid character "
			    "(0x%02x)", what, *p);
	}
	return 0;
}

/* Region, service and access key end up in the '/'-separated scope. */
static int
check_scope_part(const char *what, const char *s, char **cause)
{
	const unsigned char	*p;

	if (s == NULL || *s == '\0')
		return set_cause(cause, "%s is missing", what);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (!is_unreserved(*p))
			return set_cause(cause, "%s has an invalid character "
			    "(0x%02x)", what, *p);
	}
	return 0;
}

static int
check_path(const char *path, char **cause)
{
	const unsigned char	*p;

	if (path == NULL || *path == '\0')
		return set_cause(cause, "path is missing");
	if (*path != '/')
		return set_cause(cause, "path does not start with '/'");
	for (p = (const unsigned char *)path; *p != '\0'; p++) {
		if (is_ctl(*p))
			return set_cause(cause, "path has a control character "
			    "(0x%02x)", *p);
	}
	return 0;
}

/* A '%' that does not start an escape cannot be decoded, so it cannot be signed. */
static int
check_query(const char *query, char **cause)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)query; *p != '\0'; p++) {
		if (is_ctl(*p))
			return set_cause(cause, "query has a control character "
			    "(0x%02x)", *p);
		if (*p != '%')
			continue;
		if (hex_value(p[1]) == -1 || hex_value(p[2]) == -1)
			return set_cause(cause, "query has an invalid "
			    "percent-escape at offset %zu",
			    (size_t)(p - (const unsigned char *)query));
		p += 2;
	}
	return 0;
}

static int
check_amz_date(const char *d, char **cause)
{
	size_t	i;

	if (d == NULL || strlen(d) != 16)
		goto bad;
	for (i = 0; i < 16; i++) {
		if (i == 8) {
			if (d[i] != 'T')
				goto bad;
		} else if (i == 15) {
			if (d[i] != 'Z')
				goto bad;
		} else if (d[i] < '0' || d[i] > '9')
			goto bad;
	}
	return 0;
bad:
	return set_cause(cause, "amz_date is not YYYYMMDDTHHMMSSZ");
}

/* Line breaks are allowed only as folds (followed by a blank), never to start a new header. */
static int
check_header(size_t i, const struct sigv4_header *h, char **cause)
{
	const unsigned char	*p;

	if (h->name == NULL || *h->name == '\0')
		return set_cause(cause, "header %zu has no name", i);
	for (p = (const unsigned char *)h->name; *p != '\0'; p++) {
		if (!is_tchar(*p))
			return set_cause(cause, "header %zu: name has an invalid "
			    "character (0x%02x)", i, *p);
	}
	if (h->value == NULL)
		return set_cause(cause, "header %s has no value", h->name);
	for (p = (const unsigned char *)h->value; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n') {
			if (p[0] == '\r' && p[1] == '\n')
				p++;
			if (p[1] != ' ' && p[1] != '\t')
				return set_cause(cause, "header %s: line break "
				    "not followed by a blank", h->name);
			continue;
		}
		if (*p != '\t' && is_ctl(*p))
			return set_cause(cause, "header %s: value has a control "
			    "character (0x%02x)", h->name, *p);
	}
	return 0;
}

static int
check_payload_hash(const char *s, char **cause)
{
	const unsigned char	*p;

	if (*s == '\0')
		return set_cause(cause, "payload hash is empty");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f)
			return set_cause(cause, "payload hash has an invalid "
			    "character (0x%02x)", *p);
	}
	return 0;
}

/* Everything is checked up front so that building the canonical request cannot fail half-way. */
static int
check_request(const struct sigv4_request *req, char **cause)
{
	size_t	i;

	if (req == NULL)
		return set_cause(cause, "no request to sign");
	if (check_token("method", req->method, cause) != 0)
		return -1;
	if (check_path(req->path, cause) != 0)
		return -1;
	if (req->query != NULL && check_query(req->query, cause) != 0)
		return -1;
	if (check_scope_part("region", req->region, cause) != 0)
		return -1;
	if (check_scope_part("service", req->service, cause) != 0)
		return -1;
	if (check_amz_date(req->amz_date, cause) != 0)
		return -1;
	if (req->nheaders > 0 && req->headers == NULL)
		return set_cause(cause, "%zu headers but no header array",
		    req->nheaders);
	for (i = 0; i < req->nheaders; i++) {
		if (check_header(i, &req->headers[i], cause) != 0)
			return -1;
	}
	if (req->payload_hash != NULL) {
		if (check_payload_hash(req->payload_hash, cause) != 0)
			return -1;
	} else if (req->body == NULL && req->body_len > 0)
		return set_cause(cause, "body length %zu but no body",
		    req->body_len);
	return 0;
}

/* Remove dot segments and empty segments, then encode each segment again (not S3). */
static void
add_canonical_uri(struct buf *b, const char *path, int s3)
{
	struct segment	*segs;
	const char	*p, *slash;
	size_t		 nsegs = 0, nslash = 0, len, i;
	int		 trailing = 0;

	if (s3) {
		buf_adds(b, path);
		return;
	}
	for (p = path; *p != '\0'; p++) {
		if (*p == '/')
			nslash++;
	}
	segs = xcalloc(nslash + 1, sizeof *segs);
	for (p = path;; p = slash + 1) {
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		/* RFC 3986: a path ending in "/", "/." or "/.." keeps its slash. */
		trailing = len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.');
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (nsegs > 0)
				nsegs--;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			segs[nsegs].p = p;
			segs[nsegs].len = len;
			nsegs++;
		}
		if (slash == NULL)
			break;
	}
	buf_addc(b, '/');
	for (i = 0; i < nsegs; i++) {
		if (i > 0)
			buf_addc(b, '/');
		sigv4_uri_encode(b, segs[i].p, segs[i].len, 0);
	}
	if (nsegs > 0 && trailing)
		buf_addc(b, '/');
	free(segs);
}

/* Decode s[0..len), already checked by check_query, and encode it the AWS way. */
static char *
reencode(const char *s, size_t len)
{
	struct buf	raw = { 0 }, enc = { 0 };
	size_t		i;
	char		c;

	for (i = 0; i < len; i++) {
		if (s[i] == '%' && len - i >= 3) {
			c = (char)(hex_value((unsigned char)s[i + 1]) << 4 |
			    hex_value((unsigned char)s[i + 2]));
			buf_addc(&raw, c);
			i += 2;
		} else
			buf_addc(&raw, s[i]);
	}
	sigv4_uri_encode(&enc, raw.data, raw.len, 0);
	buf_free(&raw);
	return buf_take(&enc);
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam	*qa = a, *qb = b;
	int			 cmp;

	if ((cmp = strcmp(qa->name, qb->name)) != 0)
		return cmp;
	return strcmp(qa->value, qb->value);
}

/* Sorted by encoded name, then encoded value; a name without '=' has an empty value. */
static void
add_canonical_query(struct buf *b, const char *query)
{
	struct qparam	*params;
	const char	*p, *amp, *end, *eq;
	size_t		 count = 1, n = 0, i;

	if (query == NULL || *query == '\0')
		return;
	for (p = query; *p != '\0'; p++) {
		if (*p == '&')
			count++;
	}
	params = xcalloc(count, sizeof *params);
	for (p = query;; p = amp + 1) {
		amp = strchr(p, '&');
		end = amp != NULL ? amp : p + strlen(p);
		if (end > p) {
			eq = memchr(p, '=', (size_t)(end - p));
			if (eq == NULL) {
				params[n].name = reencode(p, (size_t)(end - p));
				params[n].value = xstrdup("");
			} else {
				params[n].name = reencode(p, (size_t)(eq - p));
				params[n].value = reencode(eq + 1,
				    (size_t)(end - eq - 1));
			}
			n++;
		}
		if (amp == NULL)
			break;
	}
	qsort(params, n, sizeof *params, qparam_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(b, '&');
		buf_adds(b, params[i].name);
		buf_addc(b, '=');
		buf_adds(b, params[i].value);
	}
	for (i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

/* Trimall: no blanks at either end, every inner run of blanks (folds too) one space. */
static void
add_trimmed(struct buf *b, const char *v)
{
	size_t	start = b->len;
	int	blank = 0;

	for (; *v != '\0'; v++) {
		if (is_blank((unsigned char)*v)) {
			blank = 1;
			continue;
		}
		if (blank && b->len > start)
			buf_addc(b, ' ');
		blank = 0;
		buf_addc(b, *v);
	}
}

static int
chdr_cmp(const void *a, const void *b)
{
	const struct chdr	*ha = a, *hb = b;
	int			 cmp;

	if ((cmp = strcmp(ha->name, hb->name)) != 0)
		return cmp;
	return ha->order < hb->order ? -1 : ha->order > hb->order;
}

/* Duplicate names are joined with ',' in request order, so the sort must keep that order. */
static void
add_canonical_headers(struct buf *b, struct buf *signed_headers,
    const struct sigv4_request *req)
{
	struct chdr	*hs;
	size_t		 n = req->nheaders, i, j;
	char		*q;

	hs = xcalloc(n, sizeof *hs);
	for (i = 0; i < n; i++) {
		hs[i].name = xstrdup(req->headers[i].name);
		for (q = hs[i].name; *q != '\0'; q++) {
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		}
		hs[i].value = req->headers[i].value;
		hs[i].order = i;
	}
	qsort(hs, n, sizeof *hs, chdr_cmp);
	for (i = 0; i < n; i = j) {
		buf_adds(b, hs[i].name);
		buf_addc(b, ':');
		for (j = i; j < n && strcmp(hs[j].name, hs[i].name) == 0; j++) {
			if (j > i)
				buf_addc(b, ',');
			add_trimmed(b, hs[j].value);
		}
		buf_addc(b, '\n');
		if (i > 0)
			buf_addc(signed_headers, ';');
		buf_adds(signed_headers, hs[i].name);
	}
	for (i = 0; i < n; i++)
		free(hs[i].name);
	free(hs);
}

/* Build the canonical request and the signed header list into fresh buffers. */
static int
build_canonical(const struct sigv4_request *req, struct buf *creq,
    struct buf *signed_headers, char **cause)
{
	char	hash[65];
	int	rv = -1;

	if (check_request(req, cause) != 0)
		goto out;
	buf_adds(creq, req->method);
	buf_addc(creq, '\n');
	add_canonical_uri(creq, req->path, req->s3);
	buf_addc(creq, '\n');
	add_canonical_query(creq, req->query);
	buf_addc(creq, '\n');
	add_canonical_headers(creq, signed_headers, req);
	buf_addc(creq, '\n');
	buf_add(creq, signed_headers->data, signed_headers->len);
	buf_addc(creq, '\n');
	if (req->payload_hash != NULL)
		buf_adds(creq, req->payload_hash);
	else {
		if (sha256_hex(req->body, req->body_len, hash, cause) != 0)
			goto out;
		buf_adds(creq, hash);
	}
	rv = 0;
out:
	return rv;
}

static int
build_string_to_sign(const struct sigv4_request *req, struct buf *sts,
    struct buf *signed_headers, char **cause)
{
	struct buf	creq = { 0 };
	char		hash[65];
	int		rv = -1;

	if (build_canonical(req, &creq, signed_headers, cause) != 0)
		goto out;
	if (sha256_hex(creq.data, creq.len, hash, cause) != 0)
		goto out;
	buf_addf(sts, "%s\n%s\n%.8s/%s/%s/aws4_request\n%s", SIGV4_ALGORITHM,
	    req->amz_date, req->amz_date, req->region, req->service, hash);
	rv = 0;
out:
	buf_free(&creq);
	return rv;
}

/* HMAC chain from "AWS4" + secret down to the signing key; every intermediate key is wiped. */
static int
derive_signing_key(const char *secret, const struct sigv4_request *req,
    unsigned char key[SHA256_LEN], char **cause)
{
	unsigned char	*ksecret;
	unsigned char	 k1[SHA256_LEN], k2[SHA256_LEN];
	size_t		 slen, klen;
	int		 rv = -1;

	slen = strlen(secret);
	klen = 4 + slen;
	ksecret = xmalloc(klen);
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, slen);
	if (hmac_sha256(ksecret, klen, req->amz_date, 8, k1, cause) != 0)
		goto out;
	if (hmac_sha256(k1, sizeof k1, req->region, strlen(req->region), k2,
	    cause) != 0)
		goto out;
	if (hmac_sha256(k2, sizeof k2, req->service, strlen(req->service), k1,
	    cause) != 0)
		goto out;
	if (hmac_sha256(k1, sizeof k1, "aws4_request", 12, key, cause) != 0)
		goto out;
	rv = 0;
out:
	explicit_bzero(ksecret, klen);
	free(ksecret);
	explicit_bzero(k1, sizeof k1);
	explicit_bzero(k2, sizeof k2);
	if (rv != 0)
		explicit_bzero(key, SHA256_LEN);
	return rv;
}

int
sigv4_canonical_request(const struct sigv4_request *req, struct buf *out,
    char **cause)
{
	struct buf	creq = { 0 }, signed_headers = { 0 };
	int		rv = -1;

	if (build_canonical(req, &creq, &signed_headers, cause) != 0)
		goto out;
	buf_add(out, creq.data, creq.len);
	rv = 0;
out:
	buf_free(&creq);
	buf_free(&signed_headers);
	return rv;
}

int
sigv4_string_to_sign(const struct sigv4_request *req, struct buf *out,
    char **cause)
{
	struct buf	sts = { 0 }, signed_headers = { 0 };
	int		rv = -1;

	if (build_string_to_sign(req, &sts, &signed_headers, cause) != 0)
		goto out;
	buf_add(out, sts.data, sts.len);
	rv = 0;
out:
	buf_free(&sts);
	buf_free(&signed_headers);
	return rv;
}

int
sigv4_authorization(const struct sigv4_request *req, const char *access_key_id,
    const char *secret_access_key, struct buf *out, char **cause)
{
	struct buf	sts = { 0 }, signed_headers = { 0 };
	unsigned char	key[SHA256_LEN], sig[SHA256_LEN];
	char		sighex[2 * SHA256_LEN + 1];
	int		rv = -1;

	if (check_scope_part("access key id", access_key_id, cause) != 0)
		goto out;
	if (secret_access_key == NULL || *secret_access_key == '\0') {
		set_cause(cause, "secret access key is missing");
		goto out;
	}
	if (build_string_to_sign(req, &sts, &signed_headers, cause) != 0)
		goto out;
	if (derive_signing_key(secret_access_key, req, key, cause) != 0)
		goto out;
	if (hmac_sha256(key, sizeof key, sts.data, sts.len, sig, cause) != 0)
		goto out;
	hex_encode(sig, sizeof sig, sighex);
	buf_addf(out, "%s Credential=%s/%.8s/%s/%s/aws4_request, "
	    "SignedHeaders=%s, Signature=%s", SIGV4_ALGORITHM, access_key_id,
	    req->amz_date, req->region, req->service,
	    signed_headers.data != NULL ? signed_headers.data : "", sighex);
	rv = 0;
out:
	explicit_bzero(key, sizeof key);
	buf_free(&sts);
	buf_free(&signed_headers);
	return rv;
}
