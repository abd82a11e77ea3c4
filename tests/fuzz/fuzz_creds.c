/*
 * fuzz_creds.c - IMDS role credentials: creds_parse_imds and creds_parse_time.
 *
 * Input: the body of meta-data/iam/security-credentials/ROLE.
 * Checks: success gives a non-empty key pair and an expiration >= 0; failure
 * gives a cause and leaves nothing allocated; creds_clear wipes everything.
 */
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "util.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct creds	 c;
	char		*text, *cause = NULL;
	double		 t;

	text = fuzz_cstring(data, len);
	if (creds_parse_imds(text, &c, &cause) == 0) {
		FUZZ_CHECK(cause == NULL, "success with a cause");
		FUZZ_CHECK(c.access_key_id != NULL && *c.access_key_id != '\0', "no key id");
		FUZZ_CHECK(c.secret_access_key != NULL && *c.secret_access_key != '\0',
		    "no secret");
		FUZZ_CHECK(c.session_token == NULL || *c.session_token != '\0', "empty token");
		FUZZ_CHECK(c.expiration >= 0, "expiration %f", c.expiration);
	} else {
		FUZZ_CHECK(cause != NULL, "failure without a cause");
		FUZZ_CHECK(c.access_key_id == NULL && c.secret_access_key == NULL &&
		    c.session_token == NULL, "failure left credentials");
	}
	creds_clear(&c);
	FUZZ_CHECK(c.access_key_id == NULL && c.secret_access_key == NULL &&
	    c.session_token == NULL && c.expiration == 0, "creds_clear left something");
	free(cause);

	/* The Expiration parser on its own, with whatever the input is. */
	t = creds_parse_time(text);
	FUZZ_CHECK(t == -1 || t >= -62167219200.0, "time %f", t);
	free(text);
	return 0;
}
