/* sigv4_sign.c - sign one request read from stdin, for comparison with other signers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "util.h"

/*
 * Input: one field per line, "KEYWORD VALUE", the value running to the end
 * of the line with C-like escapes (\\ \n \r \t \xHH; \x00 is refused):
 *
 *	method GET
 *	path /a%20b/../c		as on the request line
 *	query x=1&y			omit the line for no query
 *	region us-east-1
 *	service s3
 *	amz_date 20150830T123600Z
 *	s3 1				0 or 1, default 0
 *	payload_hash UNSIGNED-PAYLOAD	or omit to hash the body
 *	body 48656c6c6f			hex
 *	header Name:value		repeatable, in order; value as sent
 *
 * The keys come from SIGV4_ACCESS_KEY_ID and SIGV4_SECRET_ACCESS_KEY.
 * Output: the canonical request, a line "----", the Authorization value.
 * Exit 1 (cause on stderr) when signing fails, 2 on bad input.
 */

struct input {
	char			 *method;
	char			 *path;
	char			 *query;
	char			 *region;
	char			 *service;
	char			 *amz_date;
	char			 *payload_hash;
	int			  s3;
	struct buf		  body;
	char			**names;
	char			**values;
	size_t			  n;
};

static int
hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo the escapes of one value; NULL (with *cause set) on a bad one. */
static char *
unescape(const char *s, char **cause)
{
	struct buf	b = { 0 };
	int		hi, lo;

	for (; *s != '\0'; s++) {
		if (*s != '\\') {
			buf_addc(&b, *s);
			continue;
		}
		switch (*++s) {
		case '\\':
			buf_addc(&b, '\\');
			break;
		case 'n':
			buf_addc(&b, '\n');
			break;
		case 'r':
			buf_addc(&b, '\r');
			break;
		case 't':
			buf_addc(&b, '\t');
			break;
		case 'x':
			if ((hi = hexdigit(s[1])) == -1 ||
			    (lo = hexdigit(s[2])) == -1 || (hi | lo) == 0) {
				set_cause(cause, "bad \\x escape");
				goto fail;
			}
			buf_addc(&b, (char)(hi << 4 | lo));
			s += 2;
			break;
		default:
			set_cause(cause, "bad escape");
			goto fail;
		}
	}
	return buf_take(&b);
fail:
	buf_free(&b);
	return NULL;
}

static int
set_field(char **field, const char *value, char **cause)
{
	char	*s;

	if ((s = unescape(value, cause)) == NULL)
		return -1;
	free(*field);
	*field = s;
	return 0;
}

static int
parse_body(struct buf *b, const char *hex, char **cause)
{
	int	hi, lo;

	buf_reset(b);
	for (; hex[0] != '\0'; hex += 2) {
		if ((hi = hexdigit(hex[0])) == -1 ||
		    (lo = hexdigit(hex[1])) == -1)
			return set_cause(cause, "body is not hex");
		buf_addc(b, (char)(hi << 4 | lo));
	}
	return 0;
}

static int
add_header(struct input *in, const char *line, char **cause)
{
	char	*s, *colon;

	if ((s = unescape(line, cause)) == NULL)
		return -1;
	if ((colon = strchr(s, ':')) == NULL) {
		free(s);
		return set_cause(cause, "header without ':'");
	}
	in->names = xrealloc(in->names, (in->n + 1) * sizeof *in->names);
	in->values = xrealloc(in->values, (in->n + 1) * sizeof *in->values);
	in->names[in->n] = xstrndup(s, (size_t)(colon - s));
	in->values[in->n] = xstrdup(colon + 1);
	in->n++;
	free(s);
	return 0;
}

static int
parse_line(struct input *in, char *line, char **cause)
{
	char	*value;

	if ((value = strchr(line, ' ')) == NULL)
		value = line + strlen(line);
	else
		*value++ = '\0';
	if (strcmp(line, "method") == 0)
		return set_field(&in->method, value, cause);
	if (strcmp(line, "path") == 0)
		return set_field(&in->path, value, cause);
	if (strcmp(line, "query") == 0)
		return set_field(&in->query, value, cause);
	if (strcmp(line, "region") == 0)
		return set_field(&in->region, value, cause);
	if (strcmp(line, "service") == 0)
		return set_field(&in->service, value, cause);
	if (strcmp(line, "amz_date") == 0)
		return set_field(&in->amz_date, value, cause);
	if (strcmp(line, "payload_hash") == 0)
		return set_field(&in->payload_hash, value, cause);
	if (strcmp(line, "s3") == 0) {
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
			return set_cause(cause, "s3 is not 0 or 1");
		in->s3 = value[0] == '1';
		return 0;
	}
	if (strcmp(line, "body") == 0)
		return parse_body(&in->body, value, cause);
	if (strcmp(line, "header") == 0)
		return add_header(in, value, cause);
	return set_cause(cause, "unknown keyword '%s'", line);
}

static void
input_free(struct input *in)
{
	size_t	i;

	free(in->method);
	free(in->path);
	free(in->query);
	free(in->region);
	free(in->service);
	free(in->amz_date);
	free(in->payload_hash);
	buf_free(&in->body);
	for (i = 0; i < in->n; i++) {
		free(in->names[i]);
		free(in->values[i]);
	}
	free(in->names);
	free(in->values);
}

int
main(void)
{
	struct input		 in;
	struct sigv4_request	 req;
	struct sigv4_header	*hs = NULL;
	struct buf		 creq = { 0 }, authz = { 0 };
	const char		*akid, *secret;
	char			*line = NULL, *cause = NULL;
	size_t			 cap = 0, i, lineno = 0;
	ssize_t			 len;
	int			 rv = 2;

	memset(&in, 0, sizeof in);
	akid = getenv("SIGV4_ACCESS_KEY_ID");
	secret = getenv("SIGV4_SECRET_ACCESS_KEY");
	if (akid == NULL || secret == NULL) {
		fprintf(stderr, "sigv4_sign: set SIGV4_ACCESS_KEY_ID and "
		    "SIGV4_SECRET_ACCESS_KEY\n");
		goto out;
	}
	while ((len = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (parse_line(&in, line, &cause) != 0) {
			fprintf(stderr, "sigv4_sign: line %zu: %s\n", lineno,
			    cause);
			goto out;
		}
	}
	if (ferror(stdin)) {
		fprintf(stderr, "sigv4_sign: stdin: %s\n", strerror(errno));
		goto out;
	}

	hs = xcalloc(in.n, sizeof *hs);
	for (i = 0; i < in.n; i++) {
		hs[i].name = in.names[i];
		hs[i].value = in.values[i];
	}
	memset(&req, 0, sizeof req);
	req.method = in.method;
	req.path = in.path;
	req.query = in.query;
	req.headers = hs;
	req.nheaders = in.n;
	req.payload_hash = in.payload_hash;
	req.body = in.body.data;
	req.body_len = in.body.len;
	req.region = in.region;
	req.service = in.service;
	req.amz_date = in.amz_date;
	req.s3 = in.s3;

	rv = 1;
	if (sigv4_canonical_request(&req, &creq, &cause) != 0 ||
	    sigv4_authorization(&req, akid, secret, &authz, &cause) != 0) {
		fprintf(stderr, "sigv4_sign: %s\n", cause);
		goto out;
	}
	printf("%s\n----\n%s\n", creq.data, authz.data);
	rv = fflush(stdout) == 0 ? 0 : 1;
out:
	input_free(&in);
	free(hs);
	free(line);
	free(cause);
	buf_free(&creq);
	buf_free(&authz);
	return rv;
}
