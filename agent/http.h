/* http.h - the agent's only HTTP client (libcurl): one reused connection pool per process. */
#ifndef ASG_HTTP_H
#define ASG_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

/* Transport failures; the caller decides which ones it retries. */
enum http_err {
	HTTP_OK = 0,
	HTTP_ECONNECT,		/* refused, unreachable, no such host */
	HTTP_ETIMEOUT,
	HTTP_EIO,		/* reset, truncated, nothing received */
	HTTP_EOTHER,		/* TLS, bad URL, protocol: retrying will not help */
};

/* A request body read from a file: body_len bytes from offset on, read again on each attempt. */
struct http_file_body {
	int		 fd;
	long long	 offset;
};

struct http_request {
	const char		*method;
	const char		*url;
	const char *const	*headers;	/* "Name: value", NULL-terminated */
	const void		*body;
	size_t			 body_len;
	const struct http_file_body *body_file;	/* or NULL: the body is body */
	double			 timeout;	/* whole request, seconds; 0 = 30 */
	double			 connect_timeout; /* seconds; 0 = 5 */
	size_t			 max_body;	/* 0 = 16 MiB */
	long long		 range_from;	/* > 0: ask for bytes from here on */
	long long		 range_to;	/* > 0: and up to this one (inclusive) */
	int			 follow;	/* follow up to 5 redirects */
};

struct http_header {
	char	*name;
	char	*value;
};

struct http_response {
	long			 status;
	struct buf		 body;
	struct http_header	*headers;
	size_t			 nheaders;
};

int	 http_init(char **);
void	 http_cleanup(void);
/* Perform a request; returns an enum http_err (HTTP_OK whatever the status). */
int	 http_do(const struct http_request *, struct http_response *, char **);
void	 http_response_free(struct http_response *);
const char *http_header(const struct http_header *, size_t, const char *);
/* The Date header as seconds since the epoch, or -1. */
long long http_date(const struct http_header *, size_t);
int	 http_retryable(int);
/* url without its userinfo and query (a password, a presigned signature): allocated. */
char	*http_url_shown(const char *);
const char *http_library_version(void);
/* The CA bundle HTTPS is verified against (SSL_CERT_FILE, else the distribution's), or NULL. */
const char *http_ca_bundle(void);

/* A response body read as it arrives, in constant memory. */
struct http_stream;
int	 http_stream_open(const struct http_request *, struct http_stream **, char **);
long	 http_stream_status(const struct http_stream *);
const char *http_stream_header(const struct http_stream *, const char *);
/* Read up to len bytes: >0 bytes, 0 at the end, -1 on error (see http_stream_error). */
ssize_t	 http_stream_read(struct http_stream *, void *, size_t, char **);
int	 http_stream_error(const struct http_stream *);
void	 http_stream_close(struct http_stream *);

#endif
