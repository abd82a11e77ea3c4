"""./bootstrap's choice of the Python the fake AWS and the tests run with.

With an interpreter that has moto, boto3 and botocore it is used as it is;
with one that lacks them (the system's /usr/bin/python3 on a fresh Debian 12)
bootstrap makes a virtual environment and installs tests/requirements.txt, and
when no package index answers it stops at once with a message that says what
is missing and how to provide it, not with a traceback later. The index here
is a closed port on 127.0.0.1; the environment goes to the test's own
directory, and the test never lets bootstrap install Debian packages.
"""
import os
import shutil
import socket
import subprocess
import sys
import unittest

from agentlib import SRCDIR, TempDir

BOOTSTRAP = os.path.join(SRCDIR, "bootstrap")
SYSTEM_PYTHON = "/usr/bin/python3"
IMPORTS = "import moto, boto3, botocore"


def missing_packages():
    pkgs = subprocess.run([BOOTSTRAP, "packages"], capture_output=True, text=True,
                          check=True).stdout.split()
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package}:${Status}\n", *pkgs],
                       capture_output=True, text=True)
    ok = {line.split(":")[0] for line in r.stdout.splitlines() if "ok installed" in line}
    return [p for p in pkgs if p.split(":")[0] not in ok]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bootstrap(unittest.TestCase):
    def setUp(self):
        if shutil.which("dpkg-query") is None:
            self.skipTest("not a Debian machine")
        missing = missing_packages()
        if missing:
            self.skipTest(f"bootstrap would install Debian packages first: {missing}")

    def env(self, python, pyenv, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PIP_") and k not in ("PYTHON", "ASG_PYTHON", "ASG_PYENV")}
        env.update(ASG_PYTHON=python, ASG_PYENV=pyenv, **extra)
        return env

    def test_no_index_stops_with_a_clear_message(self):
        if not os.path.exists(SYSTEM_PYTHON):
            self.skipTest(f"no {SYSTEM_PYTHON}")
        if subprocess.run([SYSTEM_PYTHON, "-c", IMPORTS], capture_output=True).returncode == 0:
            self.skipTest(f"{SYSTEM_PYTHON} already has moto: nothing to install")
        with TempDir() as d:
            pyenv = os.path.join(d, "pyenv")
            index = f"http://127.0.0.1:{closed_port()}/simple"
            for what in ("demo", "check"):
                r = subprocess.run([BOOTSTRAP, what], capture_output=True, text=True,
                                   timeout=300, env=self.env(SYSTEM_PYTHON, pyenv,
                                                             PIP_INDEX_URL=index))
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, 1, out)
                self.assertIn("cannot install the Python packages the fake AWS and the tests "
                              "need", r.stderr)
                self.assertIn("moto[server] 5.2.1", r.stderr)
                self.assertIn("Connection refused", r.stderr)
                self.assertIn(f"PIP_INDEX_URL=https://your-index/simple ./bootstrap {what}",
                              r.stderr)
                self.assertIn("PIP_FIND_LINKS=/path/to/wheels PIP_NO_INDEX=1", r.stderr)
                self.assertNotIn("Traceback", out)
                self.assertFalse(os.path.exists(pyenv), "no half-made environment is left")
                self.assertNotIn("== build", out, "nothing was built or run")

    def test_an_interpreter_with_moto_is_used_as_it_is(self):
        if subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True).returncode:
            self.skipTest(f"{sys.executable} lacks moto")
        with TempDir() as d:
            pyenv = os.path.join(d, "pyenv")
            r = subprocess.run([BOOTSTRAP, "python"], capture_output=True, text=True, timeout=120,
                               env=self.env(sys.executable, pyenv))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), sys.executable)
            self.assertFalse(os.path.exists(pyenv), "no environment is made when none is needed")

    def test_the_environment_is_reused(self):
        """A filled environment from an earlier run is taken without installing again."""
        if subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True).returncode:
            self.skipTest(f"{sys.executable} lacks moto")
        with TempDir() as d:
            # A stand-in environment whose python3 is this interpreter (which has moto).
            pyenv = os.path.join(d, "pyenv")
            os.makedirs(os.path.join(pyenv, "bin"))
            os.symlink(sys.executable, os.path.join(pyenv, "bin", "python3"))
            nomoto = os.path.join(d, "nomoto")
            with open(nomoto, "w") as f:
                f.write("#!/bin/sh\nexit 1\n")
            os.chmod(nomoto, 0o755)
            r = subprocess.run([BOOTSTRAP, "python"], capture_output=True, text=True, timeout=120,
                               env=self.env(nomoto, pyenv,
                                            PIP_INDEX_URL=f"http://127.0.0.1:{closed_port()}/"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), os.path.join(pyenv, "bin", "python3"))
            self.assertNotIn("installing", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
