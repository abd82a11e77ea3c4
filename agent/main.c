/* main.c - asg-agent's command line: one table of subcommands, help generated from it. */
#include <sys/prctl.h>
#include <sys/stat.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <expat.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include "agent.h"
#include "artifact.h"
#include "aws.h"
#include "boot.h"
#include "client.h"
#include "config.h"
#include "creds.h"
#include "http.h"
#include "imds.h"
#include "log.h"
#include "publish.h"
#include "rollout.h"
#include "rollrec.h"
#include "serve.h"
#include "state.h"
#include "status.h"
#include "util.h"

struct globals {
	const char	*config_path;
	int		 config_given;
	int		 verbose;
};

struct cmd {
	const char	*name;
	int		(*fn)(struct globals *, int, char **);
	const char	*usage;
	const char	*summary;
	int		 hidden;	/* for the build, not users: not listed by help */
};

static int	cmd_help(struct globals *, int, char **);
static int	cmd_version(struct globals *, int, char **);
static int	cmd_check_config(struct globals *, int, char **);
static int	cmd_aws(struct globals *, int, char **);
static int	cmd_run(struct globals *, int, char **);
static int	cmd_status(struct globals *, int, char **);
static int	cmd_fetch(struct globals *, int, char **);
static int	cmd_prefetch(struct globals *, int, char **);
static int	cmd_rollout(struct globals *, int, char **);
static int	cmd_publish(struct globals *, int, char **);
static int	cmd_config_reference(struct globals *, int, char **);

static const struct cmd cmds[] = {
	{ .name = "help",
	  .fn = cmd_help,
	  .usage = "[COMMAND]",
	  .summary = "show commands, or one command's usage"
	},
	{ .name = "version",
	  .fn = cmd_version,
	  .usage = "",
	  .summary = "print the version, the libraries' versions (and Debian sources) and the CA bundle"
	},
	{ .name = "check-config",
	  .fn = cmd_check_config,
	  .usage = "[-c FILE]",
	  .summary = "check the configuration; print every problem as FILE:LINE: message"
	},
	{ .name = "run",
	  .fn = cmd_run,
	  .usage = "",
	  .summary = "boot: version tag, verified release, app healthy, lifecycle hook completed"
	},
	{ .name = "status",
	  .fn = cmd_status,
	  .usage = "[--json] [--wait [--timeout S]]",
	  .summary = "phase, version, boot timeline (exit 0 serving, 1 failed, 2 booting, "
		     "3 stopped, 4 warmed)"
	},
	{ .name = "fetch",
	  .fn = cmd_fetch,
	  .usage = "URL [--sha256 HEX|manifest:HEX] [--signature URL --public-key PEM] [--allow-unverified] "
		   "(-o FILE | -x DIR)",
	  .summary = "download and verify an artifact (and unpack it with -x)"
	},
	{ .name = "prefetch",
	  .fn = cmd_prefetch,
	  .usage = "(--version V [--sha256 HEX|manifest:HEX] | --group NAME)",
	  .summary = "bake time: fetch, verify and install a release without starting anything"
	},
	{ .name = "rollout",
	  .fn = cmd_rollout,
	  .usage = "start --live GROUP --idle GROUP --version V [--sha256 HEX] [--steps LIST] "
		   "[--bake S] [--alarm NAME]... [--auto] | step [--step K | --auto] | status | "
		   "finish [--force] | rollback | history  [--live G --idle G] [--timeout S] "
		   "[--json]",
	  .summary = "the blue/green switch between two groups, in guarded steps (for CI)"
	},
	{ .name = "publish",
	  .fn = cmd_publish,
	  .usage = "FILE --version V --to URL_TEMPLATE [--sign KEY.pem] [--tag-group GROUP]...",
	  .summary = "upload an artifact, its chunk manifest and signatures to S3; print or "
		     "set the tags (for CI)"
	},
	{ .name = "aws",
	  .fn = cmd_aws,
	  .usage = "SERVICE ACTION [Name=Value ...]",
	  .summary = "one signed AWS Query API call (SERVICE: ec2, autoscaling, elbv2, elb, cloudwatch, sts)"
	},
	{ .name = "config-reference",
	  .fn = cmd_config_reference,
	  .usage = "--format example|man|man-reload",
	  .summary = "print agent.conf.example, or the option reference of asg-agent.conf(5)",
	  .hidden = 1
	},
};

static const struct cmd *
cmd_find(const char *name)
{
	size_t	i;

	for (i = 0; i < nitems(cmds); i++) {
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	}
	return NULL;
}

static void
usage(FILE *f)
{
	size_t	i;

	fprintf(f, "usage: asg-agent [-c FILE] [-v] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < nitems(cmds); i++) {
		if (!cmds[i].hidden)
			fprintf(f, "  %-14s %s\n", cmds[i].name, cmds[i].summary);
	}
	fprintf(f, "\n  -c FILE   configuration file (default %s)\n"
	    "  -v        verbose: log at debug level\n"
	    "\n'asg-agent COMMAND --help' shows a command's usage.\n", CONFIG_DEFAULT_PATH);
}

static void
cmd_usage(const struct cmd *c, FILE *f)
{
	fprintf(f, "usage: asg-agent %s%s%s\n%s\n", c->name, *c->usage ? " " : "",
	    c->usage, c->summary);
}

static int
cmd_help(struct globals *g, int argc, char **argv)
{
	const struct cmd	*c;

	if (argc > 1) {
		if ((c = cmd_find(argv[1])) == NULL) {
			fprintf(stderr, "asg-agent: no command '%s'\n", argv[1]);
			return 1;
		}
		cmd_usage(c, stdout);
		return 0;
	}
	usage(stdout);
	return 0;
}

static int
cmd_version(struct globals *g, int argc, char **argv)
{
	char	*cause = NULL;

	printf("asg-agent %s\n", PACKAGE_VERSION);
	printf("  curl     %s\n", http_library_version());
	printf("  openssl  %s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("  expat    %s\n", XML_ExpatVersion());
	printf("  json-c   %s\n", json_c_version());
	printf("  zlib     %s\n", zlibVersion());
	printf("  libarchive %s\n", archive_version_details());
	printf("  inih     (r55+, no runtime version)\n");
#ifdef ASG_BUNDLED
	/* The static build says which Debian source package each library came from. */
	printf("bundled, built from Debian's source packages:\n%s", ASG_BUNDLED);
#endif
	if (http_init(&cause) != 0) {
		fprintf(stderr, "asg-agent: %s\n", cause);
		free(cause);
		return 1;
	}
	printf("CA bundle: %s\n", http_ca_bundle() != NULL ? http_ca_bundle() :
	    "none found (set SSL_CERT_FILE)");
	http_cleanup();
	return 0;
}

/* Load the configuration the way every command does; errors are printed. */
static int
load_config(struct globals *g, struct config *cfg)
{
	char	*errors = NULL;

	if (config_load(cfg, g->config_path, !g->config_given, &errors) != 0) {
		fputs(errors, stderr);
		free(errors);
		config_free(cfg);
		return -1;
	}
	if (g->verbose) {
		cfg->verbose = 1;
		cfg->log_level = LOGL_DEBUG;
	}
	log_set_level(cfg->log_level);
	return 0;
}

/* Commands that parse artifacts cap their memory: a runaway fails, no OOM killer comes. */
static void
limit_memory(const struct config *cfg)
{
	char	*cause = NULL;

	if (mem_limit(cfg->memory_limit, &cause) != 0)
		log_warn("no memory limit: %s", cause);
	free(cause);
}

/* Whether this command set up libcurl: client_close undoes only what client_open did. */
static int	http_ready;

/* A command's AWS side: libcurl, then the one client constructor; the region when need_region. */
static int
client_open(struct client *c, const struct config *cfg, int need_region, char **cause)
{
	memset(c, 0, sizeof *c);
	if (http_init(cause) != 0)
		return -1;
	http_ready = 1;
	client_init(c, cfg, NULL);
	if (need_region)
		return client_region(c, cfg, cause);
	return 0;
}

static void
client_close(struct client *c)
{
	client_free(c);
	if (http_ready)
		http_cleanup();
	http_ready = 0;
}

static int
cmd_check_config(struct globals *g, int argc, char **argv)
{
	struct config	 cfg;
	char		*cause = NULL;
	int		 ch, ret = 1;

	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			g->config_path = optarg;
			g->config_given = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "asg-agent: check-config takes no arguments\n");
		return 2;
	}
	g->config_given = 1;	/* a missing file is a problem here */
	if (load_config(g, &cfg) != 0)
		return 1;
	/* What only `run` needs is a note here: the file may serve `aws` alone. */
	if (boot_check(&cfg, 1, &cause) != 0)
		printf("note: 'asg-agent run' would refuse this configuration: %s\n", cause);
	printf("configuration OK\n");
	ret = 0;
	free(cause);
	config_free(&cfg);
	return ret;
}

static int
cmd_aws(struct globals *g, int argc, char **argv)
{
	struct config		 cfg;
	struct client		 c;
	struct aws_result	 res;
	struct aws_param	*params = NULL;
	char			*cause = NULL, *eq;
	int			 svc, i, r, ret = 1, loaded = 0;

	memset(&res, 0, sizeof res);
	memset(&c, 0, sizeof c);
	if (argc < 3) {
		cmd_usage(cmd_find("aws"), stderr);
		return 2;
	}
	if ((svc = aws_service_parse(argv[1])) == -1 || svc == AWS_S3) {
		fprintf(stderr, "asg-agent: unknown service '%s' (ec2, autoscaling, elbv2, "
		    "elb, cloudwatch, sts)\n", argv[1]);
		return 2;
	}
	params = xcalloc((size_t)argc, sizeof *params);
	for (i = 3; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i]) {
			fprintf(stderr, "asg-agent: '%s' is not Name=Value\n", argv[i]);
			ret = 2;
			goto out;
		}
		*eq = '\0';
		params[i - 3].name = argv[i];
		params[i - 3].value = eq + 1;
	}
	if (load_config(g, &cfg) != 0)
		goto out;
	loaded = 1;
	if (client_open(&c, &cfg, 1, &cause) != 0)
		goto fail;
	r = aws_call(&c.aws, svc, argv[2], params, (size_t)argc - 3, &res, &cause);
	if (r == AWS_OK) {
		fputs(res.body, stdout);
		if (*res.body != '\0' && res.body[strlen(res.body) - 1] != '\n')
			putchar('\n');
		ret = 0;
		goto out;
	}
	if (r == AWS_ERROR) {
		fprintf(stderr, "%s: %s\n", res.code, res.message);
		goto out;
	}
fail:
	fprintf(stderr, "asg-agent: %s\n", cause != NULL ? cause : "failed");
out:
	aws_result_free(&res);
	client_close(&c);
	if (loaded)
		config_free(&cfg);
	free(params);
	free(cause);
	return ret;
}

static int
cmd_run(struct globals *g, int argc, char **argv)
{
	struct agent	 a;
	struct config	 cfg;
	char		*cause = NULL;
	int		 ret, to_pool = 0, lock;

	if (argc != 1) {
		cmd_usage(cmd_find("run"), stderr);
		return 2;
	}
	if (load_config(g, &cfg) != 0)
		return 1;
	/* A second run (by hand, on a serving box) would take over state.json and status. */
	if (boot_lock_run(&cfg, &lock, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		config_free(&cfg);
		return 1;
	}
	free(cause);
	cause = NULL;
	limit_memory(&cfg);
	if (http_init(&cause) != 0) {
		log_error("%s", cause);
		free(cause);
		config_free(&cfg);
		return 1;
	}
	/* A scale-in into the warm pool ends a run; leaving the pool starts the next. */
	do {
		to_pool = 0;
		agent_init(&a, &cfg);
		switch (boot_run(&a)) {
		case BOOT_SERVE:
			ret = serve_run(&a, &to_pool);
			break;
		case BOOT_TERMINATED:
			ret = serve_leave(&a);
			break;
		case BOOT_STOPPED:
			ret = 0;
			break;
		default:
			ret = 1;
			break;
		}
		agent_free(&a);
	} while (ret == 0 && to_pool && !halt_stopped(&a.halt));
	http_cleanup();
	config_free(&cfg);
	if (lock != -1)
		close(lock);
	return ret;
}

static int
cmd_status(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	struct config	 cfg;
	struct state	 st;
	char		*path = NULL, *cause = NULL, *json, *end;
	double		 timeout = 0, deadline;
	int		 ch, as_json = 0, wait = 0, ret = 1, code, rc;

	memset(&st, 0, sizeof st);
	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			as_json = 1;
			break;
		case 'w':
			wait = 1;
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !isfinite(timeout) || timeout < 0) {
				fprintf(stderr, "asg-agent: bad --timeout '%s' (seconds)\n",
				    optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "asg-agent: status takes no argument '%s'\n", argv[optind]);
		return 2;
	}
	if (load_config(g, &cfg) != 0)
		return 1;
	path = xasprintf("%s/state.json", cfg.state_dir);
	deadline = mono_now() + (timeout > 0 ? timeout : 1e9);
	for (;;) {
		state_free(&st);
		if ((rc = state_load(&st, path, &cause)) == -1) {
			/* Corrupt or not readable (not root): no boot under way to report. */
			fprintf(stderr, "asg-agent: cannot read the state: %s\n", cause);
			ret = STATUS_FAILED;
			goto out;
		} else if (rc != 0) {
			if (!wait || mono_now() >= deadline) {
				fprintf(stderr, "asg-agent: no state yet: %s\n", cause);
				ret = STATUS_IN_PROGRESS;
				goto out;
			}
		} else {
			code = status_code(&st);
			if (!wait || code != STATUS_IN_PROGRESS || mono_now() >= deadline)
				break;
		}
		sleep_for(0.02, NULL);	/* a small file: waiters learn within 20 ms */
	}
	if (as_json) {
		json = state_to_json(&st, 1);
		printf("%s\n", json);
		free(json);
	} else
		status_print(&st, stdout, wall_now());
	ret = status_code(&st);
out:
	state_free(&st);
	free(path);
	free(cause);
	config_free(&cfg);
	return ret;
}

/* Where fetch's report goes: stderr when the artifact went to stdout (-o /dev/stdout). */
static FILE *
report_stream(const char *out_file)
{
	struct stat	o, f;

	if (out_file != NULL && fstat(STDOUT_FILENO, &o) == 0 && stat(out_file, &f) == 0 &&
	    o.st_dev == f.st_dev && o.st_ino == f.st_ino)
		return stderr;
	return stdout;
}

static int
cmd_fetch(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "sha256", required_argument, NULL, 's' },
		{ "signature", required_argument, NULL, 'S' },
		{ "public-key", required_argument, NULL, 'k' },
		{ "allow-unverified", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 }
	};
	struct config		 cfg;
	struct client		 c;
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	const char		*out_file = NULL, *out_dir = NULL;
	char			*cause = NULL, *shown;
	int			 ch, unverified = 0, ret = 1, loaded = 0;

	memset(&spec, 0, sizeof spec);
	memset(&res, 0, sizeof res);
	memset(&c, 0, sizeof c);
	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt_long(argc, argv, "o:x:", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': spec.sha256 = optarg; break;
		case 'S': spec.signature_url = optarg; break;
		case 'k': spec.public_key = optarg; break;
		case 'U': unverified = 1; break;
		case 'o': out_file = optarg; break;
		case 'x': out_dir = optarg; break;
		default: return 2;
		}
	}
	if (optind + 1 != argc || (out_file == NULL) == (out_dir == NULL) ||
	    (spec.signature_url == NULL) != (spec.public_key == NULL)) {
		cmd_usage(cmd_find("fetch"), stderr);
		return 2;
	}
	if (spec.sha256 == NULL && spec.public_key == NULL && !unverified) {
		fprintf(stderr, "asg-agent: refusing an unverified artifact: give --sha256 "
		    "and/or --signature with --public-key (or --allow-unverified)\n");
		return 2;
	}
	spec.url = argv[optind];
	if (load_config(g, &cfg) != 0)
		goto out;
	loaded = 1;
	limit_memory(&cfg);
	spec.max_size = cfg.max_size;
	spec.connections = cfg.connections;
	/* Only S3 needs a region (and credentials); an https artifact needs neither. */
	if (client_open(&c, &cfg, strncmp(spec.url, "s3://", 5) == 0, &cause) != 0)
		goto fail;
	if (out_file != NULL) {
		if (artifact_fetch_file(&c.aws, &spec, out_file, &res, &cause) != 0)
			goto fail;
	} else if (artifact_fetch(&c.aws, &spec, out_dir, &res, &cause) != 0)
		goto fail;
	shown = http_url_shown(spec.url);
	fprintf(report_stream(out_file), "%s %lld bytes sha256 %s%s%s\n", shown, res.bytes,
	    res.sha256, res.digest_ok ? " digest-ok" : "", res.signature_ok ? " signature-ok" : "");
	free(shown);
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "asg-agent: %s\n", cause != NULL ? cause : "failed");
out:
	artifact_result_free(&res);
	client_close(&c);
	if (loaded)
		config_free(&cfg);
	free(cause);
	return ret;
}

static int
cmd_prefetch(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "version", required_argument, NULL, 'V' },
		{ "sha256", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 }
	};
	struct config	 cfg;
	const char	*version = NULL, *sha256 = NULL, *group = NULL;
	char		*cause = NULL;
	int		 ch, ret = 1;

	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'V': version = optarg; break;
		case 's': sha256 = optarg; break;
		case 'g': group = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc || (version == NULL) == (group == NULL) ||
	    (sha256 != NULL && group != NULL)) {
		cmd_usage(cmd_find("prefetch"), stderr);
		return 2;
	}
	if (load_config(g, &cfg) != 0)
		return 1;
	limit_memory(&cfg);
	if (http_init(&cause) != 0 ||
	    boot_prefetch(&cfg, version, sha256, group, &cause) != 0)
		fprintf(stderr, "asg-agent: %s\n", cause != NULL ? cause : "failed");
	else
		ret = 0;
	http_cleanup();
	config_free(&cfg);
	free(cause);
	return ret;
}

static int
cmd_rollout(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "live", required_argument, NULL, 'l' },
		{ "idle", required_argument, NULL, 'i' },
		{ "version", required_argument, NULL, 'V' },
		{ "sha256", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "steps", required_argument, NULL, 'S' },
		{ "bake", required_argument, NULL, 'b' },
		{ "alarm", required_argument, NULL, 'a' },
		{ "auto", no_argument, NULL, 'A' },
		{ "force", no_argument, NULL, 'f' },
		{ "step", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct {
		const char	*name;
		int		(*fn)(struct aws *, const struct rollout_opts *, char **);
	} steps[] = {
		{ "start", rollout_start }, { "status", rollout_status },
		{ "finish", rollout_finish }, { "rollback", rollout_rollback },
		{ "step", rollout_step }, { "history", rollout_history },
	};
	struct config		 cfg;
	struct client		 c;
	struct rollout_opts	 o;
	const char		*alarms[argc > 0 ? argc : 1];
	char			*cause = NULL, *end;
	size_t			 i;
	int			 ch, ret = ROLLOUT_ERROR;

	memset(&o, 0, sizeof o);
	o.timeout = 900;
	o.poll = 2;
	o.out = stdout;
	o.alarms = alarms;
	if (argc < 2) {
		cmd_usage(cmd_find("rollout"), stderr);
		return ROLLOUT_USAGE;
	}
	for (i = 0; i < nitems(steps); i++) {
		if (strcmp(argv[1], steps[i].name) == 0)
			break;
	}
	if (i == nitems(steps)) {
		fprintf(stderr, "asg-agent: rollout: no step '%s' (start, step, status, "
		    "finish, rollback, history)\n", argv[1]);
		return ROLLOUT_USAGE;
	}
	optind = 0;	/* GNU: reinitialise; the step name is argv[1] */
	while ((ch = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': o.live = optarg; break;
		case 'i': o.idle = optarg; break;
		case 'V': o.version = optarg; break;
		case 's': o.sha256 = optarg; break;
		case 'j': o.json = 1; break;
		case 'S': o.steps = optarg; break;
		case 'a': o.alarms[o.nalarms++] = optarg; break;
		case 'A': o.autorun = 1; break;
		case 'f': o.force = 1; break;
		case 'k':
			o.step = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || o.step < 1 || o.step > 2 * ROLLREC_MAX_PCT) {
				fprintf(stderr, "asg-agent: bad --step '%s'\n", optarg);
				return ROLLOUT_USAGE;
			}
			break;
		case 'b':
			o.bake = strtod(optarg, &end);
			if (*end != '\0' || !(o.bake >= 0 && o.bake <= ROLLREC_MAX_BAKE)) {
				fprintf(stderr, "asg-agent: bad --bake '%s'\n", optarg);
				return ROLLOUT_USAGE;
			}
			break;
		case 't':
			o.timeout = strtod(optarg, &end);
			if (*end != '\0' || o.timeout <= 0) {
				fprintf(stderr, "asg-agent: bad --timeout '%s'\n", optarg);
				return ROLLOUT_USAGE;
			}
			break;
		default:
			return ROLLOUT_USAGE;
		}
	}
	if (optind != argc - 1 || (steps[i].fn == rollout_start && (o.live == NULL ||
	    o.idle == NULL || o.version == NULL)) || (o.live == NULL) != (o.idle == NULL)) {
		cmd_usage(cmd_find("rollout"), stderr);
		return ROLLOUT_USAGE;
	}
	if (o.step > 0 && (steps[i].fn != rollout_step || o.autorun)) {
		fprintf(stderr, "asg-agent: --step is for 'rollout step', without --auto\n");
		return ROLLOUT_USAGE;
	}
	if (o.live != NULL && strcmp(o.live, o.idle) == 0) {
		fprintf(stderr, "asg-agent: --live and --idle name the same group\n");
		return ROLLOUT_USAGE;
	}
	if (load_config(g, &cfg) != 0)
		return ROLLOUT_ERROR;
	o.version_tag = cfg.version_tag;
	o.sha256_tag = cfg.sha256_tag;
	if (client_open(&c, &cfg, 1, &cause) != 0)
		fprintf(stderr, "asg-agent: %s\n", cause);
	else if ((ret = steps[i].fn(&c.aws, &o, &cause)) != ROLLOUT_OK && !o.json)
		fprintf(stderr, "asg-agent: rollout %s: %s\n", steps[i].name,
		    cause != NULL ? cause : "failed");
	client_close(&c);
	config_free(&cfg);
	free(cause);
	return ret;
}

static int
cmd_publish(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "version", required_argument, NULL, 'V' },
		{ "to", required_argument, NULL, 't' },
		{ "sign", required_argument, NULL, 'k' },
		{ "tag-group", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 }
	};
	struct config		 cfg;
	struct client		 c;
	struct publish_opts	 o;
	const char		**groups;
	char			*cause = NULL;
	int			 ch, ret = PUBLISH_USAGE;

	memset(&o, 0, sizeof o);
	groups = xcalloc((size_t)argc, sizeof *groups);
	o.groups = groups;
	o.out = stdout;
	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'V': o.version = optarg; break;
		case 't': o.url_template = optarg; break;
		case 'k': o.sign_key = optarg; break;
		case 'g': groups[o.ngroups++] = optarg; break;
		default: goto out;
		}
	}
	if (optind + 1 != argc || o.version == NULL || o.url_template == NULL) {
		cmd_usage(cmd_find("publish"), stderr);
		goto out;
	}
	o.file = argv[optind];
	ret = PUBLISH_ERROR;
	if (load_config(g, &cfg) != 0)
		goto out;
	o.version_tag = cfg.version_tag;
	o.sha256_tag = cfg.sha256_tag;
	if (client_open(&c, &cfg, 1, &cause) != 0)
		fprintf(stderr, "asg-agent: %s\n", cause);
	else if ((ret = publish_run(&c.aws, &o, &cause)) != PUBLISH_OK)
		fprintf(stderr, "asg-agent: publish: %s\n", cause != NULL ? cause : "failed");
	client_close(&c);
	config_free(&cfg);
out:
	free(cause);
	free(groups);
	return ret;
}

/*
 * The reference texts made from the option table: make update-conf-reference
 * writes them into agent.conf.example and asg-agent.conf(5), tests compare them.
 */
static int
cmd_config_reference(struct globals *g, int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct {
		const char	*name;
		void		(*fn)(FILE *);
	} formats[] = {
		{ "example", config_write_example },
		{ "man", config_write_man },
		{ "man-reload", config_write_man_reload },
	};
	const char	*format = NULL;
	size_t		 i;
	int		 ch;

	optind = 0;	/* GNU: reinitialise, the global options stopped at the command */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': format = optarg; break;
		default: return 2;
		}
	}
	for (i = 0; format != NULL && i < nitems(formats); i++) {
		if (strcmp(format, formats[i].name) == 0)
			break;
	}
	if (optind != argc || format == NULL || i == nitems(formats)) {
		cmd_usage(cmd_find("config-reference"), stderr);
		return 2;
	}
	formats[i].fn(stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "asg-agent: config-reference: write error\n");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct globals		 g;
	const struct cmd	*c;
	int			 ch, i;

	/* No core dump or ptrace by the same uid: the process holds role credentials. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	memset(&g, 0, sizeof g);
	g.config_path = CONFIG_DEFAULT_PATH;
	if (getenv("ASG_AGENT_CONFIG") != NULL) {
		g.config_path = getenv("ASG_AGENT_CONFIG");
		g.config_given = 1;
	}
	log_init("asg-agent", LOGL_INFO);
	while ((ch = getopt(argc, argv, "+c:vh")) != -1) {
		switch (ch) {
		case 'c':
			g.config_path = optarg;
			g.config_given = 1;
			break;
		case 'v':
			g.verbose = 1;
			log_set_level(LOGL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return 2;
	}
	if ((c = cmd_find(argv[0])) == NULL) {
		fprintf(stderr, "asg-agent: unknown command '%s'\n\n", argv[0]);
		usage(stderr);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cmd_usage(c, stdout);
			return 0;
		}
	}
	return c->fn(&g, argc, argv);
}
