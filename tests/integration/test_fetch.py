"""`asg-agent fetch`: the verified pipeline for operators and image bakes."""
import hashlib
import http.server
import os
import threading
import unittest

from agentlib import TempDir, run, write
from bootlib import make_artifact, sha256
from harness import FakeAWS


class Fetch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = FakeAWS(auth=True)
        cls.f.start()
        cls.f.make_world(group="fetch-blue", version="1.0.0")
        cls.art = make_artifact({"README": b"hello\n"})
        cls.f.put_s3("bakes", "app/1.0.0.tar.gz", cls.art)
        cls.tmp = TempDir()
        cls.d = cls.tmp.__enter__()
        cls.conf = write(os.path.join(cls.d, "agent.conf"), "[aws]\napi_timeout = 10\n")
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
        cls.f.stop()
        cls.tmp.__exit__(None, None, None)

    def fetch(self, *args):
        return run(["-c", self.conf, "fetch", *args], env=self.f.agent_env(), timeout=60)

    def test_s3_unpack_verified(self):
        out = os.path.join(self.d, "x1")
        r = self.fetch("s3://bakes/app/1.0.0.tar.gz", "--sha256", sha256(self.art), "-x", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("digest-ok", r.stdout)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "hello\n")

    def test_http_to_file(self):
        out = os.path.join(self.d, "a.tar.gz")
        r = self.fetch(self.http_url, "--sha256", sha256(self.art), "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as fh:
            self.assertEqual(hashlib.sha256(fh.read()).hexdigest(), sha256(self.art))

    def test_mismatch_leaves_nothing(self):
        out = os.path.join(self.d, "x2")
        r = self.fetch("s3://bakes/app/1.0.0.tar.gz", "--sha256", "1" * 64, "-x", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assertFalse(os.path.exists(out))
        outf = os.path.join(self.d, "b.tar.gz")
        r = self.fetch(self.http_url, "--sha256", "1" * 64, "-o", outf)
        self.assertEqual(r.returncode, 1)
        self.assertEqual([n for n in os.listdir(self.d) if n.startswith("b.tar.gz")], [])

    def test_missing_object_is_a_clear_error(self):
        r = self.fetch("s3://bakes/app/9.9.9.tar.gz", "--sha256", "1" * 64, "-x",
                       os.path.join(self.d, "x3"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("NoSuchKey", r.stderr)

    def test_refuses_unverified(self):
        r = self.fetch(self.http_url, "-x", os.path.join(self.d, "x4"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("refusing an unverified artifact", r.stderr)
        r = self.fetch(self.http_url, "--allow-unverified", "-x", os.path.join(self.d, "x4"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def prefetch_conf(self, name):
        state = os.path.join(self.d, name)
        conf = write(os.path.join(self.d, f"{name}.conf"),
                     f"[agent]\nstate_dir = {state}\n[aws]\napi_timeout = 10\n"
                     "[artifact]\nurl = s3://bakes/app/{version}.tar.gz\n"
                     "[app]\ncommand = python3 app.py\n")
        return state, conf

    def test_prefetch_installs_without_starting(self):
        state, conf = self.prefetch_conf("pf1")
        r = run(["-c", conf, "prefetch", "--version", "1.0.0", "--sha256", sha256(self.art)],
                env=self.f.agent_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.readlink(os.path.join(state, "current")), "releases/1.0.0")
        self.assertTrue(os.path.isfile(os.path.join(state, "current", "README")))
        self.assertFalse(os.path.exists(os.path.join(state, "state.json")),
                         "prefetch leaves the boot's state alone")
        # A second prefetch finds it installed and downloads nothing.
        self.f.clear_requests()
        r = run(["-c", conf, "prefetch", "--version", "1.0.0", "--sha256", sha256(self.art)],
                env=self.f.agent_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([q for q in self.f.requests(target="aws", service="s3")], [])

    def test_prefetch_from_group_needs_a_digest(self):
        state, conf = self.prefetch_conf("pf2")
        r = run(["-c", conf, "prefetch", "--group", "fetch-blue"], env=self.f.agent_env(),
                timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing to verify 1.0.0 with", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "current")))

    def test_prefetch_wrong_digest_installs_nothing(self):
        state, conf = self.prefetch_conf("pf3")
        r = run(["-c", conf, "prefetch", "--version", "1.0.0", "--sha256", "2" * 64],
                env=self.f.agent_env(), timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "current")))
        self.assertEqual(os.listdir(os.path.join(state, "releases")), [])

    def test_usage(self):
        self.assertEqual(self.fetch(self.http_url, "--sha256", "1" * 64).returncode, 2)
        self.assertEqual(self.fetch(self.http_url, "--sha256", "1" * 64, "-o", "a", "-x",
                                    "b").returncode, 2)


if __name__ == "__main__":
    unittest.main()
