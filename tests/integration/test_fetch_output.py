"""`asg-agent fetch -o FILE`: the temporary file is made exclusively under an unpredictable
name, and a target that is a FIFO or a device is written into, never renamed over (review
items 2 and 3 of issue 16). Every special file is made in the test's own directory."""
import http.server
import os
import socket
import stat
import subprocess
import threading
import time
import unittest

from agentlib import AGENT, TempDir, clean_env, run, write
from bootlib import make_artifact, sha256

ART = make_artifact({"README": b"hello\n"})


class Server(http.server.ThreadingHTTPServer):
    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(ART)))
        self.end_headers()
        self.wfile.write(ART)

    def log_message(self, *a):
        pass


class FetchOutput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.httpd.server_address[1]}/a.tar.gz"

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()

    def setUp(self):
        self.tmp = TempDir()
        self.dir = self.tmp.__enter__()
        self.conf = write(os.path.join(self.dir, "agent.conf"), "")

    def tearDown(self):
        self.tmp.__exit__(None, None, None)

    def fetch(self, out, sha=None):
        return run(["fetch", self.url, "--sha256", sha or sha256(ART), "-o", out],
                   config=self.conf)

    def assert_exit(self, r, code):
        self.assertEqual(r.returncode, code, f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")

    def leftovers(self, name):
        return sorted(n for n in os.listdir(self.dir) if n.startswith(name + "."))

    def test_predictable_tmp_is_not_used(self):
        """A FILE.tmp someone made first (a file of theirs, or a link) is left alone,
        and the result is a new file, not theirs."""
        out = os.path.join(self.dir, "a.tar.gz")
        planted = write(out + ".tmp", "attacker's\n")
        victim = write(os.path.join(self.dir, "victim"), "victim\n")
        os.symlink(victim, out + ".tmp2")
        r = self.fetch(out)
        self.assert_exit(r, 0)
        with open(out, "rb") as fh:
            self.assertEqual(sha256(fh.read()), sha256(ART))
        with open(planted) as fh:
            self.assertEqual(fh.read(), "attacker's\n", "the planted FILE.tmp is untouched")
        with open(victim) as fh:
            self.assertEqual(fh.read(), "victim\n")
        self.assertNotEqual(os.stat(out).st_ino, os.stat(planted).st_ino)
        self.assertEqual(self.leftovers("a.tar.gz"), ["a.tar.gz.tmp", "a.tar.gz.tmp2"],
                         "no temporary file of ours is left")
        mask = os.umask(0)
        os.umask(mask)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o644 & ~mask)

    def test_fifo_is_written_into(self):
        fifo = os.path.join(self.dir, "out.fifo")
        os.mkfifo(fifo, 0o600)
        # A reader first, so the agent's open for writing does not wait.
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            r = self.fetch(fifo)
            self.assert_exit(r, 0)
            got = os.read(rd, 1 << 20)
        finally:
            os.close(rd)
        self.assertEqual(sha256(got), sha256(ART), "the FIFO's reader got the artifact")
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still a FIFO")
        self.assertEqual(self.leftovers("out.fifo"), [])

    def test_fifo_gets_nothing_unverified(self):
        fifo = os.path.join(self.dir, "bad.fifo")
        os.mkfifo(fifo, 0o600)
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            r = self.fetch(fifo, sha="1" * 64)
            self.assert_exit(r, 1)
            self.assertIn("sha256 mismatch", r.stderr)
            got = os.read(rd, 1 << 20)
        finally:
            os.close(rd)
        self.assertEqual(got, b"", "not a byte reaches the FIFO before verification")
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertEqual(self.leftovers("bad.fifo"), [])

    def test_a_fifo_is_not_staged_beside(self):
        """A target written into (`-o /dev/stdout`) was staged beside it: the whole
        artifact in /dev (RAM, or a container's 64 MiB tmpfs), and refused outright to a
        user who cannot write /dev. A FIFO of the test's own stands in for it; the
        agent's open for writing waits for a reader, which shows where it staged."""
        fifo = os.path.join(self.dir, "out.fifo")
        os.mkfifo(fifo, 0o600)
        stage = os.path.join(self.dir, "stage")
        os.mkdir(stage)
        env = clean_env()
        env["TMPDIR"] = stage
        p = subprocess.Popen([AGENT, "-c", self.conf, "fetch", self.url, "--sha256",
                              sha256(ART), "-o", fifo], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not os.listdir(stage) and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual([n[:16] for n in os.listdir(stage)], ["asg-agent-fetch."],
                             "staged in TMPDIR")
            mode = os.stat(os.path.join(stage, os.listdir(stage)[0])).st_mode & 0o777
            self.assertEqual(oct(mode), oct(0o600), "private in a shared /tmp")
            self.assertEqual(self.leftovers("out.fifo"), [], "nothing beside the FIFO")
            with open(fifo, "rb") as fh:
                got = fh.read()
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(sha256(got), sha256(ART))
        self.assertEqual(os.listdir(stage), [], "the staged copy is gone")

    def test_another_users_link_is_not_followed(self):
        """In a sticky /tmp another user's link could point the artifact at a disk
        device (root-owned, so the target's owner check passed): refused."""
        if os.geteuid() != 0:
            self.skipTest("making a link of another user needs root")
        fifo = os.path.join(self.dir, "ours.fifo")
        os.mkfifo(fifo, 0o600)
        link = os.path.join(self.dir, "theirs")
        os.symlink(fifo, link)
        os.lchown(link, 65534, 65534)
        got = self.refused_into(fifo, link, "is a symbolic link of another user (uid 65534)")
        self.assertEqual(got, b"", "not a byte reaches the link's target")
        self.assertTrue(os.path.islink(link))

    def refused_into(self, fifo, out, why):
        """fetch -o out fails for why; what fifo's reader got meanwhile."""
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            r = self.fetch(out)
            self.assert_exit(r, 1)
            self.assertIn(why, r.stderr)
            return os.read(rd, 1 << 20)
        finally:
            os.close(rd)

    def test_another_users_fifo_is_refused(self):
        """A FIFO another user made where the artifact is to go (their /tmp/app.tar.gz)
        would hand them the artifact: refused, and nothing written (security review)."""
        if os.geteuid() != 0:
            self.skipTest("making a FIFO of another user needs root")
        fifo = os.path.join(self.dir, "theirs.fifo")
        os.mkfifo(fifo, 0o666)
        os.chown(fifo, 65534, 65534)
        got = self.refused_into(fifo, fifo, "belongs to another user (uid 65534)")
        self.assertEqual(got, b"", "not a byte reaches their FIFO")
        self.assertEqual(self.leftovers("theirs.fifo"), [])

    def test_link_to_own_descriptor_is_written_through(self):
        """`-o /dev/stdout` (a link to /proc/self/fd/1) renamed the artifact over the
        link: as root, over /dev/stdout for the whole machine. A link of the test's
        own stands in for it, to a file and to a pipe."""
        link = os.path.join(self.dir, "stdout")
        os.symlink("/proc/self/fd/1", link)
        captured = os.path.join(self.dir, "captured")
        cmd = [AGENT, "-c", self.conf, "fetch", self.url, "--sha256", sha256(ART), "-o", link]
        with open(captured, "wb") as fh:
            r = subprocess.run(cmd, env=clean_env(), stdout=fh, stderr=subprocess.PIPE,
                               timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"digest-ok", r.stderr, "the report goes to stderr, not into the artifact")
        with open(captured, "rb") as fh:
            self.assertEqual(sha256(fh.read()), sha256(ART), "stdout got the artifact alone")
        self.assertEqual(os.readlink(link), "/proc/self/fd/1", "the link is still a link")
        r = subprocess.run(cmd, env=clean_env(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sha256(r.stdout), sha256(ART), "a pipe got the artifact")
        self.assertTrue(os.path.islink(link))
        self.assertEqual(self.leftovers("stdout"), [])

    def test_device_is_not_replaced(self):
        """`fetch -o /dev/null` as root replaced /dev/null with a regular file: a null
        device of the test's own keeps being that device."""
        dev = os.path.join(self.dir, "null")
        try:
            os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            with open(dev, "wb") as fh:
                fh.write(b"x")
        except OSError as e:
            self.skipTest(f"cannot make and open a device node here: {e}")
        r = self.fetch(dev)
        self.assert_exit(r, 0)
        st = os.lstat(dev)
        self.assertTrue(stat.S_ISCHR(st.st_mode), f"mode now {stat.filemode(st.st_mode)}")
        self.assertEqual(st.st_rdev, os.makedev(1, 3))
        self.assertEqual(self.leftovers("null"), [])

    def test_directory_is_refused(self):
        d = os.path.join(self.dir, "adir")
        os.mkdir(d)
        r = self.fetch(d)
        self.assert_exit(r, 1)
        self.assertIn("exists and is not a file, a FIFO or a device", r.stderr)
        self.assertEqual(os.listdir(d), [])
        self.assertEqual(self.leftovers("adir"), [])


if __name__ == "__main__":
    unittest.main()
