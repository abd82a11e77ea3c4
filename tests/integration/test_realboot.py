"""The packaged agent booted by a real systemd (PID 1 in systemd-nspawn) against the fake AWS.

Runs packaging/build-deb, then packaging/test-in-nspawn (unit mode, with a scale-in), when
the machine can: root, systemd-nspawn (systemd-container), dpkg-buildpackage (devscripts,
debhelper). Skipped otherwise, with the reason; also skipped in the sanitizer build and
when ASG_SKIP_REALBOOT is set (tests/run-all runs it once, in the plain build).
"""
import glob
import os
import shutil
import subprocess
import tempfile
import unittest

from agentlib import SRCDIR


def why_not():
    if os.environ.get("ASG_SKIP_REALBOOT"):
        return "ASG_SKIP_REALBOOT is set (run once per suite, in the plain build)"
    if os.environ.get("ASG_SANITIZERS") == "yes":
        return "sanitizer build: the package is built without sanitizers anyway"
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, overlay mounts)"
    for tool, pkg in (("systemd-nspawn", "systemd-container"),
                      ("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {pkg})"
    if not os.path.isdir("/run/systemd/system") and not os.path.exists("/lib/systemd/systemd"):
        return "no systemd on this machine to boot"
    return None


@unittest.skipIf(why_not() is not None, why_not() or "")
class RealBoot(unittest.TestCase):
    def test_packaged_agent_under_systemd(self):
        out = tempfile.mkdtemp(prefix="asg-deb-")
        try:
            b = subprocess.run([os.path.join(SRCDIR, "packaging", "build-deb"), out],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(b.returncode, 0, b.stdout[-3000:] + b.stderr[-3000:])
            debs = [d for d in glob.glob(os.path.join(out, "asg-agent_*.deb"))
                    if "dbgsym" not in d]
            self.assertEqual(len(debs), 1, os.listdir(out))
            r = subprocess.run([os.path.join(SRCDIR, "packaging", "test-in-nspawn"), debs[0],
                                "--mode", "unit", "--terminate"],
                               capture_output=True, text=True, timeout=600)
            for line in (r.stdout + r.stderr).splitlines()[-60:]:
                print(f"# {line}")
            self.assertEqual(r.returncode, 0, "the packaged boot under systemd failed")
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
