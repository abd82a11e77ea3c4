/* test_sdproto.c - sd_notify and the native journal protocol against sockets the test owns. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sdproto.h"
#include "tap.h"
#include "util.h"

static char	tmpdir[] = "/tmp/test_sdproto.XXXXXX";

/* A datagram socket bound at path (or an abstract name when path starts with '@'). */
static int
listen_at(const char *path)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	struct timeval		tv = { 2, 0 };
	int			fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, len) == -1) {
		perror("bind");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* One datagram, NUL-terminated; *len is its size. */
static char *
receive(int fd, size_t *len)
{
	static char	buf[65536];
	ssize_t		n;

	if ((n = recv(fd, buf, sizeof buf - 1, 0)) < 0) {
		*len = 0;
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void
test_notify(void)
{
	char	path[256], abstract[64], *got;
	size_t	len;
	int	fd, r, err;

	unsetenv("NOTIFY_SOCKET");
	tap_int(sdproto_notify("READY=1"), SDPROTO_NONE, "no NOTIFY_SOCKET: nobody to tell");
	setenv("NOTIFY_SOCKET", "", 1);
	tap_int(sdproto_notify("READY=1"), SDPROTO_NONE, "an empty NOTIFY_SOCKET: the same");

	snprintf(path, sizeof path, "%s/notify", tmpdir);
	fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	tap_int(sdproto_notify("READY=1\nSTATUS=serving 1.2.3"), SDPROTO_OK,
	    "notify to a path socket");
	got = receive(fd, &len);
	tap_str(got, "READY=1\nSTATUS=serving 1.2.3", "the datagram is the state, unchanged");
	close(fd);

	snprintf(abstract, sizeof abstract, "@asg-test-notify-%d", (int)getpid());
	fd = listen_at(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	tap_int(sdproto_notify("STATUS=abstract"), SDPROTO_OK, "notify to an abstract socket");
	got = receive(fd, &len);
	tap_str(got, "STATUS=abstract", "the abstract socket got it");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	tap_int(sdproto_notify("READY=1"), SDPROTO_EINVAL, "a relative address is refused");
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	tap_int(sdproto_notify("READY=1"), SDPROTO_EINVAL,
	    "an unsupported vsock address is refused");
	setenv("NOTIFY_SOCKET", "@", 1);
	tap_int(sdproto_notify("READY=1"), SDPROTO_EINVAL, "an empty abstract name is refused");
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	setenv("NOTIFY_SOCKET", path, 1);
	tap_int(sdproto_notify("READY=1"), SDPROTO_EINVAL,
	    "a path longer than sun_path is refused");
	snprintf(path, sizeof path, "%s/nobody-listens", tmpdir);
	setenv("NOTIFY_SOCKET", path, 1);
	r = sdproto_notify("READY=1");
	err = errno;
	tap_int(r, SDPROTO_ESEND, "a socket that is not there: a send error");
	tap_int(err, ENOENT, "... with errno (%s)", strerror(err));
	unsetenv("NOTIFY_SOCKET");
}

static void
test_encode(void)
{
	const char	*simple[] = { "MESSAGE=hello", "PRIORITY=6", "SYSLOG_IDENTIFIER=asg-agent" };
	const char	*multi[] = { "MESSAGE=line 1\nline 2", "PRIORITY=3" };
	const char	*bad[] = { "message=x", "_PID=1", "1ABC=x", "NOEQUALS", "=x",
	    "A_VERY_LONG_NAME_THAT_GOES_ON_AND_ON_PAST_SIXTY_FOUR_CHARACTERS_XX=1" };
	const char	*one[1];
	char		*out, want[64];
	size_t		 len, i;

	tap_int(sdproto_journal_encode(simple, 3, &out, &len), 0, "plain fields encode");
	tap_str(out, "MESSAGE=hello\nPRIORITY=6\nSYSLOG_IDENTIFIER=asg-agent\n",
	    "plain fields are NAME=value lines");
	free(out);

	tap_int(sdproto_journal_encode(multi, 2, &out, &len), 0,
	    "a value with a newline encodes");
	/* "MESSAGE\n" + 8-byte little-endian 13 + "line 1\nline 2" + "\n" + "PRIORITY=3\n" */
	memcpy(want, "MESSAGE\n\x0d\0\0\0\0\0\0\0line 1\nline 2\nPRIORITY=3\n", 41);
	tap_mem(out, len, want, 41,
	    "a newline value is framed by its 64-bit little-endian length");
	free(out);

	for (i = 0; i < nitems(bad); i++) {
		one[0] = bad[i];
		tap_int(sdproto_journal_encode(one, 1, &out, &len), -1,
		    "field '%.20s' is refused", bad[i]);
		tap_null(out, "field '%.20s': no output", bad[i]);
	}
}

static void
test_journal(void)
{
	const char	*fields[] = { "MESSAGE=to the journal", "PRIORITY=4" };
	char		 path[256], out[256], *got;
	size_t		 len;
	struct stat	 sb;
	int		 fd, saved, efd;
	FILE		*f;

	snprintf(path, sizeof path, "%s/journal", tmpdir);
	fd = listen_at(path);
	tap_int(sdproto_journal_send(path, fields, 2), SDPROTO_OK, "journal entry sent");
	got = receive(fd, &len);
	tap_str(got, "MESSAGE=to the journal\nPRIORITY=4\n", "journald would read two fields");

	/* log.c: stderr is "the journal stream", so entries go to the socket with fields. */
	snprintf(out, sizeof out, "%s/stderr", tmpdir);
	fflush(stderr);
	saved = dup(2);
	efd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(efd, 2);
	fstat(2, &sb);
	snprintf(path, sizeof path, "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", path, 1);
	unsetenv("ASG_AGENT_LOG_STDERR");
	snprintf(path, sizeof path, "%s/journal", tmpdir);
	log_set_journal_socket(path);
	log_init("test-ident", LOGL_INFO);
	log_warn("drain %d s", 30);
	got = receive(fd, &len);
	tap_str(got, "MESSAGE=drain 30 s\nPRIORITY=4\nSYSLOG_IDENTIFIER=test-ident\n",
	    "log_warn under systemd: one journal entry with priority and identifier");

	/* The boot's fields ride along once set, so journalctl ASG_AGENT_PHASE=failed finds them. */
	log_set_field(LOGF_PHASE, "failed");
	log_set_field(LOGF_VERSION, "1.4.2");
	log_set_field(LOGF_GROUP, "web-blue");
	log_error("boot failed in %s", "fetching");
	got = receive(fd, &len);
	tap_str(got, "MESSAGE=boot failed in fetching\nPRIORITY=3\nSYSLOG_IDENTIFIER=test-ident\n"
	    "ASG_AGENT_PHASE=failed\nASG_AGENT_VERSION=1.4.2\nASG_AGENT_GROUP=web-blue\n",
	    "set fields are sent with every entry, as ASG_AGENT_*");
	log_set_field(LOGF_VERSION, NULL);
	log_set_field(LOGF_GROUP, "");
	log_set_field(LOGF_COUNT, "ignored");
	log_info("phase only");
	got = receive(fd, &len);
	tap_str(got, "MESSAGE=phase only\nPRIORITY=6\nSYSLOG_IDENTIFIER=test-ident\n"
	    "ASG_AGENT_PHASE=failed\n", "cleared fields are gone; an unknown one is ignored");
	{
		const char	*extra[] = { "ASG_AGENT_BOOT_SECONDS=0.210" };

		log_msg_fields(LOGL_INFO, extra, 1, "serving %s", "1.4.2");
		got = receive(fd, &len);
		tap_str(got, "MESSAGE=serving 1.4.2\nPRIORITY=6\nSYSLOG_IDENTIFIER=test-ident\n"
		    "ASG_AGENT_PHASE=failed\nASG_AGENT_BOOT_SECONDS=0.210\n",
		    "log_msg_fields: the extra fields after the set ones");
		log_info("next");
		got = receive(fd, &len);
		tap_str(got, "MESSAGE=next\nPRIORITY=6\nSYSLOG_IDENTIFIER=test-ident\n"
		    "ASG_AGENT_PHASE=failed\n", "and on that entry alone");
	}
	log_set_field(LOGF_PHASE, NULL);

	/* No journal socket: "<N>" lines on the stream, which journald parses too. */
	snprintf(path, sizeof path, "%s/no-journal", tmpdir);
	log_set_journal_socket(path);
	log_error("cannot %s", "boot");
	log_debug("not at this level");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(efd);
	f = fopen(out, "r");
	len = f != NULL ? fread(path, 1, sizeof path - 1, f) : 0;
	path[len] = '\0';
	if (f != NULL)
		fclose(f);
	tap_str(path, "<3>cannot boot\n", "without the socket: a <3> line on stderr, nothing below level");

	/* A stream that is not our stderr (a child redirected it): the plain format. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_set_journal_socket(NULL);
	log_init("test-ident", LOGL_INFO);
	log_info("plain");
	tap_int(recv(fd, path, sizeof path, MSG_DONTWAIT), -1,
	    "JOURNAL_STREAM naming another file: nothing sent to the journal socket");
	unsetenv("JOURNAL_STREAM");
	close(fd);
}

int
main(void)
{
	char	path[300];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	tap_run("notify", test_notify);
	tap_run("journal encoding", test_encode);
	tap_run("journal", test_journal);
	snprintf(path, sizeof path, "%s/notify", tmpdir);
	unlink(path);
	snprintf(path, sizeof path, "%s/journal", tmpdir);
	unlink(path);
	snprintf(path, sizeof path, "%s/stderr", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return tap_done();
}
