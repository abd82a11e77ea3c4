/*
 * sdproto.c - systemd's sd_notify and native journal protocols, by hand: both
 * are documented, stable datagram formats, and libsystemd cannot be linked
 * statically.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdproto.h"
#include "util.h"

#define SDPROTO_MAX_FIELDS	16
#define SDPROTO_MAX_NAME	64

/* Fill sun from a path or an '@' abstract name; returns the address length or -1. */
static socklen_t
sun_fill(struct sockaddr_un *sun, const char *addr)
{
	size_t	len = strlen(addr);

	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if ((addr[0] != '/' && addr[0] != '@') || len < 2 || len >= sizeof sun->sun_path)
		return (socklen_t)-1;
	memcpy(sun->sun_path, addr, len);
	if (addr[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (addr[0] == '/' ? 1 : 0));
}

static int
send_datagram(const char *addr, const void *data, size_t len)
{
	struct sockaddr_un	sun;
	socklen_t		slen;
	ssize_t			n;
	int			fd, saved;

	if ((slen = sun_fill(&sun, addr)) == (socklen_t)-1)
		return SDPROTO_EINVAL;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return SDPROTO_ESEND;
	do
		n = sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&sun, slen);
	while (n == -1 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? SDPROTO_OK : SDPROTO_ESEND;
}

int
sdproto_notify_to(const char *addr, const char *state)
{
	return send_datagram(addr, state, strlen(state));
}

int
sdproto_notify(const char *state)
{
	const char	*addr = getenv("NOTIFY_SOCKET");

	if (addr == NULL || *addr == '\0')
		return SDPROTO_NONE;
	return sdproto_notify_to(addr, state);
}

/* A journal field name: A-Z, 0-9 and '_', not starting with '_' or a digit. */
static int
name_ok(const char *name, size_t len)
{
	size_t	i;

	if (len == 0 || len > SDPROTO_MAX_NAME || name[0] == '_' ||
	    (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (i = 0; i < len; i++) {
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return 0;
	}
	return 1;
}

int
sdproto_journal_encode(const char *const *fields, size_t nfields, char **out,
    size_t *outlen)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*eq, *value;
	size_t		 i, j, nlen, vlen;
	uint64_t	 le;
	unsigned char	 lenbytes[8];

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < nfields; i++) {
		if ((eq = strchr(fields[i], '=')) == NULL ||
		    !name_ok(fields[i], (size_t)(eq - fields[i]))) {
			buf_free(&b);
			return -1;
		}
		nlen = (size_t)(eq - fields[i]);
		value = eq + 1;
		vlen = strlen(value);
		if (memchr(value, '\n', vlen) == NULL) {
			buf_add(&b, fields[i], nlen + 1 + vlen);
			buf_addc(&b, '\n');
			continue;
		}
		buf_add(&b, fields[i], nlen);
		buf_addc(&b, '\n');
		le = vlen;
		for (j = 0; j < 8; j++)
			lenbytes[j] = (unsigned char)(le >> (8 * j));
		buf_add(&b, lenbytes, sizeof lenbytes);
		buf_add(&b, value, vlen);
		buf_addc(&b, '\n');
	}
	*outlen = b.len;
	*out = buf_take(&b);
	return 0;
}

int
sdproto_journal_send(const char *path, const char *const *fields, size_t nfields)
{
	char	*data;
	size_t	 len;
	int	 r;

	if (nfields > SDPROTO_MAX_FIELDS)
		return SDPROTO_EINVAL;
	if (sdproto_journal_encode(fields, nfields, &data, &len) != 0)
		return SDPROTO_EINVAL;
	r = send_datagram(path, data, len);
	free(data);
	return r;
}
