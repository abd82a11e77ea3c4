/* test_app.c - an adopted app is known by its pid and its start time, never by its pid alone. */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "state.h"

#include "tap.h"

/* A child in its own process group, as the agent starts an app, that waits to be killed. */
static pid_t
spawn(void)
{
	pid_t	pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	if (pid > 0)
		setpgid(pid, pid);
	return pid;
}

static int
running(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static void
test_reused_pid(void)
{
	struct app		 app;
	char			*argv[] = { "app", NULL }, *cause = NULL;
	unsigned long long	 start;
	pid_t			 pid;

	if ((pid = spawn()) <= 0) {
		tap_true(0, "fork: %s", strerror(errno));
		return;
	}
	start = state_process_start((int)pid);
	tap_true(start != 0, "the child's start time is readable");

	/* An earlier agent recorded another start: the pid now belongs to someone else. */
	memset(&app, 0, sizeof app);
	app.argv = argv;
	app_adopt(&app, pid, start + 1);
	tap_int(app_check(&app, 10, &cause), -1, "a pid with another start time is not the app");
	tap_has(cause, "is gone", "... and says the app is gone");
	free(cause);
	cause = NULL;
	memset(&app, 0, sizeof app);
	app.argv = argv;
	app_adopt(&app, pid, start + 1);
	tap_int(app_stop(&app, 1.0, &cause), 0, "stopping it is done at once: %s",
	    cause != NULL ? cause : "no cause");
	free(cause);
	cause = NULL;
	tap_true(running(pid), "the process that has the pid now was not signalled");

	memset(&app, 0, sizeof app);
	app.argv = argv;
	app_adopt(&app, pid, start);
	tap_int(app_check(&app, 10, &cause), 0, "the same pid and start time is the app: %s",
	    cause != NULL ? cause : "running");
	free(cause);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Split as a shell would, but no shell runs it: its operators outside quotes are refused. */
static void
split_case(const char *cmd, const char *want, const char *what)
{
	char	**argv = NULL, *cause = NULL, *got = NULL, **p;
	size_t	  len = 0;
	FILE	 *f = open_memstream(&got, &len);

	if (app_split(cmd, &argv, &cause) == 0) {
		for (p = argv; *p != NULL; p++)
			fprintf(f, "%s[%s]", p == argv ? "" : " ", *p);
	} else
		fprintf(f, "error: %s", cause);
	fclose(f);
	tap_str(got, want, "%s", what);
	app_argv_free(argv);
	free(cause);
	free(got);
}

static void
test_split(void)
{
	split_case("python3 app.py 8080", "[python3] [app.py] [8080]", "words");
	split_case("sh -c \"exec ./app ; echo b\"", "[sh] [-c] [exec ./app ; echo b]",
	    "a ';' inside quotes is the argument's");
	split_case("sh -c 'a && b > log'", "[sh] [-c] [a && b > log]", "so are && and >");
	split_case("find . -exec x {} \\;", "[find] [.] [-exec] [x] [{}] [;]",
	    "an escaped ';' is an argument");
	split_case("./app --port 80 ; main app", "error: ';' outside quotes: the command runs "
	    "without a shell (quote it, or use sh -c '...')", "an old file's comment is refused");
	split_case("./app > /var/log/app.log", "error: '>' outside quotes: the command runs "
	    "without a shell (quote it, or use sh -c '...')", "a redirection is refused");
	split_case("a=b&c", "[a=b&c]", "inside a word it is the word's");
	split_case("sh -c \"exec ./app", "error: unterminated \" quote in command",
	    "an unterminated quote");
}

int
main(void)
{
	tap_run("split", test_split);
	tap_run("reused pid", test_reused_pid);
	return tap_done();
}
