/* state.c - what the agent is doing, kept in state_dir/state.json for `asg-agent status`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "state.h"
#include "util.h"

#define STATE_KERNEL_SLACK	1.0	/* seconds two readings of one kernel's boot time may differ */

static const char *const phase_names[PHASE_COUNT] = {
	[PHASE_STARTING_AGENT] = "starting-agent",
	[PHASE_WAITING_FOR_IMDS] = "waiting-for-imds",
	[PHASE_WAITING_FOR_TAG] = "waiting-for-tag",
	[PHASE_FETCHING] = "fetching",
	[PHASE_INSTALLING] = "installing",
	[PHASE_STARTING] = "starting",
	[PHASE_WAITING_FOR_HEALTH] = "waiting-for-health",
	[PHASE_SERVING] = "serving",
	[PHASE_WARMED] = "warmed",
	[PHASE_DRAINING] = "draining",
	[PHASE_STOPPED] = "stopped",
	[PHASE_FAILED] = "failed",
};

static const struct {
	const char	*key;
	const char	*label;
} mark_names[MARK_COUNT] = {
	[MARK_LAUNCH] = { "instance_launch", "instance launched" },
	[MARK_KERNEL] = { "kernel_start", "kernel started" },
	[MARK_USERSPACE] = { "userspace_start", "systemd userspace started" },
	[MARK_UNIT] = { "unit_start", "agent unit started" },
	[MARK_AGENT] = { "agent_start", "agent started" },
	[MARK_SERVING] = { "serving", "serving (endpoint answers 200)" },
	[MARK_CONTINUE] = { "continue_sent", "CONTINUE sent" },
	[MARK_LB_FIRST] = { "lb_first_check", "first load-balancer check" },
	[MARK_LB_HEALTHY] = { "lb_healthy", "load balancer healthy (as seen from here)" },
};

/* The string fields, in the order status prints them; one table for save and load. */
#define S(f) offsetof(struct state, f)
static const struct {
	const char	*key;
	size_t		 offset;
} fields[] = {
	{ "version", S(version) },
	{ "version_source", S(version_source) },
	{ "instance_id", S(instance_id) },
	{ "group", S(group) },
	{ "region", S(region) },
	{ "artifact", S(artifact) },
	{ "sha256", S(sha256) },
	{ "verification", S(verification) },
	{ "release_dir", S(release_dir) },
	{ "app", S(app) },
	{ "health", S(health) },
	{ "lifecycle", S(lifecycle) },
	{ "error", S(error) },
	{ "target_state", S(target_state) },
	{ "scale_out", S(scale_out) },
	{ "boot_id", S(boot_id) },
};
#undef S

const char *
state_phase_name(int p)
{
	if (p < 0 || p >= PHASE_COUNT)
		return "unknown";
	return phase_names[p];
}

const char *
state_mark_key(int m)
{
	return m >= 0 && m < MARK_COUNT ? mark_names[m].key : "unknown";
}

const char *
state_mark_label(int m)
{
	return m >= 0 && m < MARK_COUNT ? mark_names[m].label : "unknown";
}

int
state_phase_parse(const char *s)
{
	int	i;

	for (i = 0; i < PHASE_COUNT; i++) {
		if (strcmp(phase_names[i], s) == 0)
			return i;
	}
	return -1;
}

unsigned long long
state_process_start(int pid)
{
	char			*path, *p;
	char			 text[1024];
	unsigned long long	 start = 0;
	ssize_t			 n;
	int			 dfd, fd, field;

	/*
	 * Relative to /proc: an emulator that fakes the paths of /proc/self
	 * (qemu-user) must not make our own record differ from what `status`,
	 * another process, reads for the same pid.
	 */
	if ((dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return 0;
	path = xasprintf("%d/stat", pid);
	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	free(path);
	close(dfd);
	if (fd == -1)
		return 0;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	if ((p = strrchr(text, ')')) == NULL)
		return 0;
	for (field = 2; *p != '\0' && field < 22; p++) {
		if (*p == ' ')
			field++;
	}
	if (field == 22)
		start = strtoull(p, NULL, 10);
	return start;
}

char *
state_boot_id(void)
{
	char	 id[64];
	ssize_t	 n;
	int	 fd;

	if ((fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)) == -1)
		return xstrdup("");
	n = read(fd, id, sizeof id - 1);
	close(fd);
	if (n <= 0)
		return xstrdup("");
	id[n] = '\0';
	id[strcspn(id, "\n")] = '\0';
	return xstrdup(id);
}

double
state_kernel_boot(void)
{
	struct timespec	ts;
	double		wall = wall_now();

	if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		return 0;
	return wall - ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

int
state_same_boot(const char *id_then, double kernel_then, const char *id_now,
    double kernel_now)
{
	if (id_then != NULL && id_now != NULL && *id_now != '\0' && strcmp(id_then, id_now) == 0)
		return 1;
	/*
	 * systemd-nspawn mounts a boot id of its own over the kernel's, which a
	 * unit with ProtectProc= (a fresh /proc) does not see. One kernel boot
	 * still makes a pid and its start time unique; another boot starts
	 * seconds apart at least.
	 */
	return kernel_then > 0 && kernel_now > 0 &&
	    kernel_then - kernel_now < STATE_KERNEL_SLACK &&
	    kernel_now - kernel_then < STATE_KERNEL_SLACK;
}

int
state_process_alive(const struct state *st, int pid, unsigned long long start)
{
	char	*id;
	int	 same_boot;

	if (pid <= 0 || start == 0 || st->boot_id == NULL)
		return 0;
	id = state_boot_id();
	same_boot = state_same_boot(st->boot_id, st->marks[MARK_KERNEL], id,
	    state_kernel_boot());
	free(id);
	return same_boot && state_process_start(pid) == start;
}

void
state_init(struct state *st)
{
	memset(st, 0, sizeof *st);
	st->phase = PHASE_STARTING_AGENT;
	st->pid = (int)getpid();
	st->pid_start = state_process_start(st->pid);
	st->boot_id = state_boot_id();
	st->boot_start = wall_now();
	st->marks[MARK_AGENT] = st->boot_start;
	st->marks[MARK_KERNEL] = state_kernel_boot();
}

void
state_free(struct state *st)
{
	size_t	i;
	int	j;

	if (st == NULL)
		return;
	for (i = 0; i < nitems(fields); i++)
		free(*(char **)((char *)st + fields[i].offset));
	for (j = 0; j < st->nsteps; j++) {
		free(st->steps[j].name);
		free(st->steps[j].detail);
	}
	for (j = 0; j < st->ncounters; j++)
		free(st->counters[j].action);
	for (j = 0; j < st->npace; j++)
		free(st->pace[j].service);
	memset(st, 0, sizeof *st);
}

void
state_set(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? xstrdup(value) : NULL;
}

void
state_setf(char **field, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	free(*field);
	*field = s;
}

void
state_step_end(struct state *st)
{
	struct state_step	*s;

	if (st->nsteps == 0)
		return;
	s = &st->steps[st->nsteps - 1];
	if (s->seconds < 0)
		s->seconds = wall_now() - s->start;
}

void
state_step_begin(struct state *st, const char *name)
{
	struct state_step	*s;

	state_step_end(st);
	if (st->nsteps == STATE_MAX_STEPS)
		return;
	s = &st->steps[st->nsteps++];
	s->name = xstrdup(name);
	s->start = wall_now();
	s->seconds = -1;
	s->polls = 0;
	s->detail = NULL;
}

void
state_step_poll(struct state *st)
{
	if (st->nsteps > 0)
		st->steps[st->nsteps - 1].polls++;
}

void
state_step_detail(struct state *st, const char *fmt, ...)
{
	struct state_step	*s;
	va_list			 ap;

	if (st->nsteps == 0)
		return;
	s = &st->steps[st->nsteps - 1];
	free(s->detail);
	va_start(ap, fmt);
	s->detail = xvasprintf(fmt, ap);
	va_end(ap);
}

char *
state_to_json(const struct state *st, int pretty)
{
	struct json_object	*o, *tl, *step, *ctrs, *c;
	const char		*v;
	char			*out;
	size_t			 i;
	int			 j;

	o = json_object_new_object();
	json_object_object_add(o, "phase", json_object_new_string(state_phase_name(st->phase)));
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "pid_start", json_object_new_int64((int64_t)st->pid_start));
	json_object_object_add(o, "boot_start", json_object_new_double(st->boot_start));
	json_object_object_add(o, "updated", json_object_new_double(st->updated));
	json_object_object_add(o, "downloaded", json_object_new_boolean(st->downloaded));
	json_object_object_add(o, "app_pid", json_object_new_int(st->app_pid));
	json_object_object_add(o, "app_pid_start", json_object_new_int64((int64_t)st->app_pid_start));
	json_object_object_add(o, "drain_until", json_object_new_double(st->drain_until));
	c = json_object_new_object();
	json_object_object_add(c, "probes", json_object_new_int64((int64_t)st->probes));
	json_object_object_add(c, "failures", json_object_new_int64((int64_t)st->probe_failures));
	json_object_object_add(c, "failing", json_object_new_int64((int64_t)st->failing));
	json_object_object_add(c, "last_ok", json_object_new_double(st->last_probe_ok));
	json_object_object_add(o, "app_health", c);
	for (i = 0; i < nitems(fields); i++) {
		v = *(char **)((char *)st + fields[i].offset);
		json_object_object_add(o, fields[i].key,
		    v != NULL ? json_object_new_string(v) : NULL);
	}
	tl = json_object_new_array();
	for (j = 0; j < st->nsteps; j++) {
		step = json_object_new_object();
		json_object_object_add(step, "step", json_object_new_string(st->steps[j].name));
		json_object_object_add(step, "start", json_object_new_double(st->steps[j].start));
		json_object_object_add(step, "seconds", st->steps[j].seconds < 0 ? NULL :
		    json_object_new_double(st->steps[j].seconds));
		json_object_object_add(step, "polls", json_object_new_int(st->steps[j].polls));
		if (st->steps[j].detail != NULL)
			json_object_object_add(step, "detail",
			    json_object_new_string(st->steps[j].detail));
		json_object_array_add(tl, step);
	}
	json_object_object_add(o, "timeline", tl);
	ctrs = json_object_new_object();
	for (j = 0; j < st->ncounters; j++) {
		c = json_object_new_object();
		json_object_object_add(c, "calls",
		    json_object_new_int64((int64_t)st->counters[j].calls));
		json_object_object_add(c, "throttled",
		    json_object_new_int64((int64_t)st->counters[j].throttled));
		json_object_object_add(ctrs, st->counters[j].action, c);
	}
	json_object_object_add(o, "api_calls", ctrs);
	ctrs = json_object_new_object();
	for (j = 0; j < st->npace; j++) {
		c = json_object_new_object();
		json_object_object_add(c, "rate", json_object_new_double(st->pace[j].rate));
		json_object_object_add(c, "held", json_object_new_double(st->pace[j].held));
		json_object_object_add(c, "throttles",
		    json_object_new_int64((int64_t)st->pace[j].throttles));
		json_object_object_add(ctrs, st->pace[j].service, c);
	}
	json_object_object_add(o, "api_pacing", ctrs);
	c = json_object_new_object();
	for (j = 0; j < MARK_COUNT; j++)
		json_object_object_add(c, state_mark_key(j), st->marks[j] > 0 ?
		    json_object_new_double(st->marks[j]) : NULL);
	json_object_object_add(o, "milestones", c);
	c = json_object_new_object();
	json_object_object_add(c, "checks", json_object_new_int64((int64_t)st->lb_checks));
	json_object_object_add(c, "interval", json_object_new_double(st->lb_interval));
	json_object_object_add(c, "healthy_threshold", json_object_new_int(st->lb_threshold));
	json_object_object_add(o, "load_balancer", c);
	json_object_object_add(o, "imds_clock_offset", st->imds_clock_known ?
	    json_object_new_double(st->imds_clock) : NULL);
	out = xstrdup(json_object_to_json_string_ext(o, (pretty ? JSON_C_TO_STRING_PRETTY :
	    JSON_C_TO_STRING_PLAIN) | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static double
get_num(struct json_object *o, const char *key, double def)
{
	struct json_object	*v;

	double			 d;

	if (!json_object_object_get_ex(o, key, &v))
		return def;
	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		return def;
	/* json-c reads NaN and Infinity; a time past 2^53 s is no time either. */
	d = json_object_get_double(v);
	return isfinite(d) && fabs(d) <= 0x1p53 ? d : def;
}

/*
 * A count or pid read as a number in [0, max], else 0: the file may say
 * anything (-1, 1e300, NaN), and converting a double out of range of the
 * integer type is undefined behaviour.
 */
static double
get_count(struct json_object *o, const char *key, double max)
{
	double	v = get_num(o, key, 0);

	return v >= 0 && v <= max ? v : 0;
}

int
state_from_json(struct state *st, const char *text, char **cause)
{
	struct json_object	*o, *tl, *step, *ctrs;
	const char		*v;
	size_t			 i, n;
	int			 ret = -1;

	memset(st, 0, sizeof *st);
	if ((o = json_tokener_parse(text)) == NULL || !json_object_is_type(o, json_type_object)) {
		set_cause(cause, "state is not a JSON object");
		goto out;
	}
	if ((v = get_str(o, "phase")) == NULL || (st->phase = state_phase_parse(v)) == -1) {
		set_cause(cause, "state has no valid phase");
		goto out;
	}
	st->pid = (int)get_count(o, "pid", INT_MAX);
	st->pid_start = (unsigned long long)get_count(o, "pid_start", 0x1p53);
	st->boot_start = get_num(o, "boot_start", 0);
	st->updated = get_num(o, "updated", 0);
	st->app_pid = (int)get_count(o, "app_pid", INT_MAX);
	st->app_pid_start = (unsigned long long)get_count(o, "app_pid_start", 0x1p53);
	st->drain_until = get_num(o, "drain_until", 0);
	if (json_object_object_get_ex(o, "app_health", &ctrs) &&
	    json_object_is_type(ctrs, json_type_object)) {
		st->probes = (unsigned long)get_count(ctrs, "probes", 0x1p53);
		st->probe_failures = (unsigned long)get_count(ctrs, "failures", 0x1p53);
		st->failing = (unsigned long)get_count(ctrs, "failing", 0x1p53);
		st->last_probe_ok = get_num(ctrs, "last_ok", 0);
	}
	{
		struct json_object	*b;

		st->downloaded = json_object_object_get_ex(o, "downloaded", &b) &&
		    json_object_get_boolean(b);
	}
	for (i = 0; i < nitems(fields); i++) {
		if ((v = get_str(o, fields[i].key)) != NULL)
			*(char **)((char *)st + fields[i].offset) = xstrdup(v);
	}
	if (json_object_object_get_ex(o, "timeline", &tl) &&
	    json_object_is_type(tl, json_type_array)) {
		n = json_object_array_length(tl);
		for (i = 0; i < n && st->nsteps < STATE_MAX_STEPS; i++) {
			step = json_object_array_get_idx(tl, i);
			if ((v = get_str(step, "step")) == NULL)
				continue;
			st->steps[st->nsteps].name = xstrdup(v);
			st->steps[st->nsteps].start = get_num(step, "start", 0);
			st->steps[st->nsteps].seconds = get_num(step, "seconds", -1);
			st->steps[st->nsteps].polls = (int)get_count(step, "polls", INT_MAX);
			if ((v = get_str(step, "detail")) != NULL)
				st->steps[st->nsteps].detail = xstrdup(v);
			st->nsteps++;
		}
	}
	if (json_object_object_get_ex(o, "milestones", &ctrs) &&
	    json_object_is_type(ctrs, json_type_object)) {
		for (i = 0; i < MARK_COUNT; i++)
			st->marks[i] = get_count(ctrs, state_mark_key((int)i), 0x1p53);
	}
	if (json_object_object_get_ex(o, "load_balancer", &ctrs) &&
	    json_object_is_type(ctrs, json_type_object)) {
		st->lb_checks = (unsigned long)get_count(ctrs, "checks", 0x1p53);
		st->lb_interval = get_count(ctrs, "interval", 0x1p53);
		st->lb_threshold = (int)get_count(ctrs, "healthy_threshold", INT_MAX);
	}
	if (json_object_object_get_ex(o, "imds_clock_offset", &ctrs) &&
	    (json_object_is_type(ctrs, json_type_double) ||
	    json_object_is_type(ctrs, json_type_int))) {
		st->imds_clock = json_object_get_double(ctrs);
		st->imds_clock_known = st->imds_clock > -1e9 && st->imds_clock < 1e9;
	}
	if (json_object_object_get_ex(o, "api_calls", &ctrs) &&
	    json_object_is_type(ctrs, json_type_object)) {
		json_object_object_foreach(ctrs, key, val) {
			if (st->ncounters == STATE_MAX_COUNTERS)
				break;
			st->counters[st->ncounters].action = xstrdup(key);
			st->counters[st->ncounters].calls = (unsigned long)get_count(val, "calls", 0x1p53);
			st->counters[st->ncounters].throttled =
			    (unsigned long)get_count(val, "throttled", 0x1p53);
			st->ncounters++;
		}
	}
	if (json_object_object_get_ex(o, "api_pacing", &ctrs) &&
	    json_object_is_type(ctrs, json_type_object)) {
		json_object_object_foreach(ctrs, pkey, pval) {
			if (st->npace == STATE_MAX_PACE)
				break;
			st->pace[st->npace].service = xstrdup(pkey);
			st->pace[st->npace].rate = get_count(pval, "rate", 1e9);
			st->pace[st->npace].held = get_count(pval, "held", 0x1p53);
			st->pace[st->npace].throttles =
			    (unsigned long)get_count(pval, "throttles", 0x1p53);
			st->npace++;
		}
	}
	ret = 0;
out:
	json_object_put(o);
	if (ret != 0)
		state_free(st);
	return ret;
}

int
state_save(const struct state *st, const char *path, char **cause)
{
	char	*json, *text;
	int	 ret;

	json = state_to_json(st, 1);
	text = xasprintf("%s\n", json);
	ret = file_replace(path, text, strlen(text), 0600, cause);
	free(text);
	free(json);
	return ret;
}

int
state_load(struct state *st, const char *path, char **cause)
{
	struct buf	 b = { NULL, 0, 0 };
	char		 chunk[8192], *why = NULL;
	ssize_t		 n;
	int		 fd, ret = -1;

	memset(st, 0, sizeof *st);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		n = errno;
		set_cause(cause, "%s: %s", path, strerror((int)n));
		return n == ENOENT ? -2 : -1;
	}
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			set_cause(cause, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (b.len + (size_t)n > (4 << 20)) {
			set_cause(cause, "%s: too large", path);
			goto out;
		}
		buf_add(&b, chunk, (size_t)n);
	}
	if (state_from_json(st, b.data != NULL ? b.data : "", &why) != 0) {
		set_cause(cause, "%s: %s", path, why);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		state_free(st);
	close(fd);
	buf_free(&b);
	free(why);
	return ret;
}
