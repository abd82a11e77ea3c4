/* template.c - the URL templates of the config: {version}, {group} and the like, expanded. */
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "template.h"
#include "util.h"

char *
tmpl_expand(const char *tmpl, const char *const vars[][2], int encode, char **cause)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*p, *end;
	size_t		 i, len;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '{') {
			buf_addc(&b, *p);
			continue;
		}
		if ((end = strchr(p, '}')) == NULL) {
			set_cause(cause, "'%s': unclosed '{'", tmpl);
			goto fail;
		}
		len = (size_t)(end - p - 1);
		for (i = 0; vars[i][0] != NULL; i++) {
			if (strlen(vars[i][0]) == len && strncmp(vars[i][0], p + 1, len) == 0)
				break;
		}
		if (vars[i][0] == NULL) {
			set_cause(cause, "'%s': unknown variable {%.*s}", tmpl, (int)len, p + 1);
			goto fail;
		}
		if (vars[i][1] == NULL) {
			set_cause(cause, "'%s': {%s} is not known yet", tmpl, vars[i][0]);
			goto fail;
		}
		/* A group named "a?b" must not turn a path into a query. */
		if (encode && strcmp(vars[i][0], "url") != 0)
			sigv4_uri_encode(&b, vars[i][1], strlen(vars[i][1]), 0);
		else
			buf_adds(&b, vars[i][1]);
		p = end;
	}
	return buf_take(&b);
fail:
	buf_free(&b);
	return NULL;
}
