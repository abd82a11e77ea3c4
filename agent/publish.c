/* publish.c - asg-agent publish: an artifact, its chunk manifest and signatures to S3, for CI. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aws.h"
#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "publish.h"
#include "rollgrp.h"
#include "sigv4.h"
#include "tags.h"
#include "template.h"
#include "util.h"
#include "verify.h"
#include "xml.h"

#define PUBLISH_READ	(1 << 20)	/* read buffer */
#define PUBLISH_MAX_PARTS 10000		/* S3's limit */
#define PUBLISH_CHUNK_MAX (64LL << 20)	/* manifest.md: chunk-size at most */
#define PUBLISH_MANIFEST_MAX (1 << 20)	/* manifest.md: the manifest at most */
#define PUBLISH_CHUNK_LINE 71		/* "chunk " + 64 hex + LF */

/* What one read of the artifact learns: digests, manifest, part hashes, signatures. */
struct digests {
	long long	 size;
	long long	 chunk_size;
	size_t		 part_size;
	char		 sha256[65];
	struct buf	 manifest;
	char		 manifest_sha256[65];
	char		(*parts)[65];
	size_t		 nparts;
	struct buf	 sig;		/* over the artifact, or empty */
	struct buf	 manifest_sig;	/* over the manifest, or empty */
};

/* Where the version goes: the artifact's bucket and key; the others are KEY plus a suffix. */
struct target {
	char	*bucket;
	char	*key;
	char	*url;
};

static void
digests_free(struct digests *d)
{
	buf_free(&d->manifest);
	buf_free(&d->sig);
	buf_free(&d->manifest_sig);
	free(d->parts);
	memset(d, 0, sizeof *d);
}

static void
hex(const unsigned char *md, char out[65])
{
	size_t	i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* End a SHA-256 under way into hex, and start it again. */
static void
md_next(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	len;

	EVP_DigestFinal_ex(ctx, md, &len);
	hex(md, out);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
}

static EVP_PKEY *
load_key(const char *path, char **cause)
{
	EVP_PKEY	*key = NULL;
	BIO		*bio;
	int		 id;

	errno = 0;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		set_cause(cause, "private key %s: %s", path,
		    errno != 0 ? strerror(errno) : verify_ssl_error());
		ERR_clear_error();
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL) {
		set_cause(cause, "private key %s: not a PEM private key (%s)", path, verify_ssl_error());
		return NULL;
	}
	id = EVP_PKEY_get_base_id(key);
	if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
		set_cause(cause, "private key %s: %s keys are not supported (ECDSA or RSA)",
		    path, EVP_PKEY_get0_type_name(key));
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

/* A detached signature over SHA-256: what `openssl dgst -sha256 -sign` makes, verify.c checks. */
static int
sign_final(EVP_MD_CTX *ctx, struct buf *out, char **cause)
{
	unsigned char	*sig;
	size_t		 len = 0;
	int		 ret = 0;

	if (EVP_DigestSignFinal(ctx, NULL, &len) != 1)
		return set_cause(cause, "signing: %s", verify_ssl_error());
	sig = xmalloc(len);
	if (EVP_DigestSignFinal(ctx, sig, &len) != 1)
		ret = set_cause(cause, "signing: %s", verify_ssl_error());
	else
		buf_add(out, sig, len);
	free(sig);
	return ret;
}

static int
sign_buf(EVP_PKEY *key, const void *p, size_t len, struct buf *out, char **cause)
{
	EVP_MD_CTX	*ctx;
	int		 ret = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSignUpdate(ctx, p, len) != 1)
		set_cause(cause, "signing: %s", verify_ssl_error());
	else
		ret = sign_final(ctx, out, cause);
	EVP_MD_CTX_free(ctx);
	return ret;
}

/*
 * The chunk size: 4 MiB, doubled (up to 64 MiB) while the manifest would pass
 * its 1 MiB limit, which 4 MiB chunks reach at about 56 GiB.
 */
static long long
chunk_size(long long size)
{
	long long	c = PUBLISH_CHUNK_SIZE;

	while (c < PUBLISH_CHUNK_MAX &&
	    (size + c - 1) / c * PUBLISH_CHUNK_LINE > PUBLISH_MANIFEST_MAX - 4096)
		c *= 2;
	return c;
}

/* The part size: PUBLISH_PART_SIZE, or larger (whole MiB) so no file needs more than 10,000. */
static size_t
part_size(long long size)
{
	long long	per = (size + PUBLISH_MAX_PARTS - 1) / PUBLISH_MAX_PARTS;

	if (per <= PUBLISH_PART_SIZE)
		return PUBLISH_PART_SIZE;
	return (size_t)((per + (1 << 20) - 1) & ~((1LL << 20) - 1));
}

/* Hash the chunks and parts as they pass; at a boundary, record and restart. */
struct pass {
	EVP_MD_CTX	*whole, *chunk, *part, *sign;
	long long	 in_chunk, in_part;
	struct buf	 chunks;
};

static void
pass_add(struct pass *p, struct digests *d, const unsigned char *data, size_t len)
{
	char	h[65];
	size_t	n;

	while (len > 0) {
		n = len;
		if ((long long)n > d->chunk_size - p->in_chunk)
			n = (size_t)(d->chunk_size - p->in_chunk);
		if ((long long)n > (long long)d->part_size - p->in_part)
			n = (size_t)((long long)d->part_size - p->in_part);
		EVP_DigestUpdate(p->whole, data, n);
		EVP_DigestUpdate(p->chunk, data, n);
		EVP_DigestUpdate(p->part, data, n);
		if (p->sign != NULL)
			EVP_DigestSignUpdate(p->sign, data, n);
		p->in_chunk += (long long)n;
		p->in_part += (long long)n;
		if (p->in_chunk == d->chunk_size) {
			md_next(p->chunk, h);
			buf_addf(&p->chunks, "chunk %s\n", h);
			p->in_chunk = 0;
		}
		if (p->in_part == (long long)d->part_size) {
			md_next(p->part, d->parts[d->nparts++]);
			p->in_part = 0;
		}
		data += n;
		len -= n;
	}
}

/* The last partial chunk and part, then the manifest (manifest.md's format). */
static void
pass_end(struct pass *p, struct digests *d)
{
	char	h[65];

	if (p->in_chunk > 0) {
		md_next(p->chunk, h);
		buf_addf(&p->chunks, "chunk %s\n", h);
	}
	if (p->in_part > 0 || d->nparts == 0)
		md_next(p->part, d->parts[d->nparts++]);
	md_next(p->whole, d->sha256);
	buf_addf(&d->manifest, "asg-agent-manifest 1\nsize %lld\nchunk-size %lld\nsha256 %s\n",
	    d->size, d->chunk_size, d->sha256);
	if (p->chunks.len > 0)
		buf_add(&d->manifest, p->chunks.data, p->chunks.len);
	sigv4_sha256_hex(d->manifest.data, d->manifest.len, d->manifest_sha256);
}

/* One read of the whole file: its digest, every chunk's and part's, and the signatures. */
static int
hash_file(int fd, EVP_PKEY *key, struct digests *d, char **cause)
{
	struct pass	 p;
	unsigned char	*b;
	ssize_t		 n;
	long long	 total = 0;
	int		 ret = -1;

	memset(&p, 0, sizeof p);
	d->chunk_size = chunk_size(d->size);
	d->part_size = part_size(d->size);
	d->parts = xcalloc((size_t)(d->size / (long long)d->part_size) + 1, sizeof *d->parts);
	if ((p.whole = EVP_MD_CTX_new()) == NULL || (p.chunk = EVP_MD_CTX_new()) == NULL ||
	    (p.part = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	EVP_DigestInit_ex(p.whole, EVP_sha256(), NULL);
	EVP_DigestInit_ex(p.chunk, EVP_sha256(), NULL);
	EVP_DigestInit_ex(p.part, EVP_sha256(), NULL);
	if (key != NULL) {
		if ((p.sign = EVP_MD_CTX_new()) == NULL)
			fatal("out of memory");
		if (EVP_DigestSignInit(p.sign, NULL, EVP_sha256(), NULL, key) != 1) {
			set_cause(cause, "signing: %s", verify_ssl_error());
			goto out;
		}
	}
	b = xmalloc(PUBLISH_READ);
	while ((n = read(fd, b, PUBLISH_READ)) > 0 && total + n <= d->size) {
		pass_add(&p, d, b, (size_t)n);
		total += n;
	}
	free(b);
	if (n != 0 || total != d->size) {
		set_cause(cause, "%s", n < 0 ? strerror(errno) : "the file changed while read");
		goto out;
	}
	pass_end(&p, d);
	if (key != NULL && (sign_final(p.sign, &d->sig, cause) != 0 ||
	    sign_buf(key, d->manifest.data, d->manifest.len, &d->manifest_sig, cause) != 0))
		goto out;
	ret = 0;
out:
	EVP_MD_CTX_free(p.whole);
	EVP_MD_CTX_free(p.chunk);
	EVP_MD_CTX_free(p.part);
	EVP_MD_CTX_free(p.sign);
	buf_free(&p.chunks);
	return ret;
}

/*
 * One S3 call that must succeed; the cause names it. S3_TAKEN: the artifact's
 * key was written meanwhile (412 to If-None-Match, or a completed upload
 * gone), by a publisher racing us or by our own attempt whose answer was lost.
 */
#define S3_TAKEN	1

static int
s3(struct aws *a, struct aws_s3_request *rq, struct aws_result *res, char **cause)
{
	if (aws_s3_call(a, rq, res, cause) == OUTCOME_OK)
		return 0;
	if (*cause == NULL)
		set_cause(cause, "s3://%s/%s: %s failed", rq->bucket, rq->key, rq->action);
	if (res->status == 412 || (res->code != NULL && strcmp(res->code, "NoSuchUpload") == 0 &&
	    strcmp(rq->action, "CompleteMultipartUpload") == 0))
		return S3_TAKEN;
	return -1;
}

/* PUT a small object from memory. */
static int
put_small(struct aws *a, const struct target *t, const char *suffix, const void *p,
    size_t len, const char *type, char **cause)
{
	struct aws_param	 h[] = { { "Content-Type", type } };
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	char			*key;
	int			 ret;

	key = xasprintf("%s%s", t->key, suffix);
	rq = (struct aws_s3_request){ .action = "PutObject", .method = "PUT",
	    .bucket = t->bucket, .key = key, .headers = h, .nheaders = nitems(h),
	    .body = p, .body_len = len };
	ret = s3(a, &rq, &res, cause);
	aws_result_free(&res);
	free(key);
	return ret;
}

/*
 * Whether the version is already there: 0 not yet, 1 with the same bytes,
 * PUBLISH_REFUSED (cause set) with others, -1 on an error.
 */
static int
existing(struct aws *a, const struct target *t, const struct digests *d, char **cause)
{
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	const char		*sha;
	int			 ret = -1;

	rq = (struct aws_s3_request){ .action = "HeadObject", .method = "HEAD",
	    .bucket = t->bucket, .key = t->key };
	if (aws_s3_call(a, &rq, &res, cause) != OUTCOME_OK) {
		if (res.status == 404) {
			free(*cause);
			*cause = NULL;
			ret = 0;
		}
		goto out;
	}
	sha = aws_result_header(&res, "x-amz-meta-sha256");
	if (sha != NULL && strcmp(sha, d->sha256) == 0)
		ret = 1;
	else {
		set_cause(cause, "%s already exists with other bytes (sha256 %s, this file's "
		    "%s): versions are immutable; publish a new version", t->url,
		    sha != NULL ? sha : "not recorded", d->sha256);
		ret = PUBLISH_REFUSED;
	}
out:
	aws_result_free(&res);
	return ret;
}

static int
put_whole(struct aws *a, const struct target *t, int fd, const struct digests *d,
    char **cause)
{
	struct aws_param	 h[] = { { "Content-Type", "application/octet-stream" },
	    { "x-amz-meta-sha256", d->sha256 }, { "If-None-Match", "*" } };
	struct http_file_body	 fb = { fd, 0 };
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	int			 ret;

	rq = (struct aws_s3_request){ .action = "PutObject", .method = "PUT",
	    .bucket = t->bucket, .key = t->key, .headers = h, .nheaders = nitems(h),
	    .body_file = &fb, .body_len = (size_t)d->size, .body_sha256 = d->sha256 };
	ret = s3(a, &rq, &res, cause);
	aws_result_free(&res);
	return ret;
}

/* "uploadId=ID" (and more), encoded as signed. */
static char *
upload_query(const char *prefix, const char *id)
{
	struct buf	q = { NULL, 0, 0 };

	buf_adds(&q, prefix);
	buf_adds(&q, "uploadId=");
	sigv4_uri_encode(&q, id, strlen(id), 0);
	return buf_take(&q);
}

static int
multipart_create(struct aws *a, const struct target *t, const struct digests *d, char **id,
    char **cause)
{
	struct aws_param	 h[] = { { "Content-Type", "application/octet-stream" },
	    { "x-amz-meta-sha256", d->sha256 } };
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	const char		*s;
	int			 ret = -1;

	rq = (struct aws_s3_request){ .action = "CreateMultipartUpload", .method = "POST",
	    .bucket = t->bucket, .key = t->key, .query = "uploads=", .headers = h,
	    .nheaders = nitems(h) };
	if (s3(a, &rq, &res, cause) != 0)
		goto out;
	if ((s = xml_find_text(res.xml, "UploadId")) == NULL || *s == '\0') {
		set_cause(cause, "%s: CreateMultipartUpload: no UploadId in the answer", t->url);
		goto out;
	}
	*id = xstrdup(s);
	ret = 0;
out:
	aws_result_free(&res);
	return ret;
}

/* Upload part i (from 0); its ETag is added to the completion's XML. */
static int
multipart_part(struct aws *a, const struct target *t, int fd, const struct digests *d,
    const char *id, size_t i, struct buf *done, char **cause)
{
	struct http_file_body	 fb = { fd, (long long)i * (long long)d->part_size };
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	const char		*etag;
	char			*query, prefix[48];
	long long		 len;
	int			 ret = -1;

	len = d->size - fb.offset < (long long)d->part_size ? d->size - fb.offset :
	    (long long)d->part_size;
	snprintf(prefix, sizeof prefix, "partNumber=%zu&", i + 1);
	query = upload_query(prefix, id);
	rq = (struct aws_s3_request){ .action = "UploadPart", .method = "PUT",
	    .bucket = t->bucket, .key = t->key, .query = query, .body_file = &fb,
	    .body_len = (size_t)len, .body_sha256 = d->parts[i] };
	if (s3(a, &rq, &res, cause) != 0)
		goto out;
	if ((etag = aws_result_header(&res, "ETag")) == NULL) {
		set_cause(cause, "%s: UploadPart %zu: no ETag in the answer", t->url, i + 1);
		goto out;
	}
	buf_addf(done, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1, etag);
	log_debug("publish: part %zu of %zu in (%lld bytes)", i + 1, d->nparts, len);
	ret = 0;
out:
	aws_result_free(&res);
	free(query);
	return ret;
}

static int
multipart_finish(struct aws *a, const struct target *t, const char *id, struct buf *xml,
    int abort, char **cause)
{
	/* Not curl's default form type: a form body is what the Query APIs send. */
	struct aws_param	 h[] = { { "Content-Type", "application/xml" },
	    { "If-None-Match", "*" } };
	struct aws_s3_request	 rq;
	struct aws_result	 res;
	char			*query;
	int			 ret;

	query = upload_query("", id);
	rq = (struct aws_s3_request){ .action = abort ? "AbortMultipartUpload" :
	    "CompleteMultipartUpload", .method = abort ? "DELETE" : "POST",
	    .bucket = t->bucket, .key = t->key, .query = query };
	if (!abort) {
		rq.body = xml->data;
		rq.body_len = xml->len;
		rq.headers = h;
		rq.nheaders = nitems(h);
	}
	ret = s3(a, &rq, &res, cause);
	/* S3 can answer 200 with an error in the body to a completion. */
	if (ret == 0 && res.xml != NULL && strcmp(res.xml->name, "Error") == 0)
		ret = set_cause(cause, "%s: CompleteMultipartUpload: %s", t->url,
		    xml_child_text(res.xml, "Code") != NULL ? xml_child_text(res.xml, "Code") :
		    "error");
	aws_result_free(&res);
	free(query);
	return ret;
}

static int
put_multipart(struct aws *a, const struct target *t, int fd, const struct digests *d,
    char **cause)
{
	struct buf	 xml = { NULL, 0, 0 };
	char		*id = NULL, *why = NULL;
	size_t		 i;
	int		 ret = -1;

	if (multipart_create(a, t, d, &id, cause) != 0)
		return -1;
	buf_adds(&xml, "<CompleteMultipartUpload>");
	for (i = 0; i < d->nparts; i++) {
		if (multipart_part(a, t, fd, d, id, i, &xml, cause) != 0) {
			ret = -1;
			goto out;
		}
	}
	buf_adds(&xml, "</CompleteMultipartUpload>");
	ret = multipart_finish(a, t, id, &xml, 0, cause);
out:
	/* Parts of an upload never completed are billed until aborted. */
	if (ret != 0 && multipart_finish(a, t, id, NULL, 1, &why) < 0)
		log_debug("publish: AbortMultipartUpload: %s", why != NULL ? why : "failed");
	free(why);
	free(id);
	buf_free(&xml);
	return ret;
}

static int
target_init(struct target *t, const struct publish_opts *o, const char *region, char **cause)
{
	const char	*vars[][2] = {
		{ "version", o->version }, { "group", o->ngroups == 1 ? o->groups[0] : NULL },
		{ "region", region }, { "instance_id", NULL }, { "url", NULL }, { NULL, NULL }
	};

	memset(t, 0, sizeof *t);
	if ((t->url = tmpl_expand(o->url_template, vars, 0, cause)) == NULL)
		return set_cause(cause, "--to %s", *cause);
	if (strncmp(t->url, "s3://", 5) != 0)
		return set_cause(cause, "--to %s: publish writes to s3:// URLs only", t->url);
	return aws_s3_parse_url(t->url, &t->bucket, &t->key, cause);
}

static void
target_free(struct target *t)
{
	free(t->bucket);
	free(t->key);
	free(t->url);
}

/* The version tags, with the group's hooks' names (instances then need no DescribeLifecycleHooks). */
static int
tag_group(struct aws *a, const struct publish_opts *o, const char *group, const char *digest,
    char **cause)
{
	struct lifecycle_tags	 hooks;
	const char		*kv[TAGS_SET_MAX][2] = {
		{ o->version_tag, o->version },
		{ o->sha256_tag, digest },
	};
	char			*err = NULL;
	size_t			 n = 2, i;
	int			 ret = 0;

	/* Without the hooks' names instances ask for them, as before: not worth failing. */
	if (lifecycle_hook_tags(a, group, &hooks, &err) != OUTCOME_OK)
		log_warn("%s: hooks not named in tags (DescribeLifecycleHooks: %s)", group, err);
	/* Without it instances ask for their terminate action every 30 s until it exists. */
	free(err);
	err = NULL;
	if (rollgrp_dereg_tag(a, group, &hooks, &err) != 0)
		log_warn("%s: deregistration delay not in tags (%s)", group, err);
	for (i = 0; i < hooks.n; i++) {
		kv[n][0] = hooks.kv[i][0];
		kv[n++][1] = hooks.kv[i][1];
	}
	if (tags_set_group(a, group, kv, n, 1, cause) != OUTCOME_OK)
		ret = set_cause(cause, "tagging %s: %s", group, *cause != NULL ? *cause :
		    "failed");
	else if (hooks.ngone > 0 && tags_delete_group(a, group, hooks.gone, hooks.ngone,
	    &err) != OUTCOME_OK)
		log_warn("%s: stale hook tags left (DeleteTags: %s)", group, err);
	lifecycle_tags_free(&hooks);
	free(err);
	return ret;
}

/* The artifact (unless the same bytes are there), then the manifest, then the signatures. */
static int
upload(struct aws *a, const struct target *t, int fd, const struct digests *d, char **cause)
{
	int	r;

	if ((r = existing(a, t, d, cause)) < 0 || r == PUBLISH_REFUSED)
		return r;
	if (r == 1)
		log_debug("publish: %s is there with the same bytes", t->url);
	else {
		r = d->size <= (long long)d->part_size ? put_whole(a, t, fd, d, cause) :
		    put_multipart(a, t, fd, d, cause);
		if (r < 0)
			return -1;
		/* Written meanwhile: ours (an answer lost) passes, another's is refused. */
		if (r == S3_TAKEN) {
			free(*cause);
			*cause = NULL;
			if ((r = existing(a, t, d, cause)) != 1)
				return r == 0 ? set_cause(cause, "%s: written and gone "
				    "while publishing", t->url) : r;
		}
	}
	if (put_small(a, t, ".manifest", d->manifest.data, d->manifest.len,
	    "text/plain; charset=utf-8", cause) != 0)
		return -1;
	if (d->sig.len == 0)
		return 0;
	if (put_small(a, t, ".sig", d->sig.data, d->sig.len, "application/octet-stream",
	    cause) != 0 || put_small(a, t, ".manifest.sig", d->manifest_sig.data,
	    d->manifest_sig.len, "application/octet-stream", cause) != 0)
		return -1;
	return 0;
}

int
publish_run(struct aws *a, const struct publish_opts *o, char **cause)
{
	struct digests	 d;
	struct target	 t;
	struct stat	 sb;
	EVP_PKEY	*key = NULL;
	char		*digest = NULL;
	size_t		 i;
	int		 fd = -1, r, ret = PUBLISH_ERROR;

	memset(&d, 0, sizeof d);
	if (target_init(&t, o, a->region, cause) != 0)
		goto out;
	if (o->sign_key != NULL && (key = load_key(o->sign_key, cause)) == NULL)
		goto out;
	if ((fd = open(o->file, O_RDONLY|O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		set_cause(cause, "%s: %s", o->file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		set_cause(cause, "%s: not a regular file", o->file);
		goto out;
	}
	d.size = (long long)sb.st_size;
	if (hash_file(fd, key, &d, cause) != 0) {
		set_cause(cause, "%s: %s", o->file, *cause);
		goto out;
	}
	if (d.manifest.len > PUBLISH_MANIFEST_MAX) {
		set_cause(cause, "%s: too large for a manifest of at most %d bytes", o->file,
		    PUBLISH_MANIFEST_MAX);
		goto out;
	}
	if ((r = upload(a, &t, fd, &d, cause)) != 0) {
		ret = r == PUBLISH_REFUSED ? PUBLISH_REFUSED : PUBLISH_ERROR;
		goto out;
	}
	digest = xasprintf("manifest:%s", d.manifest_sha256);
	for (i = 0; i < o->ngroups; i++) {
		if (tag_group(a, o, o->groups[i], digest, cause) != 0)
			goto out;
	}
	fprintf(o->out, "%s\n", digest);
	ret = PUBLISH_OK;
out:
	if (fd != -1)
		close(fd);
	EVP_PKEY_free(key);
	digests_free(&d);
	target_free(&t);
	free(digest);
	return ret;
}
