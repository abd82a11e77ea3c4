"""Nothing parsed before it is verified: staged artifacts, chunk manifests, hostile archives."""
import os
import subprocess
import sys
import unittest

from agentlib import AGENT, clean_env, write
from bootlib import make_artifact, sha256
from byteserver import ByteServer
from fakecase import FakeAWSCase
from manifestlib import make_manifest, pin, random_files, sparse_bomb

CHUNK = 64 * 1024
RSS_BOUND_KIB = 64 * 1024   # a safety property, not a timing: generous on purpose
# The agent's own peak RSS: a child of this (large) Python process would inherit its
# high-water mark through fork and exec, so a bare interpreter spawns the agent and
# prints the rusage wait4 gives for it as its last line.
RUSAGE_WRAPPER = """import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, st, ru = os.wait4(pid, 0)
sys.stderr.write("\\nmaxrss %d\\n" % ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(st))
"""


class VerifiedFetch(FakeAWSCase):
    prefix = "vfetch"
    # One connection unless a test asks for more (self.parallel()).
    config = "[aws]\napi_timeout = 10\n[artifact]\nconnections = 1\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.f.make_world(group="vfetch-blue", version="1.0.0")
        # Incompressible files: the tar.gz spans several 64 KiB chunks.
        cls.files = random_files(4, 60000)
        cls.art = make_artifact(cls.files)
        cls.man = make_manifest(cls.art, CHUNK)
        cls.f.put_s3("vfetch", "app.tar.gz", cls.art)
        cls.f.put_s3("vfetch", "app.tar.gz.manifest", cls.man)
        cls.srv = ByteServer({"/a.tar.gz": cls.art, "/a.tar.gz.manifest": cls.man})
        cls.http = cls.srv.url("")

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        super().tearDownClass()

    def fetch(self, *args, conf=None):
        return self.cli("fetch", *args, conf=conf)[0]

    def parallel(self, n=3):
        """A config fetching n chunks at once."""
        return write(os.path.join(self.dir, f"p{n}.conf"),
                     f"[aws]\napi_timeout = 10\n[artifact]\nconnections = {n}\n")

    def assert_unpacked(self, out):
        for name, data in self.files.items():
            with open(os.path.join(out, name), "rb") as fh:
                self.assertEqual(sha256(fh.read()), sha256(data), name)

    def assert_nothing_left(self, out):
        """No release directory and no staging file beside it."""
        parent, base = os.path.split(out)
        left = [n for n in os.listdir(parent) if n.startswith(base)]
        self.assertEqual(left, [], f"left in {parent}")

    def test_manifest_streams_verified_chunks(self):
        out = os.path.join(self.dir, "m1")
        r = self.fetch("s3://vfetch/app.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 0)
        self.assertIn(f"sha256 {sha256(self.art)} digest-ok", r.stdout)
        self.assert_unpacked(out)
        self.assertGreater(len(self.art), 3 * CHUNK, "the artifact spans several chunks")

    def test_manifest_over_http_and_to_a_file(self):
        out = os.path.join(self.dir, "m2")
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        outf = os.path.join(self.dir, "m2.tar.gz")
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pin(self.man), "-o", outf)
        self.assert_exit(r, 0)
        with open(outf, "rb") as fh:
            self.assertEqual(sha256(fh.read()), sha256(self.art))

    def test_manifest_with_a_wrong_digest_is_refused_before_parsing(self):
        # Garbage under the right name: a parse error would show it was parsed first.
        self.f.put_s3("vfetch", "bad.tar.gz", self.art)
        self.f.put_s3("vfetch", "bad.tar.gz.manifest", b"not a manifest at all\n")
        out = os.path.join(self.dir, "m3")
        r = self.fetch("s3://vfetch/bad.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 1)
        self.assertIn("manifest: sha256 mismatch", r.stderr)
        self.assertNotIn("asg-agent-manifest", r.stderr)
        self.assertEqual(self.s3_gets("bad.tar.gz"), [], "the artifact is never asked for")
        self.assert_nothing_left(out)

    def test_a_corrupted_chunk_is_refused_at_that_chunk(self):
        bad = bytearray(self.art)
        bad[2 * CHUNK + 100] ^= 0xff
        self.f.put_s3("vfetch", "corrupt.tar.gz", bytes(bad))
        self.f.put_s3("vfetch", "corrupt.tar.gz.manifest", self.man)
        out = os.path.join(self.dir, "m4")
        r = self.fetch("s3://vfetch/corrupt.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 1)
        self.assertIn(f"chunk 2 (bytes {2 * CHUNK}-{3 * CHUNK - 1}) does not match the "
                      "manifest", r.stderr)
        self.assert_nothing_left(out)

    def test_a_short_artifact_is_refused(self):
        self.f.put_s3("vfetch", "short.tar.gz", self.art[:3 * CHUNK])
        self.f.put_s3("vfetch", "short.tar.gz.manifest", self.man)
        out = os.path.join(self.dir, "m5")
        r = self.fetch("s3://vfetch/short.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 1)
        self.assertIn(f"ends at byte {3 * CHUNK}, the manifest says {len(self.art)}",
                      r.stderr)
        self.assert_nothing_left(out)

    def test_signed_manifest(self):
        key, pub = self.keypair("m")
        self.f.put_s3("vfetch", "app.tar.gz.manifest.sig", self.sign(key, self.man))
        out = os.path.join(self.dir, "m6")
        r = self.fetch("s3://vfetch/app.tar.gz", "--sha256", pin(self.man), "--signature",
                       "s3://vfetch/app.tar.gz.sig", "--public-key", pub, "-x", out)
        self.assert_exit(r, 0)
        self.assertIn("digest-ok signature-ok", r.stdout)
        other, _ = self.keypair("other")
        self.f.put_s3("vfetch", "app.tar.gz.manifest.sig", self.sign(other, self.man))
        out = os.path.join(self.dir, "m7")
        r = self.fetch("s3://vfetch/app.tar.gz", "--sha256", pin(self.man), "--signature",
                       "s3://vfetch/app.tar.gz.sig", "--public-key", pub, "-x", out)
        self.assert_exit(r, 1)
        self.assertIn("manifest: signature does not verify", r.stderr)
        self.assert_nothing_left(out)

    def test_a_cut_mid_chunk_resumes(self):
        self.f.fault(kind="truncate", service="s3", path=r"/vfetch/app\.tar\.gz$",
                     bytes=CHUNK + CHUNK // 2, count=1)
        out = os.path.join(self.dir, "m8")
        r = self.fetch("s3://vfetch/app.tar.gz", "--sha256", pin(self.man), "-x", out)
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        self.assertEqual(len(self.s3_gets("app.tar.gz")), 2, "one cut, one resume")

    def test_an_origin_shedding_load_is_asked_again(self):
        # An origin or CDN answering 503 or 429 in a scale-out: the first GET of the whole
        # file, of a chunk, or of the manifest failed the boot (every instance ABANDONed).
        for n, (path, status, pinned, conf) in enumerate((
                ("/a.tar.gz", 503, sha256(self.art), None),
                ("/a.tar.gz", 429, pin(self.man), self.parallel(2)),
                ("/a.tar.gz.manifest", 503, pin(self.man), None))):
            with self.subTest(path=path, status=status):
                out = os.path.join(self.dir, f"shed{n}")
                del self.srv.gets[:]
                self.srv.fail(path, status)
                r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pinned, "-x", out, conf=conf)
                self.assert_exit(r, 0)
                self.assert_unpacked(out)
                self.assertEqual(self.srv.fails[path][1], 0, "the failure was answered")

    def test_an_origin_refusing_is_not_asked_again(self):
        out = os.path.join(self.dir, "refused")
        del self.srv.gets[:]
        self.srv.fail("/a.tar.gz", 403)
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", sha256(self.art), "-x", out)
        self.assert_exit(r, 1)
        self.assertIn("HTTP 403", r.stderr)
        self.assertEqual([p for p, _ in self.srv.gets], ["/a.tar.gz"])
        self.assert_nothing_left(out)

    def test_a_presigned_query_and_a_password_stay_secret(self):
        # A presigned URL's query signs for whoever holds it, userinfo is a password: a
        # failing GET said both in its error, which reached the journal, state.json and
        # `status` (readable by more people than the instance profile).
        port = self.http.rsplit(":", 1)[1]
        url = (f"http://deploy:pa55word@127.0.0.1:{port}/gone.tar.gz"
               "?X-Amz-Signature=5ec2e75ec2e7&X-Amz-Security-Token=T0KEN")
        secrets = ("pa55word", "5ec2e75ec2e7", "T0KEN")
        r = self.fetch(url, "--sha256", sha256(self.art), "-x", os.path.join(self.dir, "gone"))
        self.assert_exit(r, 1)
        self.assertIn("HTTP 404", r.stderr)
        self.assertIn("(query withheld)", r.stderr)
        for s in secrets:
            self.assertNotIn(s, r.stderr)
        # A good fetch's report line too (cloud-init's log keeps it).
        ok = "/ok.tar.gz?X-Amz-Signature=5ec2e75ec2e7"
        self.srv.served[ok] = self.art
        self.addCleanup(self.srv.served.pop, ok, None)
        r = self.fetch(self.http + ok, "--sha256", sha256(self.art), "-x",
                       os.path.join(self.dir, "ok"))
        self.assert_exit(r, 0)
        self.assertNotIn("5ec2e75ec2e7", r.stdout + r.stderr)
        self.assertIn("ok.tar.gz?(query withheld)", r.stdout)
        w, _ = self.world()
        a = self.start(f"[artifact]\nurl = {url}\n")
        self.assert_failed(a, w, "HTTP 404")
        shown = {"log": a.log_text(), "status": a.status().stdout,
                 "status --json": a.status("--json").stdout}
        with open(os.path.join(self.state, "state.json")) as fh:
            shown["state.json"] = fh.read()
        for where, text in shown.items():
            for s in secrets:
                self.assertNotIn(s, text, f"{s} in {where}:\n{text}")
        self.assertIn("127.0.0.1:%s/gone.tar.gz?(query withheld)" % port, shown["status"])

    def test_prefetch_with_a_manifest_pin_is_reused(self):
        self.f.put_s3("vfetch", "rel/1.0.0.tar.gz", self.art)
        self.f.put_s3("vfetch", "rel/1.0.0.tar.gz.manifest", self.man)
        state = os.path.join(self.dir, "state")
        conf = write(os.path.join(self.dir, "pf.conf"),
                     f"[agent]\nstate_dir = {state}\n[aws]\napi_timeout = 10\n"
                     "[artifact]\nurl = s3://vfetch/rel/{version}.tar.gz\n"
                     "[app]\ncommand = python3 app.py\n")
        gets = []
        for _ in range(2):
            r = self.cli("prefetch", "--version", "1.0.0", "--sha256", pin(self.man),
                         conf=conf)[0]
            self.assert_exit(r, 0)
            self.assert_unpacked(os.path.join(state, "current"))
            gets.append(len(self.s3_gets("rel/1.0.0.tar.gz")))
        self.assertGreater(gets[0], 0)
        self.assertEqual(gets[1], gets[0],
                         "downloaded once, then found installed under the same pin")

    def test_parallel_ranged_gets_over_http(self):
        out = os.path.join(self.dir, "p1")
        del self.srv.gets[:]
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pin(self.man), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        n = (len(self.art) + CHUNK - 1) // CHUNK
        want = {f"bytes={i * CHUNK}-{min((i + 1) * CHUNK, len(self.art)) - 1}"
                for i in range(n)}
        got = {rng for path, rng in self.srv.gets if path == "/a.tar.gz"}
        self.assertEqual(got, want, "one ranged GET per chunk")
        outf = os.path.join(self.dir, "p1.tar.gz")
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pin(self.man), "-o", outf,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        with open(outf, "rb") as fh:
            self.assertEqual(sha256(fh.read()), sha256(self.art), "-o FILE in parallel")

    def test_parallel_s3_cut_mid_chunk_resumes_that_chunk(self):
        self.f.fault(kind="truncate", service="s3", path=r"/vfetch/app\.tar\.gz$",
                     bytes=CHUNK // 2, count=1)
        out = os.path.join(self.dir, "p2")
        r = self.fetch("s3://vfetch/app.tar.gz", "--sha256", pin(self.man), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        n = (len(self.art) + CHUNK - 1) // CHUNK
        self.assertEqual(len(self.s3_gets("app.tar.gz")), n + 1,
                         f"{n} chunks, one of them cut and resumed")

    def test_parallel_http_cut_resumes_that_chunk(self):
        out = os.path.join(self.dir, "p3")
        del self.srv.gets[:]
        self.srv.cut("/a.tar.gz", 40000)
        r = self.fetch(f"{self.http}/a.tar.gz", "--sha256", pin(self.man), "-x", out,
                       conf=self.parallel(2))
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        ranges = [rng for path, rng in self.srv.gets if path == "/a.tar.gz"]
        n = (len(self.art) + CHUNK - 1) // CHUNK
        # The cut chunk is asked for again: from where it broke, or (when curl saw the
        # cut before handing over a byte) from its start; either way inside its range.
        self.assertEqual(len(ranges), n + 1, f"{n} chunks and one resume: {ranges}")
        ends = [rng.split("-")[1] for rng in ranges]
        self.assertEqual(len(set(ends)), n, f"the resume ends where its chunk ends: {ranges}")

    def test_parallel_corrupted_chunk_is_refused(self):
        bad = bytearray(self.art)
        bad[3 * CHUNK + 5] ^= 0x01
        self.f.put_s3("vfetch", "pcorrupt.tar.gz", bytes(bad))
        self.f.put_s3("vfetch", "pcorrupt.tar.gz.manifest", self.man)
        out = os.path.join(self.dir, "p4")
        r = self.fetch("s3://vfetch/pcorrupt.tar.gz", "--sha256", pin(self.man), "-x", out,
                       conf=self.parallel(2))
        self.assert_exit(r, 1)
        self.assertIn(f"chunk 3 (bytes {3 * CHUNK}-{len(self.art) - 1}) does not match",
                      r.stderr)
        self.assert_nothing_left(out)

    def test_the_artifact_must_end_at_size_over_any_connections(self):
        """README: the artifact must end at the manifest's `size`. Bytes past it (or an
        object cut short) are refused over one connection and over several alike: the
        ranged GETs never ask for the extra bytes, so each answer's object length is
        checked."""
        for name, data, want in (
                ("long", self.art + b"appended after size", "the artifact is longer than "
                 f"the manifest's {len(self.art)} bytes"),
                ("cut", self.art[:-1], f"ends at byte {len(self.art) - 1}, the manifest "
                 f"says {len(self.art)}")):
            self.f.put_s3("vfetch", f"{name}.tar.gz", data)
            self.f.put_s3("vfetch", f"{name}.tar.gz.manifest", self.man)
            srv = ByteServer({"/x.tar.gz": data, "/x.tar.gz.manifest": self.man})
            self.addCleanup(srv.shutdown)
            for url in (f"s3://vfetch/{name}.tar.gz", srv.url("/x.tar.gz")):
                for n in (1, 3):
                    out = os.path.join(self.dir, f"{name}{n}{url[:2]}")
                    r = self.fetch(url, "--sha256", pin(self.man), "-x", out,
                                   conf=self.parallel(n))
                    self.assert_exit(r, 1)
                    self.assertIn(want, r.stderr, f"{url} over {n} connection(s)")
                    self.assert_nothing_left(out)
        outf = os.path.join(self.dir, "long.tar.gz")
        r = self.fetch("s3://vfetch/long.tar.gz", "--sha256", pin(self.man), "-o", outf,
                       conf=self.parallel(3))
        self.assert_exit(r, 1)
        self.assertIn("the artifact is longer than the manifest's", r.stderr)
        self.assertFalse(os.path.exists(outf), "-o FILE is not written")
        # A server that will not say how long the object is: its end cannot be checked.
        srv = ByteServer({"/x.tar.gz": self.art, "/x.tar.gz.manifest": self.man},
                         length=False)
        self.addCleanup(srv.shutdown)
        out = os.path.join(self.dir, "nolength")
        r = self.fetch(srv.url("/x.tar.gz"), "--sha256", pin(self.man), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 1)
        self.assertIn("the answer gives no object length, so the artifact's end cannot be "
                      f"checked against the manifest's {len(self.art)} bytes", r.stderr)
        self.assert_nothing_left(out)

    def test_parallel_without_a_manifest_from_the_size(self):
        """A digest pin, an artifact over two 4 MiB chunks: the first answer's size
        splits it into ranged GETs; the whole is hashed in order and staged."""
        files = random_files(3, 4 << 20, seed=7)
        art = make_artifact(files)
        srv = ByteServer({"/big.tar.gz": art})
        self.addCleanup(srv.shutdown)
        out = os.path.join(self.dir, "s1")
        r = self.fetch(srv.url("/big.tar.gz"), "--sha256", sha256(art), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        for name, data in files.items():
            with open(os.path.join(out, name), "rb") as fh:
                self.assertEqual(sha256(fh.read()), sha256(data), name)
        ranges = [rng for path, rng in srv.gets]
        self.assertEqual(ranges[0], None, "the first GET asks for the whole")
        chunk = 4 << 20
        n = (len(art) + chunk - 1) // chunk
        want = {f"bytes={i * chunk}-{min((i + 1) * chunk, len(art)) - 1}" for i in range(n)}
        self.assertTrue(want <= set(ranges[1:]), f"one ranged GET per chunk: {ranges}")
        out = os.path.join(self.dir, "s2")
        r = self.fetch(srv.url("/big.tar.gz"), "--sha256", "1" * 64, "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 1)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assert_nothing_left(out)
        # A server that does not offer ranges gets one plain GET, as before.
        plain = ByteServer({"/big.tar.gz": art}, ranges=False)
        self.addCleanup(plain.shutdown)
        out = os.path.join(self.dir, "s3")
        r = self.fetch(plain.url("/big.tar.gz"), "--sha256", sha256(art), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        self.assertEqual(plain.gets, [("/big.tar.gz", None)])

    def test_parallel_without_a_manifest_from_s3(self):
        files = random_files(3, 4 << 20, seed=8)
        art = make_artifact(files)
        self.f.put_s3("vfetch", "sized.tar.gz", art)
        self.f.fault(kind="truncate", service="s3", path=r"/vfetch/sized\.tar\.gz$",
                     bytes=1 << 20, count=2)
        out = os.path.join(self.dir, "s4")
        r = self.fetch("s3://vfetch/sized.tar.gz", "--sha256", sha256(art), "-x", out,
                       conf=self.parallel(3))
        self.assert_exit(r, 0)
        for name, data in files.items():
            with open(os.path.join(out, name), "rb") as fh:
                self.assertEqual(sha256(fh.read()), sha256(data), name)
        n = (len(art) + (4 << 20) - 1) // (4 << 20)
        # The first GET (dropped after its headers, cut or not), n chunks, one cut chunk again.
        self.assertEqual(len(self.s3_gets("sized.tar.gz")), 1 + n + 1)

    def test_s3_ranges_are_not_under_the_api_rate_ceiling(self):
        # [aws] max_rate keeps one agent from flooding the APIs' shared buckets; an
        # artifact's ranged GETs are S3 data (5,500 a second per prefix). Under a
        # ceiling of 1 a second the 7 GETs below would span at least 6 s.
        files = random_files(5, 4 << 20, seed=9)
        art = make_artifact(files)
        self.f.put_s3("vfetch", "capped.tar.gz", art)
        conf = write(os.path.join(self.dir, "rate.conf"), "[aws]\napi_timeout = 30\nmax_rate = 1\n"
                     "[artifact]\nconnections = 3\n")
        r = self.fetch("s3://vfetch/capped.tar.gz", "--sha256", sha256(art), "-o",
                       os.path.join(self.dir, "capped.tar.gz"), conf=conf)
        self.assert_exit(r, 0)
        starts = sorted(q["time"] - q["duration"] for q in self.s3_gets("capped.tar.gz"))
        n = (len(art) + (4 << 20) - 1) // (4 << 20)
        self.assertEqual(len(starts), 1 + n, "the first GET and one per 4 MiB chunk")
        self.assertLess(starts[-1] - starts[0], 3.0, f"GETs started at {starts}")

    def test_old_style_digest_stages_then_unpacks(self):
        out = os.path.join(self.dir, "o1")
        r = self.cli("-v", "fetch", "s3://vfetch/app.tar.gz", "--sha256", sha256(self.art),
                     "-x", out)[0]
        self.assert_exit(r, 0)
        self.assert_unpacked(out)
        self.assertIn("staged and verified; unpacking", r.stderr)
        self.assertEqual([n for n in os.listdir(self.dir) if ".download-" in n], [])

    def test_hostile_sparse_map_is_refused_before_parsing(self):
        """The replaced object is refused at its digest: libarchive never sees it, and
        the agent's peak RSS stays small (the one-pass agent reached hundreds of MiB)."""
        bomb = sparse_bomb()
        self.assertLess(len(bomb), 64 * 1024)
        self.f.put_s3("vfetch", "bomb.tar.gz", bomb)
        out = os.path.join(self.dir, "b1")
        r = subprocess.run([sys.executable, "-S", "-c", RUSAGE_WRAPPER, AGENT, "-c",
                            self.conf, "fetch", "s3://vfetch/bomb.tar.gz", "--sha256",
                            sha256(self.art), "-x", out], env=clean_env(self.agent_env()),
                           capture_output=True, text=True, timeout=60)
        stderr, _, last = r.stderr.rstrip("\n").rpartition("\n")
        maxrss = int(last.split()[1])
        self.assertEqual(r.returncode, 1, stderr)
        self.assertIn("sha256 mismatch", stderr)
        self.assert_nothing_left(out)
        self.assertLess(maxrss, RSS_BOUND_KIB,
                        f"peak RSS {maxrss} KiB, want < {RSS_BOUND_KIB} KiB")


if __name__ == "__main__":
    unittest.main()
