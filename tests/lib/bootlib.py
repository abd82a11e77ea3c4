"""Building blocks for boot-path tests and the demo: an app artifact, a config, the agent."""
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import unittest

from agentlib import AGENT

# The app inside every test artifact: serves /health (and /) on its port, healthy
# after HEALTHY_AFTER seconds unless NEVER_HEALTHY is set; exits when orphaned.
APP_PY = r'''
import http.server, os, sys, threading, time
port = int(sys.argv[1])
start = time.time()
delay = float(os.environ.get("HEALTHY_AFTER", "0"))
never = os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "NEVER_HEALTHY"))
parent = os.getppid()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = not never and time.time() - start >= delay
        body = (os.environ.get("ASG_AGENT_VERSION", "?") + "\n").encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
def watchdog():
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)
threading.Thread(target=watchdog, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_artifact(files=None, mode="w:gz"):
    """A release tarball (bytes) holding app.py plus extra {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        entries = {"app.py": APP_PY.encode()}
        entries.update(files or {})
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_gz(entries, mode="w:gz"):
    """A tarball from entries: dicts with name, type (tarfile.*TYPE), data, linkname,
    mode, devmajor, devminor. app.py (the test app) is not added implicitly."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", tarfile.REGTYPE)
            info.linkname = e.get("linkname", "")
            info.mode = e.get("mode", 0o644)
            info.mtime = int(time.time())
            info.devmajor = e.get("devmajor", 0)
            info.devminor = e.get("devminor", 0)
            data = e.get("data", b"")
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = 0
                tar.addfile(info)
    return buf.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write_config(path, state_dir, app_port, health_port, extra=""):
    """An agent config for the fake world; extra is appended (more sections/keys)."""
    text = f"""[agent]
state_dir = {state_dir}
deadline = 120
log_level = debug

[aws]
imds_timeout = 20
api_timeout = 20

[version]
wait = 20

[artifact]
url = s3://releases/app/{{version}}.tar.gz

[app]
command = python3 app.py {app_port}
health_url = http://127.0.0.1:{app_port}/health
health_timeout = 20
stop_timeout = 5

[health]
listen = 127.0.0.1:{health_port}
path = /healthz

[lifecycle]
heartbeat = 30
poll = 1
drain = 1
"""
    text = merge_ini(text, extra)
    with open(path, "w") as f:
        f.write(text)
    return path


def merge_ini(base, extra):
    """Override or add keys: extra is INI text whose keys replace base's."""
    sections, order, cur = {}, [], None
    for text in (base, extra):
        for line in text.splitlines():
            s = line.strip()
            if not s or s.startswith((";", "#")):
                continue
            if s.startswith("["):
                cur = s
                if cur not in sections:
                    sections[cur] = {}
                    order.append(cur)
                continue
            k, v = s.split("=", 1)
            sections[cur][k.strip()] = v.strip()
    return "\n".join(f"{sec}\n" + "".join(f"{k} = {v}\n" for k, v in sections[sec].items())
                     for sec in order)


class Agent:
    """`asg-agent run` in the background, with its log kept."""

    def __init__(self, config, env, log_path, cmd=None):
        """cmd: how to run the binary (a list; default [AGENT]), e.g. through
        qemu-user or inside a chroot, where config is a path as it sees it."""
        self.config = config
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.cmd = list(cmd or [AGENT])
        env = dict(env)
        env["ASG_AGENT_LOG_STDERR"] = "1"
        env.pop("NOTIFY_SOCKET", None)
        self.env = env
        self.proc = subprocess.Popen(self.cmd + ["-c", config, "run"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def status(self, *args, timeout=30):
        r = subprocess.run(self.cmd + ["-c", self.config, "status", *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        return r

    def status_json(self):
        r = self.status("--json")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def wait_started(self, timeout=20):
        """Wait until this agent (not an earlier one) has written the state file."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            st = self.status_json()
            if st and st.get("pid") == self.proc.pid:
                return True
            time.sleep(0.05)
        return False

    def wait_status(self, timeout=60):
        """Block until the boot path ends; returns the status exit code."""
        self.wait_started()
        return self.status("--wait", "--timeout", str(timeout), timeout=timeout + 10).returncode

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def http_get(port, path, timeout=2):
    """(status, body) of a GET on 127.0.0.1:port, or (None, error)."""
    import http.client
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return r.status, body
    except OSError as e:
        return None, str(e)


class BootCase(unittest.TestCase):
    """One fake AWS per test class (SigV4 and IAM checks on); per test a fresh
    directory, a group of its own, and every agent stopped at the end."""

    prefix = "boot"
    stop_timeout = 10  # seconds an agent has to exit after SIGTERM in tearDown

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

    def tearDown(self):
        for a in self.agents:
            a.stop(timeout=self.stop_timeout)
        self.f.clear_faults()
        self.f.control("DELETE", "/tag-delay", check=False)
        if not os.environ.get("ASG_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

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

    def start(self, extra="", state=None, env=None):
        """An agent on fresh ports with the test config plus extra."""
        self.app_port, self.health_port = free_port(), free_port()
        i = len(self.agents)
        conf = write_config(os.path.join(self.dir, f"agent{i}.conf"), state or self.state,
                            self.app_port, self.health_port, extra)
        a = Agent(conf, env or self.f.agent_env(), os.path.join(self.dir, f"agent{i}.log"))
        self.agents.append(a)
        return a

    def lifecycle(self, w, kind="complete"):
        """The fake's successful lifecycle events of this world's instance."""
        return [e for e in self.f.lifecycle()
                if e.get("instance_id") == w.instance_id and e.get("kind") == kind and e.get("ok")]

    def s3_gets(self, key=None):
        return [q for q in self.f.requests(target="aws", service="s3")
                if q.get("action") == "GetObject"
                and (key is None or q.get("path", "").split("?")[0].endswith(key))]

    def wait_for(self, pred, timeout, step=0.1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return True
            time.sleep(step)
        return pred()

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
