"""The static binaries (packaging/build-static) where the dynamic build cannot go.

- Binaries: no program interpreter, no shared library, the right machine, and
  `version` names every bundled library's Debian source.
- EmptyRoot: the x86_64 binary boots inside a chroot (in a mount namespace of
  its own, with /proc) that holds only the binary, its config, /etc/resolv.conf
  and a CA bundle at Amazon Linux's path; nothing under /lib, /lib64, /usr/lib.
  The artifact comes over HTTPS from a private CA that only that bundle knows.
- Aarch64: the arm64 binary boots under qemu-user against the same fake AWS.

ASG_STATIC_X86_64 and ASG_STATIC_AARCH64 name the binaries (tests/run-all sets
them after building); a test whose binary is not given is skipped, saying so.
"""
import os
import shutil
import subprocess
import unittest

from bootlib import Agent, free_ports, http_get, tar_gz, write_config
from fakecase import FakeAWSCase
from tlsserver import TLSServer, make_ca, make_server_cert

X86_64 = os.environ.get("ASG_STATIC_X86_64", "")
AARCH64 = os.environ.get("ASG_STATIC_AARCH64", "")
SRCDIR = os.environ.get("ASG_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
AMAZON_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"
LIBRARIES = ("openssl", "curl", "zlib", "expat", "json-c", "libzstd", "libarchive", "libinih")


def readelf(path, *flags):
    return subprocess.run(["readelf", *flags, path], capture_output=True, text=True,
                          check=True).stdout


def need(path, name):
    if not path:
        raise unittest.SkipTest(f"{name} not given (packaging/build-static builds it)")
    if not os.path.isfile(path):
        raise unittest.SkipTest(f"{name}={path} does not exist")


def qemu():
    q = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if q is None:
        raise unittest.SkipTest("no qemu-aarch64-static (Debian package qemu-user-static)")
    return q


class Binaries(unittest.TestCase):
    def check_static(self, path, machine):
        headers = readelf(path, "-lhd")
        self.assertIn(machine, readelf(path, "-h"))
        self.assertNotIn("INTERP", headers, "a static binary has no program interpreter")
        self.assertNotIn("(NEEDED)", headers, "a static binary needs no shared library")
        # Configured for the packages: the default configuration is /etc's, not /usr/local's.
        with open(path, "rb") as f:
            image = f.read()
        self.assertIn(b"/etc/asg-agent/agent.conf", image)
        self.assertNotIn(b"/usr/local/etc", image)
        print(f"# {os.path.basename(os.path.dirname(path))}: {os.path.getsize(path)} bytes")

    def check_version(self, out):
        self.assertIn("bundled, built from Debian's source packages:", out)
        for lib in LIBRARIES:
            self.assertRegex(out, rf"(?m)^{lib} \S+ \(", f"{lib} missing from:\n{out}")
        self.assertRegex(out, r"(?m)^CA bundle: ")

    def test_x86_64(self):
        need(X86_64, "ASG_STATIC_X86_64")
        self.check_static(X86_64, "X86-64")
        r = subprocess.run([X86_64, "version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_version(r.stdout)

    def test_aarch64(self):
        need(AARCH64, "ASG_STATIC_AARCH64")
        self.check_static(AARCH64, "AArch64")
        r = subprocess.run([qemu(), AARCH64, "version"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_version(r.stdout)


def build_tinyapp(out):
    """bench/fleet.d/tinyapp.c linked statically: an app that runs in an empty root."""
    cc = shutil.which("musl-gcc") or shutil.which("cc")
    r = subprocess.run([cc, "-static", "-O2", "-o", out,
                        os.path.join(SRCDIR, "bench", "fleet.d", "tinyapp.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise unittest.SkipTest(f"cannot link a static test app: {r.stderr.strip()}")
    return out


class EmptyRoot(FakeAWSCase):
    prefix = "empty"

    def setUp(self):
        need(X86_64, "ASG_STATIC_X86_64")
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("needs root and unshare(1) for a mount namespace and chroot")
        super().setUp()

    def make_root(self, ca_cert):
        """The root the agent sees: its binary, config dir, resolv.conf, a CA bundle."""
        root = os.path.join(self.dir, "root")
        for d in ("etc/asg-agent", "etc/pki/tls/certs", "var/lib/asg-agent", "proc", "tmp"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(X86_64, os.path.join(root, "asg-agent"))
        with open(os.path.join(root, "etc/resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\n")
        shutil.copy(ca_cert, os.path.join(root, AMAZON_BUNDLE.lstrip("/")))
        return root

    def chroot_cmd(self, root):
        # /proc is the kernel's, mounted in a namespace of our own; nothing else comes along.
        return ["unshare", "--mount", "--", "sh", "-c",
                'mount -t proc proc "$0/proc" && exec chroot "$0" /asg-agent "$@"', root]

    def start_in_root(self, version, art, bundle=True):
        """A world whose artifact is served over HTTPS by a private CA, and the agent
        booting it inside the root; (world, root, server, agent). bundle=False
        leaves the CA bundle out of the root."""
        tls = os.path.join(self.dir, "tls")
        os.makedirs(tls)
        ca_key, ca = make_ca(tls, "private-ca")
        key, cert = make_server_cert(tls, ca_key, ca)
        w, _ = self.world(version=version, art=art, upload=False)
        root = self.make_root(ca)
        if not bundle:
            os.unlink(os.path.join(root, AMAZON_BUNDLE.lstrip("/")))
        srv = TLSServer(cert, key, {f"/app-{version}.tar.gz": art})
        self.addCleanup(srv.close)
        self.app_port, self.health_port = free_ports(2)
        write_config(os.path.join(root, "etc/asg-agent/agent.conf"), "/var/lib/asg-agent",
                     self.app_port, self.health_port,
                     f"[artifact]\nurl = {srv.url('/app-{version}.tar.gz')}\n"
                     f"[app]\ncommand = ./tinyapp {self.app_port}\n")
        env = self.f.agent_env()
        for k in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            env.pop(k, None)
        a = Agent("/etc/asg-agent/agent.conf", env, os.path.join(self.dir, "agent.log"),
                  cmd=self.chroot_cmd(root))
        self.agents.append(a)
        return w, root, srv, a

    def test_boot_in_empty_root(self):
        app = build_tinyapp(os.path.join(self.dir, "tinyapp"))
        with open(app, "rb") as f:
            art = tar_gz([{"name": "tinyapp", "data": f.read(), "mode": 0o755}])
        w, root, srv, a = self.start_in_root("3.1.4", art)
        self.assertEqual(sorted(os.listdir(root)), ["asg-agent", "etc", "proc", "tmp", "var"])
        code = a.wait_status(timeout=60)
        st = a.status_json()
        self.assertEqual(code, 0, a.log_text())
        self.assertEqual(st["phase"], "serving")
        self.assertEqual(st["version"], "3.1.4")
        self.assertEqual(srv.paths, ["/app-3.1.4.tar.gz"], "the artifact came over HTTPS")
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 200)
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"])
        r = subprocess.run(a.cmd + ["version"], capture_output=True, text=True, env=a.env,
                           timeout=30)
        self.assertIn(f"CA bundle: {AMAZON_BUNDLE}", r.stdout, r.stderr)
        self.assertEqual(a.stop(), 0, a.log_text())

    def test_no_bundle_no_https(self):
        """The same root without its CA bundle: the artifact is refused and the cause says why."""
        art = tar_gz([{"name": "tinyapp", "data": b"#!/bin/false\n", "mode": 0o755}])
        w, root, srv, a = self.start_in_root("3.1.5", art, bundle=False)
        self.assertEqual(a.wait_status(timeout=60), 1, a.log_text())
        st = a.status_json()
        self.assertIn("CA bundle: none found", st["error"] or "", st)
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["ABANDON"])
        self.assertFalse(os.path.exists(os.path.join(root, "var/lib/asg-agent/current")))


class Aarch64(FakeAWSCase):
    prefix = "arm"

    def setUp(self):
        need(AARCH64, "ASG_STATIC_AARCH64")
        self.qemu = qemu()
        super().setUp()

    def test_boot_under_qemu(self):
        w, _ = self.world(version="2.7.1")
        self.app_port, self.health_port = free_ports(2)
        conf = write_config(os.path.join(self.dir, "agent.conf"), self.state, self.app_port,
                            self.health_port)
        a = Agent(conf, self.f.agent_env(), os.path.join(self.dir, "agent.log"),
                  cmd=[self.qemu, AARCH64])
        self.agents.append(a)
        code = a.wait_status(timeout=90)
        self.assertEqual(code, 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "serving")
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 200)
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"])
        self.assertEqual(a.stop(), 0, a.log_text())


if __name__ == "__main__":
    unittest.main()
