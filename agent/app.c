/* app.c - the application: a systemd unit started with systemctl, or a command the agent supervises. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "halt.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define APP_SHOW_TIMEOUT	5.0	/* seconds for a `systemctl show` read after the boot */

extern char **environ;

void
app_argv_free(char **argv)
{
	char	**p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

int
app_split(const char *s, char ***out, char **cause)
{
	struct buf	  word = { NULL, 0, 0 };
	char		**argv = NULL;
	size_t		  n = 0;
	int		  in_word = 0, ret = -1;
	char		  quote = 0;

	*out = NULL;
	for (;; s++) {
		if (quote != 0) {
			if (*s == '\0') {
				set_cause(cause, "unterminated %c quote in command", quote);
				goto out;
			}
			if (*s == quote)
				quote = 0;
			else if (*s == '\\' && quote == '"' && (s[1] == '"' || s[1] == '\\'))
				buf_addc(&word, *++s);
			else
				buf_addc(&word, *s);
			continue;
		}
		if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\n') {
			if (in_word) {
				argv = xrealloc(argv, (n + 2) * sizeof *argv);
				argv[n++] = buf_take(&word);
				argv[n] = NULL;
				in_word = 0;
			}
			if (*s == '\0')
				break;
			continue;
		}
		/* No shell runs it: "./app ; x" or "./app > log" would pass ";", ">" on. */
		if (!in_word && strchr(";|&<>", *s) != NULL) {
			set_cause(cause, "'%c' outside quotes: the command runs without a shell "
			    "(quote it, or use sh -c '...')", *s);
			goto out;
		}
		in_word = 1;
		if (*s == '\'' || *s == '"')
			quote = *s;
		else if (*s == '\\' && s[1] != '\0')
			buf_addc(&word, *++s);
		else
			buf_addc(&word, *s);
	}
	if (n == 0) {
		set_cause(cause, "empty command");
		goto out;
	}
	*out = argv;
	argv = NULL;
	ret = 0;
out:
	app_argv_free(argv);
	buf_free(&word);
	return ret;
}

static char **
make_env(const char *version, const char *release_dir, const char *instance_id)
{
	char	**envp;
	size_t	  n = 0, i, j = 0;

	while (environ[n] != NULL)
		n++;
	envp = xcalloc(n + 4, sizeof *envp);
	for (i = 0; i < n; i++) {
		/* Our own credentials and systemd socket are not the app's business. */
		if (strncmp(environ[i], "ASG_AGENT_", 10) == 0 ||
		    strncmp(environ[i], "NOTIFY_SOCKET=", 14) == 0 ||
		    strncmp(environ[i], "AWS_ACCESS_KEY_ID=", 18) == 0 ||
		    strncmp(environ[i], "AWS_SECRET_ACCESS_KEY=", 22) == 0 ||
		    strncmp(environ[i], "AWS_SESSION_TOKEN=", 18) == 0)
			continue;
		envp[j++] = xstrdup(environ[i]);
	}
	envp[j++] = xasprintf("ASG_AGENT_VERSION=%s", version);
	envp[j++] = xasprintf("ASG_AGENT_RELEASE_DIR=%s", release_dir);
	envp[j++] = xasprintf("ASG_AGENT_INSTANCE_ID=%s", instance_id);
	envp[j] = NULL;
	return envp;
}

int
app_init(struct app *app, const char *unit, const char *command, const char *release_dir,
    const char *version, const char *instance_id, char **cause)
{
	memset(app, 0, sizeof *app);
	app->pid = -1;
	if ((unit == NULL || *unit == '\0') == (command == NULL || *command == '\0'))
		return set_cause(cause, "set exactly one of [app] unit and [app] command");
	if (unit != NULL && *unit != '\0')
		app->unit = xstrdup(unit);
	else if (app_split(command, &app->argv, cause) != 0)
		return -1;
	app->release_dir = xstrdup(release_dir);
	app->envp = make_env(version, release_dir, instance_id);
	return 0;
}

void
app_free(struct app *app)
{
	if (app == NULL)
		return;
	free(app->unit);
	app_argv_free(app->argv);
	app_argv_free(app->envp);
	free(app->release_dir);
	memset(app, 0, sizeof *app);
	app->pid = -1;
}

char *
app_describe(const struct app *app)
{
	struct buf	  b = { NULL, 0, 0 };
	char		**p;

	if (app->unit != NULL)
		return xasprintf("unit %s", app->unit);
	buf_adds(&b, "command");
	for (p = app->argv; *p != NULL; p++)
		buf_addf(&b, " %s", *p);
	if (app->pid > 0 && !app->exited)
		buf_addf(&b, " (pid %d)", (int)app->pid);
	return buf_take(&b);
}

int
app_write_env(const char *state_dir, const char *version, const char *release_dir,
    const char *instance_id, char **cause)
{
	char	*path, *text;
	int	 ret;

	path = xasprintf("%s/release.env", state_dir);
	text = xasprintf("ASG_AGENT_VERSION=%s\nASG_AGENT_RELEASE_DIR=%s\n"
	    "ASG_AGENT_INSTANCE_ID=%s\n", version, release_dir, instance_id);
	ret = file_replace(path, text, strlen(text), 0644, cause);
	free(text);
	free(path);
	return ret;
}

/* close_range(2) is Linux 5.9; the number is the same on every architecture. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

struct dirent64_raw {
	uint64_t	d_ino;
	int64_t		d_off;
	unsigned short	d_reclen;
	unsigned char	d_type;
	char		d_name[];
};

/*
 * Close every descriptor from lowfd up, in a forked child of a threaded
 * process: only system calls, no malloc. Older kernels (Amazon Linux 2's
 * 4.14) lack close_range, so the descriptors /proc lists are closed instead.
 */
static void
close_from(int lowfd)
{
	char			 dbuf[1024];
	struct dirent64_raw	*d;
	struct rlimit		 rl;
	long			 n, off, fd, max;
	int			 dfd, closed;

	if (syscall(SYS_close_range, (unsigned int)lowfd, ~0U, 0) == 0)
		return;
	if ((dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		do {
			closed = 0;
			lseek(dfd, 0, SEEK_SET);
			while ((n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
				for (off = 0; off < n; off += d->d_reclen) {
					d = (struct dirent64_raw *)(dbuf + off);
					if (d->d_name[0] < '0' || d->d_name[0] > '9')
						continue;
					fd = strtol(d->d_name, NULL, 10);
					if (fd >= lowfd && fd != dfd && close((int)fd) == 0)
						closed = 1;
				}
			}
		} while (closed);
		close(dfd);
		return;
	}
	max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
	    (long)rl.rlim_cur : 65536;
	if (max > 65536)
		max = 65536;
	for (fd = lowfd; fd < max; fd++)
		close((int)fd);
}

/*
 * In a forked child: stdin from /dev/null, stdout and stderr to outfd and
 * errfd when given, nothing else inherited (curl's kept-alive sockets and the
 * health listener are not the child's), default signal dispositions.
 */
static void
child_stdio(int outfd, int errfd)
{
	int	fd;

	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, 0);
		if (fd > 2)
			close(fd);
	}
	if (outfd != -1)
		dup2(outfd, 1);
	if (errfd != -1)
		dup2(errfd, 2);
	close_from(3);
	/*
	 * The agent's memory limit is the agent's, not the app's. Its raised
	 * descriptor limit is kept: apps run this way have had it.
	 */
	mem_limit_undo();
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
}

/* Fork and exec argv in the release dir, in a process group of its own. */
static pid_t
spawn(struct app *app, char *const argv[], char **cause)
{
	pid_t	pid;

	if ((pid = fork()) == -1) {
		set_cause(cause, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		if (chdir(app->release_dir) == -1)
			_exit(126);
		child_stdio(-1, -1);
		execvpe(argv[0], argv, app->envp);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

static char *
describe_status(int status)
{
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 127)
			return xstrdup("could not be executed (exit 127)");
		return xasprintf("exited with status %d", WEXITSTATUS(status));
	}
	if (WIFSIGNALED(status))
		return xasprintf("was killed by signal %d", WTERMSIG(status));
	return xstrdup("stopped");
}

/* SIGKILL a child and its process group, and reap it; returns its wait status. */
static int
kill_and_reap(pid_t pid)
{
	int	status = 0;

	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return status;
}

/* Wait for pid until timeout; SIGKILL its group at the deadline. Returns the wait status. */
static int
wait_for(struct app *app, pid_t pid, double timeout, const struct halt *halt, int *timed_out)
{
	double	deadline = mono_now() + timeout;
	int	status = 0;
	pid_t	r;

	*timed_out = 0;
	for (;;) {
		if ((r = waitpid(pid, &status, WNOHANG)) == pid)
			return status;
		if (r == -1 && errno != EINTR)
			return -1;
		if (mono_now() >= deadline || halt_stopped(halt)) {
			*timed_out = 1;
			return kill_and_reap(pid);
		}
		if (app != NULL && app->tick != NULL)
			app->tick(app->tick_arg);
		sleep_for(0.02, NULL);
	}
}

int
app_pre_start(struct app *app, const char *prog, double timeout, const struct halt *halt,
    char **cause)
{
	char		*path = NULL, *what = NULL;
	char		*argv[2];
	struct stat	 sb;
	pid_t		 pid;
	int		 status, timed_out, ret = -1;

	if (*prog == '/' || strstr(prog, "..") != NULL)
		return set_cause(cause, "pre_start '%s' must be a path inside the release", prog);
	path = xasprintf("%s/%s", app->release_dir, prog);
	if (stat(path, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		set_cause(cause, "pre_start %s: %s", prog,
		    errno != 0 ? strerror(errno) : "not a file");
		goto out;
	}
	argv[0] = path;
	argv[1] = NULL;
	if ((pid = spawn(app, argv, cause)) == -1)
		goto out;
	status = wait_for(app, pid, timeout, halt, &timed_out);
	if (timed_out) {
		set_cause(cause, "pre_start %s did not finish within %.0f s", prog, timeout);
		goto out;
	}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		what = describe_status(status);
		set_cause(cause, "pre_start %s %s", prog, what);
		goto out;
	}
	ret = 0;
out:
	free(what);
	free(path);
	return ret;
}

/*
 * Run `systemctl ARGS...` (no unit: the manager), which waits for the unit's job, and wait for it:
 * the deadline and, when given, the stop flag cut the wait short; tick runs
 * meanwhile. Its stdout lands in out (when not NULL), its stderr's first line
 * in the cause.
 */
static int
systemctl(struct app *app, const char *verb, const char *unit, const char *opt,
    double timeout, const struct halt *halt, struct buf *out, char **cause)
{
	const char	*argv[6], *what;
	struct buf	 err = { NULL, 0, 0 };
	struct pollfd	 pfd[2];
	char		 chunk[512], *nl;
	double		 deadline = mono_now() + timeout;
	pid_t		 pid;
	ssize_t		 n;
	int		 opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
	int		 i, status, open_fds = 2, ret = -1;

	what = unit != NULL ? unit : "manager";
	argv[0] = "systemctl";
	argv[1] = "--no-ask-password";
	argv[2] = verb;
	argv[3] = opt != NULL ? opt : unit;
	argv[4] = opt != NULL ? unit : NULL;
	argv[5] = NULL;
	if (pipe2(opipe, O_CLOEXEC) == -1 || pipe2(epipe, O_CLOEXEC) == -1) {
		set_cause(cause, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) == -1) {
		set_cause(cause, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		setpgid(0, 0);
		child_stdio(opipe[1], epipe[1]);
		execvpe(argv[0], (char *const *)argv, app->envp);
		_exit(127);
	}
	setpgid(pid, pid);
	close(opipe[1]);
	close(epipe[1]);
	opipe[1] = epipe[1] = -1;
	pfd[0].fd = opipe[0];
	pfd[1].fd = epipe[0];
	while (open_fds > 0) {
		if (halt_stopped(halt) || mono_now() >= deadline) {
			kill_and_reap(pid);
			if (halt_stopped(halt))
				set_cause(cause, "systemctl %s %s: stopped while waiting for the job",
				    verb, what);
			else
				set_cause(cause, "systemctl %s %s: job did not finish within %.0f s",
				    verb, what, timeout);
			goto out;
		}
		if (app->tick != NULL)
			app->tick(app->tick_arg);
		for (i = 0; i < 2; i++)
			pfd[i].events = pfd[i].fd != -1 ? POLLIN : 0;
		if (poll(pfd, 2, 100) == -1 && errno != EINTR) {
			set_cause(cause, "poll: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if ((n = read(pfd[i].fd, chunk, sizeof chunk)) > 0) {
				if (i == 0 && out != NULL && out->len < 65536)
					buf_add(out, chunk, (size_t)n);
				else if (i == 1 && err.len < 4096)
					buf_add(&err, chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				if (i == 0)
					opipe[0] = -1;
				else
					epipe[0] = -1;
				open_fds--;
			}
		}
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			set_cause(cause, "waitpid: %s", strerror(errno));
			goto out;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ret = 0;
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && err.len == 0) {
		set_cause(cause, "systemctl could not be executed (not in PATH?)");
		goto out;
	}
	if (err.data != NULL && (nl = strchr(err.data, '\n')) != NULL)
		*nl = '\0';
	set_cause(cause, "systemctl %s %s failed: %s (see journalctl -u %s)", verb, what,
	    err.len > 0 ? err.data : "no message", what);
out:
	for (i = 0; i < 2; i++) {
		if (opipe[i] != -1)
			close(opipe[i]);
		if (epipe[i] != -1)
			close(epipe[i]);
	}
	buf_free(&err);
	return ret;
}

int
app_systemctl_show(const char *unit, const char *props, struct buf *out, char **cause)
{
	struct app	 app;
	char		*opt;
	int		 ret;

	memset(&app, 0, sizeof app);
	app.envp = environ;
	opt = xasprintf("--property=%s", props);
	ret = systemctl(&app, "show", unit, opt, APP_SHOW_TIMEOUT, NULL, out, cause);
	free(opt);
	return ret;
}

int
app_start(struct app *app, double timeout, char **cause)
{
	if (app->unit != NULL)
		return systemctl(app, "restart", app->unit, NULL, timeout, app->halt, NULL, cause);
	app->exited = 0;
	app->adopted = 0;
	app->group_gone = 0;
	if ((app->pid = spawn(app, app->argv, cause)) == -1)
		return -1;
	return 0;
}

/* A unit's ActiveState ("active", "failed", ...), allocated; `show` works on every systemd. */
static int
unit_state(struct app *app, char **state, double timeout, char **cause)
{
	struct buf	 out = { NULL, 0, 0 };
	char		*p, *nl;
	int		 ret = -1;

	*state = NULL;
	if (systemctl(app, "show", app->unit, "--property=ActiveState", timeout, app->halt, &out,
	    cause) != 0)
		goto out;
	p = out.data != NULL ? strstr(out.data, "ActiveState=") : NULL;
	if (p == NULL) {
		set_cause(cause, "unit %s: systemctl show printed no ActiveState", app->unit);
		goto out;
	}
	p += strlen("ActiveState=");
	if ((nl = strchr(p, '\n')) != NULL)
		*nl = '\0';
	*state = xstrdup(p);
	ret = 0;
out:
	buf_free(&out);
	return ret;
}

/* Whether process group pgid has a live member: a zombie left to an init that does not reap is none. */
static int
group_alive(pid_t pgid)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[300], text[512], *p, st;
	long		 ppid, pgrp;
	ssize_t		 n;
	int		 fd, alive = 0;

	if (kill(-pgid, 0) == -1 && errno == ESRCH)
		return 0;
	if ((d = opendir("/proc")) == NULL)
		return 1;
	while (!alive && (e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		n = read(fd, text, sizeof text - 1);
		close(fd);
		if (n <= 0)
			continue;
		text[n] = '\0';
		/* The command name may hold spaces and parentheses: fields count from the last ')'. */
		if ((p = strrchr(text, ')')) != NULL &&
		    sscanf(p + 1, " %c %ld %ld", &st, &ppid, &pgrp) == 3)
			alive = pgrp == (long)pgid && st != 'Z' && st != 'X';
	}
	closedir(d);
	return alive;
}

/* The leader is gone: is its group? Once empty, its id may be another's group's. */
static void
note_group(struct app *app)
{
	if (!app->group_gone && !group_alive(app->pid))
		app->group_gone = 1;
}

/* An adopted leader found gone: a pid that is another process's now means its group had emptied. */
static void
adopted_gone(struct app *app)
{
	app->exited = 1;
	app->group_gone = kill(app->pid, 0) == 0 && state_process_start((int)app->pid) != 0;
	note_group(app);
}

void
app_adopt(struct app *app, pid_t pid, unsigned long long start)
{
	app->pid = pid;
	app->adopted = 1;
	app->exited = 0;
	app->group_gone = 0;
	app->start = start;
}

/* The adopted app still runs: its pid is there and was not given to another process. */
static int
adopted_alive(const struct app *app)
{
	unsigned long long	now;

	if (kill(app->pid, 0) == -1 && errno == ESRCH)
		return 0;
	/* A start time that cannot be read (0) proves nothing: alive. */
	now = state_process_start((int)app->pid);
	return app->start == 0 || now == 0 || now == app->start;
}

int
app_check(struct app *app, double timeout, char **cause)
{
	char	*what, *state = NULL, *why = NULL;
	pid_t	 r;
	int	 ret = 0;

	if (app->unit != NULL) {
		/* systemd busy, or its bus down, says nothing of the app: the HTTP probe decides. */
		if (unit_state(app, &state, timeout > 0 ? timeout : 10, &why) != 0) {
			log_debug("app: unit %s: state not known: %s", app->unit, why);
			free(why);
			return 0;
		}
		/* "activating" and "reloading" are on their way; the probe decides. */
		if (strcmp(state, "failed") == 0 || strcmp(state, "inactive") == 0 ||
		    strcmp(state, "deactivating") == 0)
			ret = set_cause(cause, "unit %s is %s", app->unit, state);
		free(state);
		return ret;
	}
	if (app->pid <= 0)
		return set_cause(cause, "app is not running");
	if (!app->exited && app->adopted) {
		if (!adopted_alive(app)) {
			adopted_gone(app);
			return set_cause(cause, "app %s (pid %d) is gone", app->argv[0],
			    (int)app->pid);
		}
		return 0;
	}
	if (!app->exited) {
		r = waitpid(app->pid, &app->status, WNOHANG);
		if (r == app->pid)
			app->exited = 1;
	}
	if (!app->exited)
		return 0;
	note_group(app);
	what = describe_status(app->status);
	set_cause(cause, "app %s %s", app->argv[0], what);
	free(what);
	return -1;
}

/* Stop a leader that is not our child: poll until it is gone, SIGKILL its group at deadline. */
static int
stop_adopted(struct app *app, double deadline, double timeout, char **cause)
{
	kill(app->pid, SIGTERM);
	while (adopted_alive(app)) {
		if (mono_now() >= deadline) {
			kill(-app->pid, SIGKILL);
			kill(app->pid, SIGKILL);
			app->exited = 1;
			return set_cause(cause, "app did not stop within %.0f s; killed", timeout);
		}
		if (app->tick != NULL)
			app->tick(app->tick_arg);
		sleep_for(0.05, NULL);
	}
	adopted_gone(app);
	return 0;
}

/*
 * Wait until the app's process group is empty, SIGKILL what is left at
 * until: -1 then. Its members are not our children, so they are polled.
 */
static int
group_wait(struct app *app, double until)
{
	while (!app->group_gone && group_alive(app->pid)) {
		if (mono_now() >= until) {
			kill(-app->pid, SIGKILL);
			return -1;
		}
		if (app->tick != NULL)
			app->tick(app->tick_arg);
		sleep_for(0.02, NULL);
	}
	app->group_gone = 1;
	return 0;
}

int
app_stop(struct app *app, double timeout, char **cause)
{
	double	end = mono_now() + timeout;
	int	timed_out;

	/*
	 * Stopping is what a stop signal asks for: only the timeout cuts it short.
	 * But after a stop signal systemd is most likely stopping us, and the app
	 * unit (Before= the agent) stops only after we have: waiting for that job
	 * would wait out the timeout. So it is queued, and runs once we exit.
	 */
	if (app->unit != NULL)
		return systemctl(app, "stop", app->unit, app->halt != NULL &&
		    app->halt->signals > 0 ? "--no-block" : NULL, timeout + 5, NULL, NULL, cause);
	if (app->pid <= 0)
		return 0;
	if (app->adopted && !app->exited && !adopted_alive(app))
		adopted_gone(app);
	if (app->exited) {
		note_group(app);
		if (app->group_gone)
			return 0;
	}
	/* The group outlives a leader that exited or crashed: its workers hold the port. */
	kill(-app->pid, SIGTERM);
	if (!app->exited && app->adopted && stop_adopted(app, end, timeout, cause) != 0)
		return -1;
	if (!app->exited) {
		kill(app->pid, SIGTERM);
		app->status = wait_for(app, app->pid, timeout, NULL, &timed_out);
		app->exited = 1;
		if (timed_out)
			return set_cause(cause, "app did not stop within %.0f s; killed", timeout);
	}
	if (group_wait(app, end) != 0)
		return set_cause(cause, "app's process group %d did not stop within %.0f s; "
		    "killed", (int)app->pid, timeout);
	return 0;
}
