"""The packaged agent booted by a real systemd (PID 1 in systemd-nspawn) against the fake AWS.

Runs packaging/build-deb --binary STATIC (the package of the static binary: ASG_STATIC_BINARY
when it is set, else build-static/x86_64/asg-agent from packaging/build-static x86_64), then
packaging/test-in-nspawn twice (unit mode: with a scale-in; and powered off while serving),
when the machine can: root, systemd-nspawn (systemd-container), dpkg-buildpackage and dh
(dpkg-dev, debhelper), and a static binary for this machine's architecture. Skipped otherwise, with the reason; also
skipped in the sanitizer build and when ASG_SKIP_REALBOOT is set (tests/run-all runs it
once, in the plain build).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from agentlib import SRCDIR

STATIC_DEFAULT = os.path.join(SRCDIR, "build-static", "x86_64", "asg-agent")
# e_machine of the ELF header -> Debian architecture.
DEB_ARCH = {62: "amd64", 183: "arm64"}


def static_binary():
    """(path, None), or (None, why there is none)."""
    path = os.environ.get("ASG_STATIC_BINARY")
    if path:
        if not os.path.isfile(path):
            return None, f"ASG_STATIC_BINARY={path} does not exist"
        return os.path.abspath(path), None
    if not os.path.isfile(STATIC_DEFAULT):
        return None, ("no static binary to package: set ASG_STATIC_BINARY=/path, or make "
                      f"{STATIC_DEFAULT} (packaging/build-static x86_64)")
    return STATIC_DEFAULT, None


def deb_arch(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return DEB_ARCH.get(int.from_bytes(head[18:20], "little" if head[5] == 1 else "big"))


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
    binary, why = static_binary()
    if binary is None:
        return why
    host = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    arch = deb_arch(binary)
    if arch != host:
        return f"{binary} is not a static binary for this machine ({arch or 'not ELF'}, not {host})"
    return None


@unittest.skipIf(why_not() is not None, why_not() or "")
class RealBoot(unittest.TestCase):
    def test_packaged_agent_under_systemd(self):
        self.boot("--mode", "unit", "--terminate")

    def test_power_off_while_serving(self):
        # systemd stops the agent: the app unit (Before= the agent) must be stopped after
        # it, not waited for by it (test-in-nspawn fails on "stopping the app" in the journal).
        self.boot("--mode", "unit")

    def boot(self, *opts):
        out = tempfile.mkdtemp(prefix="asg-deb-")
        try:
            binary, _ = static_binary()
            b = subprocess.run([os.path.join(SRCDIR, "packaging", "build-deb"),
                                "--binary", binary, out],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(b.returncode, 0, b.stdout[-3000:] + b.stderr[-3000:])
            debs = [d for d in glob.glob(os.path.join(out, "asg-agent_*.deb"))
                    if "dbgsym" not in d]
            self.assertEqual(len(debs), 1, os.listdir(out))
            # This interpreter, not the script's #!: the one bootstrap chose has moto.
            r = subprocess.run([sys.executable, os.path.join(SRCDIR, "packaging", "test-in-nspawn"),
                                debs[0], *opts],
                               capture_output=True, text=True, timeout=600)
            for line in (r.stdout + r.stderr).splitlines()[-60:]:
                print(f"# {line}")
            self.assertEqual(r.returncode, 0, "the packaged boot under systemd failed")
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
