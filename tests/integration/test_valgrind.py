"""The happy-path boot (and status, fetch, aws) under valgrind memcheck: no errors, no leaks."""
import glob
import os
import shutil
import stat
import tempfile
import unittest

import agentlib
from bootlib import Agent, free_port, http_get, make_artifact, sha256, write_config
from harness import FakeAWS

VALGRIND = shutil.which("valgrind")


@unittest.skipIf(VALGRIND is None, "valgrind is not installed")
@unittest.skipIf(os.environ.get("ASG_SANITIZERS") == "yes",
                 "this build uses AddressSanitizer, which does not run under valgrind")
class Valgrind(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="asg-vg-")
        self.wrapper = os.path.join(self.dir, "asg-agent")
        # Every run of the binary goes through memcheck, each with a log of its own.
        with open(self.wrapper, "w") as fh:
            fh.write(f"#!/bin/sh\nexec {VALGRIND} -q --leak-check=full "
                     "--show-leak-kinds=definite --errors-for-leak-kinds=definite "
                     f"--log-file={self.dir}/vg.%p.log {agentlib.AGENT} \"$@\"\n")
        os.chmod(self.wrapper, stat.S_IRWXU)
        self.saved = agentlib.AGENT
        agentlib.AGENT = self.wrapper
        import bootlib
        bootlib.AGENT = self.wrapper

    def tearDown(self):
        import bootlib
        agentlib.AGENT = bootlib.AGENT = self.saved
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_happy_path_is_clean(self):
        art = make_artifact()
        with FakeAWS(auth=True) as f:
            f.put_s3("releases", "app/1.0.0.tar.gz", art)
            f.make_world(group="vg", version="1.0.0", sha256=sha256(art))
            app_port, health_port = free_port(), free_port()
            conf = write_config(os.path.join(self.dir, "a.conf"),
                                os.path.join(self.dir, "state"), app_port, health_port)
            a = Agent(conf, f.agent_env(), os.path.join(self.dir, "agent.log"))
            try:
                self.assertEqual(a.wait_status(timeout=120), 0, a.log_text())
                self.assertEqual(http_get(health_port, "/healthz")[0], 200)
                r = agentlib.run(["-c", conf, "aws", "ec2", "DescribeTags"],
                                 env=f.agent_env(), timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
            finally:
                self.assertEqual(a.stop(timeout=60), 0, a.log_text())
        logs = glob.glob(os.path.join(self.dir, "vg.*.log"))
        self.assertGreaterEqual(len(logs), 3, "run, status and aws all went through memcheck")
        reports = {p: open(p).read() for p in logs}
        bad = {p: t for p, t in reports.items() if t.strip()}
        self.assertEqual(bad, {}, "memcheck reported errors or definite leaks")


if __name__ == "__main__":
    unittest.main()
