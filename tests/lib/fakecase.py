"""FakeAWSCase: the base of every test that runs the agent against the fake AWS (tests/fakeaws)."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from agentlib import run, write
from bootlib import Agent, free_ports, http_get, make_artifact, sha256, write_config


class FakeAWSCase(unittest.TestCase):
    """One fake AWS per test class (SigV4 and IAM checks on). Per test: a fresh directory
    (self.dir, kept when ASG_TEST_KEEP is set), a group name of its own (self.group), the
    class's `config` text as self.conf when it has one, the fake's faults, requests and tag
    delays cleared, and at the end every agent self.start() ran stopped and IMDS enabled."""

    prefix = "asg"      # of the temporary directories and the groups
    config = None       # agent config text written to self.conf for each test
    stop_timeout = 10   # seconds an agent has to exit after SIGTERM in tearDown

    @classmethod
    def setUpClass(cls):
        from harness import FakeAWS
        # Other test runs may share this machine: give the fake AWS time, and a second try.
        for attempt in (1, 2):
            cls.f = FakeAWS(auth=True, startup_timeout=90)
            try:
                cls.f.start()
                break
            except Exception as e:
                print(f"# {cls.__name__}: fakeaws did not start (try {attempt}): {e}",
                      flush=True)
                if attempt == 2:
                    raise
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()

    def setUp(self):
        self.f.clear_faults()
        self.f.clear_requests()
        self.f.control("DELETE", "/tag-delay", check=False)
        self.dir = tempfile.mkdtemp(prefix=f"asg-{self.prefix}-")
        self.state = os.path.join(self.dir, "state")
        self.agents = []
        type(self).n += 1
        self.group = f"{self.prefix}{self.n}"
        if self.config is not None:
            self.conf = write(os.path.join(self.dir, "agent.conf"), self.config)

    def tearDown(self):
        for a in self.agents:
            a.stop(timeout=self.stop_timeout)
        self.f.clear_faults()
        self.f.control("DELETE", "/tag-delay", check=False)
        self.f.set_imds(disabled=False)
        if not os.environ.get("ASG_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the fake world ----------------------------------------------------------------
    def world(self, version="1.0.0", art=None, sha=True, group=None, upload=True, **kw):
        """Upload a release (the test app unless art is given) and make its group.
        sha: True for the artifact's digest in the sha256 tag, a string, or falsy for none."""
        art = make_artifact() if art is None else art
        if upload:
            self.f.put_s3("releases", f"app/{version}.tar.gz", art)
        digest = sha256(art) if sha is True else sha
        w = self.f.make_world(group=group or self.group, version=version,
                              sha256=digest or None, **kw)
        return w, art

    def lifecycle(self, w, kind="complete", hook=None):
        """The fake's successful lifecycle events of this world's instance (of one hook)."""
        return [e for e in self.f.lifecycle()
                if e.get("instance_id") == w.instance_id and e.get("kind") == kind
                and e.get("ok") and (hook is None or e.get("hook") == hook)]

    def s3_gets(self, key=None):
        return [q for q in self.f.requests(target="aws", service="s3")
                if q.get("action") == "GetObject"
                and (key is None or q.get("path", "").split("?")[0].endswith(key))]

    # -- the agent ---------------------------------------------------------------------
    def agent_env(self, env=None):
        """The fake's endpoints for the agent, plus env."""
        e = self.f.agent_env()
        e.update(env or {})
        return e

    def cli(self, *args, env=None, conf=None, timeout=60):
        """`asg-agent -c CONF ARGS` against the fake: (CompletedProcess, seconds it took)."""
        t0 = time.monotonic()
        r = run(["-c", conf or self.conf, *args], env=self.agent_env(env), timeout=timeout)
        return r, time.monotonic() - t0

    def start(self, extra="", state=None, env=None, new_ports=True):
        """`asg-agent run` in the background with the test config plus extra, on fresh
        ports (new_ports=False: on self.app_port and self.health_port again)."""
        if new_ports:
            self.app_port, self.health_port = free_ports(2)
        i = len(self.agents)
        conf = write_config(os.path.join(self.dir, f"agent{i}.conf"), state or self.state,
                            self.app_port, self.health_port, extra)
        a = Agent(conf, self.agent_env(env), os.path.join(self.dir, f"agent{i}.log"))
        self.agents.append(a)
        return a

    def wait_for(self, pred, timeout, step=0.1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return True
            time.sleep(step)
        return pred()

    # -- checks that show both sides -----------------------------------------------------
    def assert_exit(self, r, code):
        """A finished command exited with code; a failure shows both and what it printed."""
        self.assertEqual(r.returncode, code, f"exit status of {' '.join(map(str, r.args))}"
                         f"\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")

    def assert_serving(self, a, w):
        """The boot reached serving: status 0, no error, the endpoint 200, CONTINUE sent."""
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        st = a.status_json()
        self.assertEqual(st["phase"], "serving")
        self.assertIsNone(st["error"])
        self.assertEqual(http_get(self.health_port, "/healthz"), (200, "ok\n"))
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"],
                         self.f.lifecycle())
        return st

    def assert_failed(self, a, w, cause, fresh_state=True):
        """The boot failed closed: status failed with cause, exit 1, ABANDON sent,
        nothing half-installed, no app running."""
        code = a.wait_status(timeout=60)
        st = a.status_json()
        self.assertEqual(code, 1, a.log_text())
        self.assertEqual(st["phase"], "failed")
        self.assertIn(cause, st["error"] or "")
        self.assertEqual(a.wait_exit(20), 1, "the agent exits non-zero after a failure")
        done = self.lifecycle(w)
        self.assertEqual([e["result"] for e in done], ["ABANDON"], self.f.lifecycle())
        if fresh_state:
            self.assertFalse(os.path.exists(os.path.join(self.state, "current")),
                             "no release may become current")
        staging = os.path.join(self.state, "staging")
        self.assertEqual(os.listdir(staging) if os.path.isdir(staging) else [], [])
        self.assertEqual(http_get(self.app_port, "/health")[0], None, "app must not run")
        return st

    # -- signing -----------------------------------------------------------------------
    def keypair(self, name):
        """An ECDSA P-256 key pair in the test dir: (private PEM path, public PEM path)."""
        k = os.path.join(self.dir, f"{name}.pem")
        pub = os.path.join(self.dir, f"{name}.pub")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", k], check=True, capture_output=True)
        subprocess.run(["openssl", "ec", "-in", k, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        return k, pub

    def sign(self, key, data):
        """The detached signature `openssl dgst -sha256 -sign` makes over data."""
        path = os.path.join(self.dir, "to-sign.bin")
        with open(path, "wb") as fh:
            fh.write(data)
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, path],
                              check=True, capture_output=True).stdout
