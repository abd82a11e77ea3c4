/* verify.h - the sha256 digest and detached signature of an artifact's bytes as they pass. */
#ifndef ASG_VERIFY_H
#define ASG_VERIFY_H

#include <stddef.h>
#include <sys/types.h>

#include "reader.h"

struct halt;
struct verify;

/* A digest under way, with no key and no source yet. */
struct verify	*verify_new(char **);
/* Load the PEM public key (ECDSA or RSA) the signature is checked with. */
int		 verify_key(struct verify *, const char *path, char **);
/* The detached signature of the bytes to come, over SHA-256; after verify_key. */
int		 verify_signature(struct verify *, const void *, size_t, char **);
/* Where the bytes come from; *stop set fails the next read. */
void		 verify_source(struct verify *, reader_fn, void *, const struct halt *);
/* A reader, arg the verify: the source's bytes, hashed and signature-checked on the way. */
ssize_t		 verify_read(void *, void *, size_t, char **);
/* Bytes read so far. */
long long	 verify_bytes(const struct verify *);
/*
 * All bytes are in: write their digest (hex) to sha256, then compare it with
 * want (NULL: nothing to compare) and check the signature if one was given.
 * *digest_ok and *signature_ok say what was checked and held.
 */
int		 verify_finish(struct verify *, const char *want, char sha256[65],
		    int *digest_ok, int *signature_ok, char **);
void		 verify_free(struct verify *);

/* OpenSSL's last error, as words (and the error queue cleared): for causes. */
const char	*verify_ssl_error(void);

#endif
