"""The happy-path boot (and status, fetch, aws) under valgrind memcheck: no errors, no leaks."""
import glob
import os
import shutil
import stat
import unittest

import agentlib
import bootlib
from bootlib import http_get
from fakecase import FakeAWSCase

VALGRIND = shutil.which("valgrind")


@unittest.skipIf(VALGRIND is None, "valgrind is not installed")
@unittest.skipIf(os.environ.get("ASG_SANITIZERS") == "yes",
                 "this build uses AddressSanitizer, which does not run under valgrind")
class Valgrind(FakeAWSCase):
    prefix = "vg"

    def setUp(self):
        super().setUp()
        self.wrapper = os.path.join(self.dir, "asg-agent")
        # Every run of the binary goes through memcheck, each with a log of its own.
        with open(self.wrapper, "w") as fh:
            fh.write(f"#!/bin/sh\nexec {VALGRIND} -q --leak-check=full "
                     "--show-leak-kinds=definite --errors-for-leak-kinds=definite "
                     f"--log-file={self.dir}/vg.%p.log {agentlib.AGENT} \"$@\"\n")
        os.chmod(self.wrapper, stat.S_IRWXU)
        self.saved = agentlib.AGENT
        agentlib.AGENT = bootlib.AGENT = self.wrapper

    def tearDown(self):
        agentlib.AGENT = bootlib.AGENT = self.saved
        super().tearDown()

    def test_happy_path_is_clean(self):
        self.world()
        a = self.start()
        try:
            self.assertEqual(a.wait_status(timeout=120), 0, a.log_text())
            self.assertEqual(http_get(self.health_port, "/healthz")[0], 200)
            r, _ = self.cli("aws", "ec2", "DescribeTags", conf=a.config, timeout=120)
            self.assert_exit(r, 0)
        finally:
            self.assertEqual(a.stop(timeout=60), 0, a.log_text())
        logs = glob.glob(os.path.join(self.dir, "vg.*.log"))
        self.assertGreaterEqual(len(logs), 3, "run, status and aws all went through memcheck")
        reports = {p: open(p).read() for p in logs}
        bad = {p: t for p, t in reports.items() if t.strip()}
        self.assertEqual(bad, {}, "memcheck reported errors or definite leaks")


if __name__ == "__main__":
    unittest.main()
