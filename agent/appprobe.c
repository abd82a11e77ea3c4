/* appprobe.c - the app's health probe: one HTTP GET of its health_url through the agent's client. */
#include <string.h>

#include "appprobe.h"
#include "http.h"
#include "util.h"

#define APPPROBE_MAX_BODY	(1 << 20)
#define APPPROBE_EXCERPT	120

int
appprobe_healthy(const char *url, double timeout, char **cause)
{
	struct http_request	 req;
	struct http_response	 resp;
	char			 excerpt[APPPROBE_EXCERPT + 1];
	size_t			 i;
	unsigned char		 ch;
	int			 ret = 0;

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.method = "GET";
	req.url = url;
	req.timeout = timeout > 0 ? timeout : 0;
	req.connect_timeout = req.timeout;
	req.max_body = APPPROBE_MAX_BODY;
	if (http_do(&req, &resp, cause) != HTTP_OK)
		goto out;
	if (resp.status >= 200 && resp.status <= 299) {
		ret = 1;
		goto out;
	}
	/* The first line of the body often says why. */
	for (i = 0; i < resp.body.len && i < APPPROBE_EXCERPT; i++) {
		ch = (unsigned char)resp.body.data[i];
		if (ch == '\r' || ch == '\n')
			break;
		excerpt[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (i > 0 && excerpt[i - 1] == ' ')
		i--;
	excerpt[i] = '\0';
	if (*excerpt != '\0')
		set_cause(cause, "HTTP %ld: %s", resp.status, excerpt);
	else
		set_cause(cause, "HTTP %ld", resp.status);
out:
	http_response_free(&resp);
	return ret;
}
