/* verify.c - the sha256 digest and detached signature of an artifact's bytes as they pass. */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "halt.h"
#include "util.h"
#include "verify.h"

/* The bytes of an artifact on their way in: hashed and signature-checked as read. */
struct verify {
	reader_fn	 read;
	void		*arg;
	const struct halt *halt;
	EVP_MD_CTX	*md;
	EVP_PKEY	*key;
	char		*key_path;	/* named in causes */
	EVP_MD_CTX	*vctx;		/* signature check, or NULL */
	struct buf	 sig;
	long long	 bytes;
};

const char *
verify_ssl_error(void)
{
	const char	*s;

	s = ERR_reason_error_string(ERR_peek_last_error());
	ERR_clear_error();
	return s != NULL ? s : "unknown OpenSSL error";
}

struct verify *
verify_new(char **cause)
{
	struct verify	*v;

	v = xcalloc(1, sizeof *v);
	if ((v->md = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	if (EVP_DigestInit_ex(v->md, EVP_sha256(), NULL) != 1) {
		set_cause(cause, "sha256: %s", verify_ssl_error());
		verify_free(v);
		return NULL;
	}
	return v;
}

int
verify_key(struct verify *v, const char *path, char **cause)
{
	BIO	*bio = NULL;
	int	 id, ret = -1;

	free(v->key_path);
	v->key_path = xstrdup(path);
	errno = 0;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		set_cause(cause, "public key %s: %s", path,
		    errno != 0 ? strerror(errno) : verify_ssl_error());
		ERR_clear_error();
		goto out;
	}
	if ((v->key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
		set_cause(cause, "public key %s: not a PEM public key (%s)", path, verify_ssl_error());
		goto out;
	}
	id = EVP_PKEY_get_base_id(v->key);
	if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
		set_cause(cause, "public key %s: %s keys are not supported (ECDSA or RSA)",
		    path, EVP_PKEY_get0_type_name(v->key));
		goto out;
	}
	ret = 0;
out:
	BIO_free(bio);
	return ret;
}

int
verify_signature(struct verify *v, const void *sig, size_t len, char **cause)
{
	if (v->key == NULL || v->vctx != NULL)
		return set_cause(cause, "a signature needs one public key first");
	buf_add(&v->sig, sig, len);
	if ((v->vctx = EVP_MD_CTX_new()) == NULL)
		fatal("out of memory");
	if (EVP_DigestVerifyInit(v->vctx, NULL, EVP_sha256(), NULL, v->key) != 1) {
		set_cause(cause, "public key %s: %s", v->key_path, verify_ssl_error());
		EVP_MD_CTX_free(v->vctx);
		v->vctx = NULL;
		return -1;
	}
	return 0;
}

void
verify_source(struct verify *v, reader_fn read, void *arg, const struct halt *halt)
{
	v->read = read;
	v->arg = arg;
	v->halt = halt;
}

/* Pull the next bytes from the source into p, hashing them: >0, 0 at the end, -1. */
ssize_t
verify_read(void *arg, void *p, size_t len, char **cause)
{
	struct verify	*v = arg;
	ssize_t		 n;

	if (halt_stopped(v->halt))
		return set_cause(cause, "stopped");
	n = v->read(v->arg, p, len, cause);
	if (n < 0) {
		if (*cause == NULL)
			*cause = xstrdup("read failed");
		return -1;
	}
	if (n == 0)
		return 0;
	if ((size_t)n > len)
		return set_cause(cause, "reader returned %zd bytes for %zu", n, len);
	if (EVP_DigestUpdate(v->md, p, (size_t)n) != 1)
		return set_cause(cause, "sha256: %s", verify_ssl_error());
	if (v->vctx != NULL && EVP_DigestVerifyUpdate(v->vctx, p, (size_t)n) != 1)
		return set_cause(cause, "signature: %s", verify_ssl_error());
	v->bytes += n;
	return n;
}

long long
verify_bytes(const struct verify *v)
{
	return v->bytes;
}

int
verify_finish(struct verify *v, const char *want, char sha256[65], int *digest_ok,
    int *signature_ok, char **cause)
{
	unsigned char	d[EVP_MAX_MD_SIZE];
	unsigned int	dlen = 0;
	char		lower[65];
	size_t		i;
	int		r;

	if (EVP_DigestFinal_ex(v->md, d, &dlen) != 1 || dlen != 32)
		return set_cause(cause, "sha256: %s", verify_ssl_error());
	hex_encode(d, dlen, sha256);
	if (want != NULL) {
		if (strcasecmp(want, sha256) != 0) {
			for (i = 0; i < sizeof lower - 1 && want[i] != '\0'; i++)
				lower[i] = (char)tolower((unsigned char)want[i]);
			lower[i] = '\0';
			return set_cause(cause, "sha256 mismatch: expected %s, got %s", lower,
			    sha256);
		}
		*digest_ok = 1;
	}
	if (v->vctx != NULL) {
		r = EVP_DigestVerifyFinal(v->vctx, (const unsigned char *)v->sig.data,
		    v->sig.len);
		ERR_clear_error();
		if (r != 1)
			return set_cause(cause, "signature does not verify with %s", v->key_path);
		*signature_ok = 1;
	}
	return 0;
}

void
verify_free(struct verify *v)
{
	if (v == NULL)
		return;
	EVP_MD_CTX_free(v->md);
	EVP_MD_CTX_free(v->vctx);
	EVP_PKEY_free(v->key);
	buf_free(&v->sig);
	free(v->key_path);
	free(v);
}
