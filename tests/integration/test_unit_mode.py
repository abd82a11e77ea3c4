"""`asg-agent run` with `[app] unit`: the unit is restarted, watched and stopped by exec'ing
`systemctl` from PATH. Here `systemctl` is a fake the test writes into its temp dir: it
records every argv, runs the test app for `restart`, answers `show` from whether that app
lives, and stops it for `stop`. Real binary, fake AWS with signature checks on."""
import json
import os
import signal
import sys
import unittest

from bootlib import free_ports, http_get
from fakecase import FakeAWSCase

UNIT = "web.service"

# The fake systemctl. Its directory FAKE_SYSTEMD_DIR holds:
#   calls.jsonl      one JSON argv (without argv[0]) per call, written first thing
#   app.pid          the pid of the app `restart` started
#   fail-VERB        exit 1 with this file's text on stderr
#   hang-VERB        write hang-VERB.pid and sleep (until killed)
#   state            `show` prints ActiveState=<this> instead of looking at the app
# The app runs like a simple unit would: in ASG_AGENT_RELEASE_DIR from the agent's
# release.env (EnvironmentFile=), with that file's variables, in a session of its own,
# under a keeper process that stops it when the test process (FAKE_SYSTEMD_OWNER) is gone.
FAKE_SYSTEMCTL = r'''
import json, os, signal, subprocess, sys, time
D = os.environ["FAKE_SYSTEMD_DIR"]
args = sys.argv[1:]
with open(os.path.join(D, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps(args) + "\n")
words = [a for a in args if not a.startswith("--")]
verb, unit = words[0], words[-1]
PIDFILE = os.path.join(D, "app.pid")

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False

def app_pid():
    try:
        with open(PIDFILE) as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None

def stop_app():
    pid = app_pid()
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    while alive(pid):
        time.sleep(0.02)

if os.path.exists(os.path.join(D, "hang-" + verb)):
    with open(os.path.join(D, f"hang-{verb}.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(3600)
    sys.exit(0)
fail = os.path.join(D, "fail-" + verb)
if os.path.exists(fail):
    with open(fail) as fh:
        sys.stderr.write(fh.read())
    sys.exit(1)

if verb == "show":
    try:
        with open(os.path.join(D, "state")) as fh:
            state = fh.read().strip()
    except OSError:
        pid = app_pid()
        state = "active" if pid is not None and alive(pid) else "inactive"
    print("ActiveState=" + state)
elif verb == "stop":
    stop_app()
elif verb == "restart":
    stop_app()
    env = dict(os.environ)
    with open(os.path.join(os.environ["FAKE_SYSTEMD_STATE"], "release.env")) as fh:
        for line in fh:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        log = os.open(os.path.join(D, "app.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        p = subprocess.Popen([sys.executable, "app.py", os.environ["FAKE_UNIT_PORT"]],
                             cwd=env["ASG_AGENT_RELEASE_DIR"], env=env)
        with open(PIDFILE + ".tmp", "w") as fh:
            fh.write(str(p.pid))
        os.rename(PIDFILE + ".tmp", PIDFILE)
        os.write(w, b"x")
        os.close(w)
        owner = int(os.environ["FAKE_SYSTEMD_OWNER"])
        while p.poll() is None:
            if not alive(owner):
                p.kill()
            time.sleep(0.2)
        os._exit(0)
    os.close(w)
    os.read(r, 1)       # like systemctl: back once the unit's main process runs
else:
    sys.stderr.write(f"fake systemctl: unknown verb {verb}\n")
    sys.exit(1)
'''

JOB_FAILED = ("Job for x.service failed because the control process exited with error "
              "code.\nSee \"systemctl status x.service\" and \"journalctl -xeu x.service\" "
              "for details.\n")


class UnitMode(FakeAWSCase):
    prefix = "unit"
    stop_timeout = 15

    def setUp(self):
        super().setUp()
        self.sysd = os.path.join(self.dir, "systemd")
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.sysd)
        os.makedirs(self.bin)
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as fh:
            fh.write(f"#!{sys.executable}\n" + FAKE_SYSTEMCTL)
        os.chmod(path, 0o755)

    def tearDown(self):
        pid = self.app_pid()
        super().tearDown()
        if pid is not None and self.alive(pid):
            os.kill(pid, signal.SIGKILL)

    # -- helpers ---------------------------------------------------------------------
    def unit_env(self, path=None):
        env = self.f.agent_env()
        env["PATH"] = path if path is not None else self.bin + os.pathsep + env.get("PATH", "")
        env["FAKE_SYSTEMD_DIR"] = self.sysd
        env["FAKE_SYSTEMD_STATE"] = self.state
        env["FAKE_SYSTEMD_OWNER"] = str(os.getpid())
        return env

    def start_unit(self, extra="", path=None):
        """An agent in unit mode; the fake unit's app listens on the agent's app port."""
        self.app_port, self.health_port = free_ports(2)
        env = self.unit_env(path)
        env["FAKE_UNIT_PORT"] = str(self.app_port)
        return self.start(f"[app]\ncommand =\nunit = {UNIT}\n" + extra, env=env,
                          new_ports=False)

    def calls(self):
        try:
            with open(os.path.join(self.sysd, "calls.jsonl")) as fh:
                return [json.loads(line) for line in fh]
        except FileNotFoundError:
            return []

    def app_pid(self):
        try:
            with open(os.path.join(self.sysd, "app.pid")) as fh:
                return int(fh.read())
        except (OSError, ValueError):
            return None

    @staticmethod
    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def touch(self, name, text=""):
        with open(os.path.join(self.sysd, name), "w") as fh:
            fh.write(text)

    RESTART = ["--no-ask-password", "restart", UNIT]
    SHOW = ["--no-ask-password", "show", "--property=ActiveState", UNIT]
    STOP = ["--no-ask-password", "stop", UNIT]
    # After a stop signal: queued, not waited for (the unit is ordered Before= the agent,
    # so under systemd its stop runs only after the agent's own stop has finished).
    STOP_QUEUED = ["--no-ask-password", "stop", "--no-block", UNIT]

    # -- the boot --------------------------------------------------------------------
    def test_boot_restarts_the_unit_and_watches_it(self):
        w, _ = self.world()
        a = self.start_unit()
        st = self.assert_serving(a, w)
        self.assertEqual(st["app"], f"unit {UNIT}")
        # The app's unit only: the agent may also ask systemd for its own unit's
        # timestamps once it serves (the status timeline), which is not the app's.
        calls = [c for c in self.calls() if UNIT in c]
        self.assertEqual(calls[0], self.RESTART, calls)
        self.assertGreaterEqual(len(calls), 2, calls)
        self.assertEqual(calls[1:], [self.SHOW] * (len(calls) - 1),
                         "after the restart only `show` is asked")
        others = [c for c in self.calls() if UNIT not in c]
        self.assertTrue(all(c[:2] == ["--no-ask-password", "show"] for c in others),
                        f"anything else asked of systemctl only reads: {others}")
        # The unit's app is the one that answers, and it got release.env's variables.
        self.assertEqual(http_get(self.app_port, "/health"), (200, "1.0.0\n"))
        self.assertTrue(self.alive(self.app_pid()))

    def test_restart_failing_fails_closed(self):
        w, _ = self.world()
        self.touch("fail-restart", JOB_FAILED)
        a = self.start_unit()
        st = self.assert_failed(a, w, "Job for x.service failed because the control process "
                                      "exited with error code.", fresh_state=False)
        self.assertIn(f"systemctl restart {UNIT} failed", st["error"])
        self.assertIn(f"journalctl -u {UNIT}", st["error"])
        self.assertNotIn("See \"systemctl status", st["error"], "only stderr's first line")
        self.assertIn("Job for x.service failed", a.status().stdout)
        self.assertEqual(self.calls(), [self.RESTART], "nothing started, nothing to stop")

    def test_systemctl_missing_from_path(self):
        w, _ = self.world()
        empty = os.path.join(self.dir, "empty-bin")
        os.makedirs(empty)
        a = self.start_unit(path=empty)
        st = self.assert_failed(a, w, "systemctl could not be executed (not in PATH?)",
                                fresh_state=False)
        self.assertEqual(st["phase"], "failed")
        self.assertEqual(self.calls(), [], "the fake was not in PATH")

    def test_show_hanging_is_cut_off_and_the_probe_decides(self):
        # `show` is cut off at the probe's timeout. A systemd too busy to answer said
        # nothing of the app, yet failed the boot (and, serving, counted as a failed
        # probe, 10 s each): the HTTP probe decides.
        w, _ = self.world()
        self.touch("hang-show")
        a = self.start_unit("[app]\nprobe_timeout = 2\n")
        self.assert_serving(a, w)
        # Each probe's `show` hangs until this file goes: the last one is cut off at 2 s.
        os.unlink(os.path.join(self.sysd, "hang-show"))
        with open(os.path.join(self.sysd, "hang-show.pid")) as fh:
            hung = int(fh.read())
        self.assertTrue(self.wait_for(lambda: not self.alive(hung), 10),
                        "the hanging systemctl was killed")
        calls = self.calls()
        self.assertEqual(calls[:2], [self.RESTART, self.SHOW], calls)
        self.assertIn(f"unit {UNIT}: state not known: systemctl show {UNIT}: job did not "
                      "finish within 2 s", a.log_text())

    def test_restart_hanging_past_the_deadline_is_cut_off(self):
        w, _ = self.world()
        self.touch("hang-restart")
        a = self.start_unit("[agent]\ndeadline = 10\n")
        st = self.assert_failed(a, w, f"systemctl restart {UNIT}: stopped while waiting for "
                                      "the job", fresh_state=False)
        self.assertIn("boot deadline of 10 s passed", st["error"])
        with open(os.path.join(self.sysd, "hang-restart.pid")) as fh:
            hung = int(fh.read())
        self.assertFalse(self.alive(hung), "the hanging systemctl was killed")
        self.assertEqual(self.calls(), [self.RESTART])

    # -- the running life ------------------------------------------------------------
    def test_unit_turning_inactive_is_noticed(self):
        w, _ = self.world()
        a = self.start_unit("[app]\nhealth_interval = 1\nunhealthy_after = 2\n"
                            "replace_unhealthy = no\n")
        self.assert_serving(a, w)
        # The app still answers its health URL: only the unit's state says it is down.
        self.touch("state", "inactive")
        self.assertTrue(self.wait_for(
            lambda: http_get(self.health_port, "/healthz")[0] == 503, 20), a.log_text())
        self.assertEqual(http_get(self.app_port, "/health")[0], 200)
        # The endpoint turns 503 just before the state file is saved.
        self.wait_for(lambda: "app unhealthy after 2 failed probes" in a.log_text()
                      and "inactive" in ((a.status_json() or {}).get("health") or ""), 5)
        st = a.status_json()
        self.assertEqual(st["phase"], "serving")
        self.assertIn(f"unit {UNIT} is inactive", st["health"])
        self.assertIn(f"app health probe failed (1 in a row): unit {UNIT} is inactive",
                      a.log_text())
        self.assertIn("app unhealthy after 2 failed probes", a.log_text())
        # Active again: 200 again.
        os.unlink(os.path.join(self.sysd, "state"))
        self.assertTrue(self.wait_for(
            lambda: http_get(self.health_port, "/healthz")[0] == 200, 20), a.log_text())
        self.assertIn("app healthy again", a.log_text())

    def test_scale_in_drain_stops_the_unit(self):
        w, _ = self.world(terminate_hook=True, heartbeat_timeout=30)
        a = self.start_unit()
        self.assert_serving(a, w)
        app = self.app_pid()
        self.f.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=self.group, DesiredCapacity=0)
        self.assertEqual(a.wait_exit(40), 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "stopped")
        self.assertEqual(self.calls()[-1], self.STOP, self.calls())
        self.assertEqual(self.calls().count(self.STOP), 1)
        self.assertFalse(self.alive(app), "the unit's app was stopped")
        self.assertNotIn("stopping the app", a.log_text())

    # This fails as of 86672b0: after SIGTERM the stop flag is set, and systemctl()
    # checks it before its first wait, so `systemctl stop` is SIGKILLed at once (before it
    # can ask systemd anything) and the unit keeps running after the agent has exited.
    # Log: "stopping the app: systemctl stop web.service: stopped while waiting for the job".
    # Waiting for that stop was no better under systemd: the unit is ordered Before= the
    # agent, so its stop job runs only after the agent's own stop has finished, and the wait
    # ran out its stop_timeout + 5 s on every power-off (bench/realboot). It is queued now.
    def test_sigterm_drain_stops_the_unit(self):
        w, _ = self.world()
        a = self.start_unit()
        self.assert_serving(a, w)
        app = self.app_pid()
        self.assertEqual(a.stop(signal.SIGTERM), 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "stopped")
        self.assertEqual(self.calls()[-1], self.STOP_QUEUED, self.calls())
        self.assertEqual(self.calls().count(self.STOP_QUEUED), 1)
        self.assertNotIn(self.STOP, self.calls())
        self.assertFalse(self.alive(app), "the unit's app was stopped")
        self.assertNotIn("stopping the app", a.log_text())


if __name__ == "__main__":
    unittest.main()
