/*
 * tinyapp.c - the app of bench/fleet: answers 200 to every HTTP request on
 * 127.0.0.1:PORT (argv[1]) with $ASG_AGENT_VERSION, one connection at a time.
 * It costs next to no CPU, so a fleet of them measures the boot agents, not
 * the app.  It exits when its parent goes away (polled every 0.5 s) or after
 * an hour, whichever comes first.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sa;
	struct pollfd		 pfd;
	const char		*version = getenv("ASG_AGENT_VERSION");
	char			 req[4096], resp[256];
	pid_t			 parent = getppid();
	time_t			 end = time(NULL) + 3600;
	int			 s, c, one = 1, len;

	if (argc != 2) {
		fprintf(stderr, "usage: tinyapp PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) == -1 || listen(s, 64) == -1) {
		perror("tinyapp: bind/listen");
		return 1;
	}
	len = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
	    strlen(version ? version : "?") + 1, version ? version : "?");
	pfd.fd = s;
	pfd.events = POLLIN;
	while (getppid() == parent && time(NULL) < end) {
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		if ((c = accept(s, NULL, NULL)) == -1)
			continue;
		/* Read the request head (one read is enough for a probe), answer, close. */
		struct timeval tv = { 1, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (read(c, req, sizeof req) > 0)
			(void)!write(c, resp, (size_t)len);
		close(c);
	}
	return 0;
}
