/* app.c - the application: a systemd unit started over D-Bus, or a command the agent supervises. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "app.h"
#include "util.h"

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

/* Fork and exec argv in the release dir, in a process group of its own. */
static pid_t
spawn(struct app *app, char *const argv[], char **cause)
{
	pid_t	pid;
	int	fd;

	if ((pid = fork()) == -1) {
		set_cause(cause, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		if (chdir(app->release_dir) == -1)
			_exit(126);
		if ((fd = open("/dev/null", O_RDONLY)) != -1) {
			dup2(fd, 0);
			if (fd > 2)
				close(fd);
		}
		/* curl's kept-alive sockets and the health listener are not the app's. */
		close_range(3, ~0U, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGINT, SIG_DFL);
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

/* Wait for pid until timeout; SIGKILL its group at the deadline. Returns the wait status. */
static int
wait_for(struct app *app, pid_t pid, double timeout, volatile int *stop, int *timed_out)
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
		if (mono_now() >= deadline || (stop != NULL && *stop)) {
			*timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
			return status;
		}
		if (app != NULL && app->tick != NULL)
			app->tick(app->tick_arg);
		sleep_for(0.02, NULL);
	}
}

int
app_pre_start(struct app *app, const char *prog, double timeout, volatile int *stop,
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
	status = wait_for(app, pid, timeout, stop, &timed_out);
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

struct job_wait {
	const char	*job;
	char		*result;
};

static int
on_job_removed(sd_bus_message *m, void *arg, sd_bus_error *err)
{
	struct job_wait	*w = arg;
	const char	*path, *unit, *result;
	uint32_t	 id;

	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	if (w->job != NULL && strcmp(path, w->job) == 0 && w->result == NULL)
		w->result = xstrdup(result);
	return 0;
}

/* StartUnit/StopUnit, then wait for the job's JobRemoved signal and its result. */
static int
unit_job(struct app *app, const char *method, const char *unit, double timeout, char **cause)
{
	sd_bus			*bus = NULL;
	sd_bus_slot		*slot = NULL;
	sd_bus_message		*reply = NULL;
	sd_bus_error		 err = SD_BUS_ERROR_NULL;
	struct job_wait		 w = { NULL, NULL };
	const char		*job;
	double			 deadline = mono_now() + timeout;
	int			 r, ret = -1;

	if ((r = sd_bus_open_system(&bus)) < 0) {
		set_cause(cause, "cannot reach systemd over D-Bus: %s", strerror(-r));
		goto out;
	}
	if ((r = sd_bus_match_signal(bus, &slot, "org.freedesktop.systemd1",
	    "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
	    on_job_removed, &w)) < 0) {
		set_cause(cause, "D-Bus match: %s", strerror(-r));
		goto out;
	}
	if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "Subscribe", &err, NULL, "") < 0)
		sd_bus_error_free(&err);	/* already subscribed is fine */
	if ((r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", method, &err, &reply, "ss", unit,
	    "replace")) < 0) {
		set_cause(cause, "%s %s: %s", method, unit, err.message != NULL ? err.message :
		    strerror(-r));
		goto out;
	}
	if ((r = sd_bus_message_read(reply, "o", &job)) < 0) {
		set_cause(cause, "%s %s: bad reply", method, unit);
		goto out;
	}
	w.job = job;
	while (w.result == NULL) {
		if (app->stop != NULL && *app->stop) {
			set_cause(cause, "%s %s: stopped while waiting for the job", method, unit);
			goto out;
		}
		if (app->tick != NULL)
			app->tick(app->tick_arg);
		if (mono_now() >= deadline) {
			set_cause(cause, "%s %s: job did not finish within %.0f s", method, unit,
			    timeout);
			goto out;
		}
		if ((r = sd_bus_process(bus, NULL)) < 0) {
			set_cause(cause, "D-Bus: %s", strerror(-r));
			goto out;
		}
		if (r > 0)
			continue;
		sd_bus_wait(bus, 100000);
	}
	if (strcmp(w.result, "done") != 0) {
		set_cause(cause, "%s %s: job result '%s' (see journalctl -u %s)", method, unit,
		    w.result, unit);
		goto out;
	}
	ret = 0;
out:
	free(w.result);
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
	sd_bus_slot_unref(slot);
	sd_bus_flush_close_unref(bus);
	return ret;
}

int
app_start(struct app *app, double timeout, char **cause)
{
	if (app->unit != NULL)
		return unit_job(app, "RestartUnit", app->unit, timeout, cause);
	app->exited = 0;
	if ((app->pid = spawn(app, app->argv, cause)) == -1)
		return -1;
	return 0;
}

/* A unit's ActiveState ("active", "failed", ...) over D-Bus, allocated. */
static int
unit_state(const char *unit, char **state, char **cause)
{
	sd_bus		*bus = NULL;
	sd_bus_message	*reply = NULL;
	sd_bus_error	 err = SD_BUS_ERROR_NULL;
	const char	*path;
	int		 r, ret = -1;

	*state = NULL;
	if ((r = sd_bus_open_system(&bus)) < 0) {
		set_cause(cause, "cannot reach systemd over D-Bus: %s", strerror(-r));
		goto out;
	}
	if ((r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "GetUnit", &err, &reply, "s", unit)) < 0 ||
	    (r = sd_bus_message_read(reply, "o", &path)) < 0) {
		set_cause(cause, "unit %s: %s", unit, err.message != NULL ? err.message :
		    strerror(-r));
		goto out;
	}
	if ((r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path,
	    "org.freedesktop.systemd1.Unit", "ActiveState", &err, state)) < 0) {
		set_cause(cause, "unit %s: %s", unit, err.message != NULL ? err.message :
		    strerror(-r));
		goto out;
	}
	ret = 0;
out:
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(bus);
	return ret;
}

void
app_adopt(struct app *app, pid_t pid)
{
	app->pid = pid;
	app->adopted = 1;
	app->exited = 0;
}

int
app_check(struct app *app, char **cause)
{
	char	*what, *state = NULL;
	pid_t	 r;
	int	 ret = 0;

	if (app->unit != NULL) {
		if (unit_state(app->unit, &state, cause) != 0)
			return -1;
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
		if (kill(app->pid, 0) == -1 && errno == ESRCH) {
			app->exited = 1;
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
	what = describe_status(app->status);
	set_cause(cause, "app %s %s", app->argv[0], what);
	free(what);
	return -1;
}

/* Stop a process that is not our child: signal the group, poll until it is gone. */
static int
stop_adopted(struct app *app, double timeout, char **cause)
{
	double	deadline = mono_now() + timeout;

	kill(-app->pid, SIGTERM);
	kill(app->pid, SIGTERM);
	while (kill(app->pid, 0) == 0) {
		if (mono_now() >= deadline) {
			kill(-app->pid, SIGKILL);
			kill(app->pid, SIGKILL);
			app->exited = 1;
			return set_cause(cause, "app did not stop within %.0f s; killed", timeout);
		}
		sleep_for(0.05, NULL);
	}
	app->exited = 1;
	return 0;
}

int
app_stop(struct app *app, double timeout, char **cause)
{
	int	timed_out;

	if (app->unit != NULL)
		return unit_job(app, "StopUnit", app->unit, timeout + 5, cause);
	if (app->pid <= 0 || app->exited)
		return 0;
	if (app->adopted)
		return stop_adopted(app, timeout, cause);
	kill(-app->pid, SIGTERM);
	kill(app->pid, SIGTERM);
	app->status = wait_for(app, app->pid, timeout, NULL, &timed_out);
	app->exited = 1;
	if (timed_out)
		return set_cause(cause, "app did not stop within %.0f s; killed", timeout);
	return 0;
}
