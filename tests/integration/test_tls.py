"""HTTPS trust: the CA bundle comes from SSL_CERT_FILE when set, else the distribution's;
`asg-agent version` names it, and a verification failure's cause names it too. A local
TLS server on 127.0.0.1 with a private CA the test makes with the openssl CLI."""
import os
import subprocess
import unittest

from agentlib import AGENT, TempDir, clean_env, write
from bootlib import make_artifact, sha256
from tlsserver import TLSServer, make_ca, make_server_cert, openssl


class TLSTrust(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.d = d = cls.tmp.__enter__()
        cls.ca_key, cls.ca = make_ca(d, "private-ca")
        _, cls.other_ca = make_ca(d, "other-ca")
        key, cert = make_server_cert(d, cls.ca_key, cls.ca)
        cls.art = make_artifact({"README": b"over https\n"})
        # A signing key pair and the artifact's detached signature.
        sk, cls.pub = os.path.join(d, "sign.key"), os.path.join(d, "sign.pub")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sk, cwd=d)
        openssl("ec", "-in", sk, "-pubout", "-out", cls.pub, cwd=d)
        art = write(os.path.join(d, "app.tar.gz"), "")
        with open(art, "wb") as fh:
            fh.write(cls.art)
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sk, art], check=True,
                             capture_output=True).stdout
        cls.srv = TLSServer(cert, key, {"/app.tar.gz": cls.art, "/app.tar.gz.sig": sig})
        cls.url = f"https://127.0.0.1:{cls.srv.port}/app.tar.gz"
        cls.conf = write(os.path.join(d, "agent.conf"), "[aws]\napi_timeout = 10\n")
        cls.n = 0
        # The same over an RSA chain, as AWS's own endpoints present.
        rsa = os.path.join(d, "rsa")
        os.makedirs(rsa)
        rkey, cls.rsa_ca = make_ca(rsa, "rsa-ca", kind="rsa")
        skey, scert = make_server_cert(rsa, rkey, cls.rsa_ca, kind="rsa")
        cls.rsa_srv = TLSServer(scert, skey, {"/app.tar.gz": cls.art})

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        cls.rsa_srv.close()
        cls.tmp.__exit__(None, None, None)

    def setUp(self):
        self.srv.paths.clear()

    def agent(self, args, ca_file=None):
        """asg-agent with SSL_CERT_FILE set to ca_file, or with no SSL_CERT_* at all."""
        env = clean_env()
        env.pop("SSL_CERT_FILE", None)
        env.pop("SSL_CERT_DIR", None)
        if ca_file is not None:
            env["SSL_CERT_FILE"] = ca_file
        return subprocess.run([AGENT, "-c", self.conf, *args], env=env, capture_output=True,
                              text=True, timeout=60)

    def fetch(self, ca_file=None):
        type(self).n += 1
        out = os.path.join(self.d, f"x{self.n}")
        r = self.agent(["fetch", self.url, "--sha256", sha256(self.art), "-x", out], ca_file)
        return r, out

    def default_bundle(self):
        r = self.agent(["version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("CA bundle: ")]
        self.assertEqual(len(lines), 1, r.stdout)
        return lines[0][len("CA bundle: "):]

    # -- version -----------------------------------------------------------------------
    def test_version_names_ssl_cert_file(self):
        r = self.agent(["version"], ca_file=self.ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"\nCA bundle: {self.ca}\n", r.stdout)

    def test_version_names_the_distribution_bundle_without_ssl_cert_file(self):
        paths = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                 "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"]
        present = [p for p in paths if os.access(p, os.R_OK)]
        want = present[0] if present else "none found (set SSL_CERT_FILE)"
        self.assertEqual(self.default_bundle(), want)

    # -- fetch -------------------------------------------------------------------------
    def test_fetch_trusts_ssl_cert_file(self):
        r, out = self.fetch(ca_file=self.ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("digest-ok", r.stdout)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "over https\n")
        self.assertEqual(self.srv.paths, ["/app.tar.gz"])

    def test_fetch_trusts_an_rsa_chain(self):
        type(self).n += 1
        out = os.path.join(self.d, f"x{self.n}")
        url = f"https://127.0.0.1:{self.rsa_srv.port}/app.tar.gz"
        r = self.agent(["fetch", url, "--sha256", sha256(self.art), "-x", out], self.rsa_ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "over https\n")

    def assert_refused(self, r, out):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"GET {self.url}: SSL certificate problem: unable to get local issuer "
                      "certificate", r.stderr)
        self.assertEqual(self.srv.paths, [], "no request may be sent over an untrusted connection")
        self.assertFalse(os.path.exists(out), "nothing unpacked")

    def test_fetch_refused_without_ssl_cert_file(self):
        r, out = self.fetch()
        self.assert_refused(r, out)

    def test_fetch_refused_with_another_ca(self):
        r, out = self.fetch(ca_file=self.other_ca)
        self.assert_refused(r, out)

    # These two fail as of 86672b0: only http_do()'s fail() adds "(CA bundle: ...)" to
    # the cause; the streaming download (http_stream_open -> stream_pump), which every
    # artifact goes through, reports curl's message alone.
    def test_artifact_refusal_names_the_bundle(self):
        bundle = self.default_bundle()
        r, _ = self.fetch()
        self.assertIn(f"(CA bundle: {bundle}; SSL_CERT_FILE names another)", r.stderr)
        r, _ = self.fetch(ca_file=self.other_ca)
        self.assertIn(f"(CA bundle: {self.other_ca}; SSL_CERT_FILE names another)", r.stderr)

    def test_artifact_with_a_missing_ssl_cert_file_names_it(self):
        missing = os.path.join(self.d, "no-such-bundle.pem")
        r, out = self.fetch(ca_file=missing)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(self.srv.paths, [])
        self.assertFalse(os.path.exists(out))
        self.assertIn(f"(CA bundle: {missing}; SSL_CERT_FILE names another)", r.stderr)

    # -- a signature over HTTPS (fetched whole, before the artifact) --------------------
    def signed_fetch(self, ca_file):
        type(self).n += 1
        out = os.path.join(self.d, f"x{self.n}")
        r = self.agent(["fetch", self.url, "--signature", self.url + ".sig",
                        "--public-key", self.pub, "-x", out], ca_file)
        return r, out

    def test_signature_over_https_trusts_ssl_cert_file(self):
        r, out = self.signed_fetch(self.ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("signature", r.stdout)
        with open(os.path.join(out, "README")) as fh:
            self.assertEqual(fh.read(), "over https\n")
        self.assertEqual(self.srv.paths, ["/app.tar.gz.sig", "/app.tar.gz"])

    def test_signature_refusal_names_the_bundle(self):
        r, out = self.signed_fetch(self.other_ca)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"GET {self.url}.sig: SSL certificate problem", r.stderr)
        self.assertIn(f"(CA bundle: {self.other_ca}; SSL_CERT_FILE names another)", r.stderr)
        self.assertEqual(self.srv.paths, [])
        self.assertFalse(os.path.exists(out))
        bundle = self.default_bundle()
        r, out = self.signed_fetch(None)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"(CA bundle: {bundle}; SSL_CERT_FILE names another)", r.stderr)

if __name__ == "__main__":
    unittest.main()
