"""Building blocks for boot-path tests and the demo: an app artifact, a config, the agent."""
import hashlib
import io
import json
import random
import signal
import socket
import subprocess
import tarfile
import time

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


def free_ports(n):
    """n distinct ports free on 127.0.0.1, drawn below the kernel's ephemeral range:
    the outgoing connections of every test running beside this one take theirs from
    it, and a port handed out by bind(0) and closed can be handed out again."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            eph = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph = 32768
    lo, hi = max(1024, eph - 12000), eph - 1
    rng = random.SystemRandom()     # a test's random.seed() must not make two draw alike
    held, ports = [], []
    try:
        for _ in range(1000):
            if len(ports) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", rng.randint(lo, hi) if hi > lo else 0))
            except OSError:
                s.close()
                continue
            held.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in held:
            s.close()
    if len(ports) < n:
        raise RuntimeError(f"no {n} free ports on 127.0.0.1")
    return ports


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

