/*
 * sdproto.h - systemd's two stable wire protocols, spoken without libsystemd:
 * sd_notify(3)'s datagram to $NOTIFY_SOCKET and the journal's native protocol.
 */
#ifndef ASG_SDPROTO_H
#define ASG_SDPROTO_H

#include <stddef.h>

/* Where journald listens for native-protocol datagrams. */
#define SDPROTO_JOURNAL_SOCKET	"/run/systemd/journal/socket"

enum sdproto_err {
	SDPROTO_OK = 0,
	SDPROTO_NONE = 1,	/* no socket to talk to: not an error for a caller */
	SDPROTO_EINVAL = -1,	/* a malformed socket address or journal field */
	SDPROTO_ESEND = -2,	/* the datagram could not be sent (errno kept) */
};

/*
 * Send state (e.g. "READY=1\nSTATUS=serving") to the socket $NOTIFY_SOCKET
 * names, a path or an abstract name ('@'). SDPROTO_NONE when it is unset.
 */
int	sdproto_notify(const char *state);
/* The same to an explicit socket address (for tests and callers with their own). */
int	sdproto_notify_to(const char *addr, const char *state);

/*
 * One journal entry: fields are "NAME=value" strings (a value may hold any
 * bytes but NUL, newlines included); at most 16. Sent to path as one datagram.
 */
int	sdproto_journal_send(const char *path, const char *const *fields, size_t nfields);

/*
 * Encode fields in the native protocol into out (allocated, *outlen bytes):
 * "NAME=value\n", or "NAME\n" + 64-bit little-endian length + value + "\n"
 * when the value holds a newline. -1 when a field has no '=' or a bad name.
 */
int	sdproto_journal_encode(const char *const *fields, size_t nfields, char **out,
	    size_t *outlen);

#endif
