"""`asg-agent fetch`: the verified pipeline for operators and image bakes."""
import fcntl
import hashlib
import http.server
import json
import os
import threading
import time
import unittest

from agentlib import write
from bootlib import make_artifact, sha256
from fakecase import FakeAWSCase


class Fetch(FakeAWSCase):
    prefix = "fetch"
    config = "[aws]\napi_timeout = 10\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.f.make_world(group="fetch-blue", version="1.0.0")
        cls.art = make_artifact({"README": b"hello\n"})
        cls.f.put_s3("bakes", "app/1.0.0.tar.gz", cls.art)
        # A plain HTTP server on loopback for the URL form.
        art = cls.art

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/a.tar.gz":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(art)))
                self.end_headers()
                self.wfile.write(art)

            def log_message(self, *a):
                pass
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.http_url = f"http://127.0.0.1:{cls.httpd.server_address[1]}/a.tar.gz"

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        super().tearDownClass()

    def fetch(self, *args):
        return self.cli("fetch", *args)[0]

    def test_s3_unpack_verified(self):
        out = os.path.join(self.dir, "x1")
        r = self.fetch("s3://bakes/app/1.0.0.tar.gz", "--sha256", sha256(self.art), "-x", out)
        self.assert_exit(r, 0)
        self.assertIn("digest-ok", r.stdout)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "hello\n")

    def test_unpack_into_a_name_with_a_trailing_slash(self):
        # "-x /opt/app/" put its staging file inside the directory that must not exist
        # yet: it failed, after the download, with "No such file or directory".
        out = os.path.join(self.dir, "slash") + "/"
        r = self.fetch("s3://bakes/app/1.0.0.tar.gz", "--sha256", sha256(self.art), "-x", out)
        self.assert_exit(r, 0)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "hello\n")
        self.assertEqual(sorted(n for n in os.listdir(self.dir) if n.startswith("slash")),
                         ["slash"])

    def test_http_to_file(self):
        out = os.path.join(self.dir, "a.tar.gz")
        r = self.fetch(self.http_url, "--sha256", sha256(self.art), "-o", out)
        self.assert_exit(r, 0)
        with open(out, "rb") as fh:
            self.assertEqual(hashlib.sha256(fh.read()).hexdigest(), sha256(self.art))

    def test_mismatch_leaves_nothing(self):
        out = os.path.join(self.dir, "x2")
        r = self.fetch("s3://bakes/app/1.0.0.tar.gz", "--sha256", "1" * 64, "-x", out)
        self.assert_exit(r, 1)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assertFalse(os.path.exists(out))
        outf = os.path.join(self.dir, "b.tar.gz")
        r = self.fetch(self.http_url, "--sha256", "1" * 64, "-o", outf)
        self.assert_exit(r, 1)
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith("b.tar.gz")], [])

    def test_missing_object_is_a_clear_error(self):
        r = self.fetch("s3://bakes/app/9.9.9.tar.gz", "--sha256", "1" * 64, "-x",
                       os.path.join(self.dir, "x3"))
        self.assert_exit(r, 1)
        self.assertIn("NoSuchKey", r.stderr)

    def test_refuses_unverified(self):
        r = self.fetch(self.http_url, "-x", os.path.join(self.dir, "x4"))
        self.assert_exit(r, 2)
        self.assertIn("refusing an unverified artifact", r.stderr)
        r = self.fetch(self.http_url, "--allow-unverified", "-x", os.path.join(self.dir, "x4"))
        self.assert_exit(r, 0)

    def prefetch_conf(self, name):
        state = os.path.join(self.dir, name)
        conf = write(os.path.join(self.dir, f"{name}.conf"),
                     f"[agent]\nstate_dir = {state}\n[aws]\napi_timeout = 10\n"
                     "[artifact]\nurl = s3://bakes/app/{version}.tar.gz\n"
                     "[app]\ncommand = python3 app.py\n")
        return state, conf

    def test_prefetch_installs_without_starting(self):
        state, conf = self.prefetch_conf("pf1")
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(self.art), conf=conf)[0]
        self.assert_exit(r, 0)
        self.assertEqual(os.readlink(os.path.join(state, "current")), "releases/1.0.0")
        self.assertTrue(os.path.isfile(os.path.join(state, "current", "README")))
        self.assertFalse(os.path.exists(os.path.join(state, "state.json")),
                         "prefetch leaves the boot's state alone")
        # A second prefetch finds it installed and downloads nothing.
        self.f.clear_requests()
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(self.art), conf=conf)[0]
        self.assert_exit(r, 0)
        self.assertEqual([q for q in self.f.requests(target="aws", service="s3")], [])

    def test_prefetch_beside_a_current_release_leaves_current(self):
        """On a live instance, current is what the running app restarts into: a
        prefetch installs beside it and leaves it; the boot activates what it runs."""
        state, conf = self.prefetch_conf("pf5")
        art2 = make_artifact({"README": b"two\n"})
        self.f.put_s3("bakes", "app/2.0.0.tar.gz", art2)
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(self.art), conf=conf)[0]
        self.assert_exit(r, 0)
        self.assertEqual(os.readlink(os.path.join(state, "current")), "releases/1.0.0",
                         "the first prefetch (an image being baked) sets current")
        r = self.cli("prefetch", "--version", "2.0.0", "--sha256", sha256(art2), conf=conf)[0]
        self.assert_exit(r, 0)
        self.assertEqual(os.readlink(os.path.join(state, "current")), "releases/1.0.0",
                         "a prefetch beside a current release must not move it")
        self.assertIn("current stays 1.0.0", r.stderr)
        with open(os.path.join(state, "releases", "2.0.0", "README")) as fh:
            self.assertEqual(fh.read(), "two\n", "2.0.0 is installed all the same")

    def test_prefetch_does_not_swap_a_served_release(self):
        """A version republished with other bytes was swapped in place by a prefetch on
        a live instance: the running app's files changed under it. With an agent
        serving that release (a live pid in state.json) it is refused; without one
        (an image being baked) it is replaced."""
        state, conf = self.prefetch_conf("pf6")
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(self.art), conf=conf)[0]
        self.assert_exit(r, 0)
        art2 = make_artifact({"README": b"republished\n"})
        self.f.put_s3("bakes", "app/1.0.0.tar.gz", art2)
        self.addCleanup(self.f.put_s3, "bakes", "app/1.0.0.tar.gz", self.art)
        with open("/proc/self/stat") as fh:
            start = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot_id = fh.read().strip()
        with open(os.path.join(state, "state.json"), "w") as fh:
            json.dump({"phase": "serving", "pid": os.getpid(), "pid_start": start,
                       "boot_id": boot_id, "version": "1.0.0"}, fh)
        readme = os.path.join(state, "releases", "1.0.0", "README")
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(art2), conf=conf)[0]
        self.assert_exit(r, 1)
        self.assertIn("an agent serves it now: prefetch does not swap its files", r.stderr)
        with open(readme) as fh:
            self.assertEqual(fh.read(), "hello\n", "the served files are untouched")
        os.unlink(os.path.join(state, "state.json"))
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", sha256(art2), conf=conf)[0]
        self.assert_exit(r, 0)
        with open(readme) as fh:
            self.assertEqual(fh.read(), "republished\n", "no agent: replaced")

    def test_prefetch_from_group_needs_a_digest(self):
        state, conf = self.prefetch_conf("pf2")
        r = self.cli("prefetch", "--group", "fetch-blue", conf=conf)[0]
        self.assert_exit(r, 1)
        self.assertIn("nothing to verify 1.0.0 with", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "current")))

    def test_prefetch_wrong_digest_installs_nothing(self):
        state, conf = self.prefetch_conf("pf3")
        r = self.cli("prefetch", "--version", "1.0.0", "--sha256", "2" * 64, conf=conf)[0]
        self.assert_exit(r, 1)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "current")))
        self.assertEqual(os.listdir(os.path.join(state, "releases")), [])

    def test_usage(self):
        self.assert_exit(self.fetch(self.http_url, "--sha256", "1" * 64), 2)
        self.assert_exit(self.fetch(self.http_url, "--sha256", "1" * 64, "-o", "a", "-x", "b"), 2)

    def test_prefetch_waits_for_the_state_dirs_lock(self):
        """One install at a time per state dir: a prefetch beside a boot once pruned
        the other's staging dir while it was being unpacked, and an empty release was
        marked verified (security review, finding 1)."""
        state, conf = self.prefetch_conf("pf4")
        os.makedirs(state)
        lock = os.open(os.path.join(state, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = {}
        t = threading.Thread(target=lambda: done.update(r=self.cli(
            "-v", "prefetch", "--version", "1.0.0", "--sha256", sha256(self.art),
            conf=conf)[0]))
        try:
            t.start()
            time.sleep(2)
            self.assertTrue(t.is_alive(), f"prefetch did not wait: {done}")
            self.assertFalse(os.path.exists(os.path.join(state, "current")),
                             "nothing installed while another process holds the lock")
            staging = os.path.join(state, "staging")
            self.assertEqual(os.listdir(staging) if os.path.isdir(staging) else [], [],
                             "nothing unpacked while another process holds the lock")
        finally:
            os.close(lock)
        t.join(60)
        self.assertFalse(t.is_alive(), "prefetch did not go on once the lock was free")
        self.assert_exit(done["r"], 0)
        self.assertIn("waiting for another asg-agent installing in", done["r"].stderr)
        self.assertTrue(os.path.isfile(os.path.join(state, "current", "README")))


if __name__ == "__main__":
    unittest.main()
