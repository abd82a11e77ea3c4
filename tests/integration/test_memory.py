"""[agent] memory_limit: a runaway allocation ends the boot as a clean failure with ABANDON,
never in the kernel's OOM killer (review item 6 of issue 16). Both archives below are
tagged with their true digest, so they reach the tar reader whatever the pipeline."""
import gzip
import os
import signal
import unittest

from bootlib import make_artifact
from fakecase import FakeAWSCase
from manifestlib import make_manifest, pin

LIMIT = "[agent]\nmemory_limit = 64M\n"


def tar_header(name, typ, size):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:107] = b"0000755"
    h[108:115] = b"0000000"
    h[116:123] = b"0000000"
    h[124:135] = b"%011o" % size
    h[136:147] = b"%011o" % 1000000000
    h[156] = ord(typ)
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:155] = b"%06o\0" % sum(h)
    return bytes(h)


def pad(b):
    return b + bytes((512 - len(b) % 512) % 512)


def pax(records):
    """A pax 'x' header entry holding records {key: value}."""
    out = b""
    for k, v in records.items():
        body = f" {k}={v}\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += f"{n}{body}".encode()
    return tar_header("PaxHeader", "x", len(out)) + pad(out)


def sparse_map_bomb(regions):
    """The review's 39 KB archive: a GNU sparse 1.0 map of `regions` empty regions,
    which libarchive keeps as a list (about 48 bytes a region)."""
    data = pad(b"%d\n" % regions + b"0\n0\n" * regions)
    tar = (pax({"GNU.sparse.major": 1, "GNU.sparse.minor": 0, "GNU.sparse.name": "f",
                "GNU.sparse.realsize": 0}) +
           tar_header("GNUSparseFile.0/f", "0", len(data)) + data + bytes(1024))
    return gzip.compress(tar, 9)


def many_long_dirs(n):
    """n directories with 4 KB paths (one deep parent, a leaf each): the agent keeps
    every directory's path until the end to set its time, 80 MB for 20,000."""
    parent = "/".join(["p" * 250] * 15)
    tar = bytearray(tar_header("d/", "5", 0))
    for i in range(n):
        tar += pax({"path": f"d/{parent}/leaf{i:06d}/"}) + tar_header("x", "5", 0)
    return gzip.compress(bytes(tar + bytes(1024)), 1)


@unittest.skipIf(os.environ.get("ASG_SANITIZERS") == "yes",
                 "AddressSanitizer's shadow memory counts against RLIMIT_DATA: no limit there")
class MemoryLimit(FakeAWSCase):
    prefix = "mem"

    def failed_cleanly(self, a, w):
        """Status failed, exit 1 (not a signal), ABANDON sent, nothing became current."""
        self.assertEqual(a.wait_status(timeout=90), 1, a.log_text())
        st = a.status_json()
        self.assertEqual(st["phase"], "failed", st)
        self.assertEqual(a.wait_exit(30), 1, "exit 1, not killed:\n" + a.log_text())
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["ABANDON"],
                         self.f.lifecycle())
        self.assertFalse(os.path.exists(os.path.join(self.state, "current")))
        return st

    def test_sparse_map_bomb_fails_cleanly(self):
        w, _ = self.world(art=sparse_map_bomb(10_000_000))
        a = self.start(LIMIT)
        st = self.failed_cleanly(a, w)
        # libarchive's "Out of memory" or fatal()'s: which allocation hits the limit
        # first depends on the pipeline; either way the boot fails cleanly.
        self.assertRegex(st["error"], r"(?i)out of memory")

    def test_own_allocation_fails_through_the_fail_path(self):
        w, _ = self.world(art=many_long_dirs(20_000))
        a = self.start(LIMIT)
        st = self.failed_cleanly(a, w)
        # fatal()'s own words: our allocation failed, and the hook ran the fail path.
        self.assertEqual(st["error"], "out of memory", st)
        self.assertIn("fatal: out of memory", a.log_text())

    def boot_chunked(self, limit, chunk):
        """A boot of a 40 MiB plain tar pinned by its manifest of chunk-byte chunks over
        3 connections under memory_limit = limit: it must serve, and no connection's
        thread may end it with SIGABRT (which left the status at fetching, no ABANDON)."""
        art = make_artifact({"zeros.bin": bytes(40 << 20)}, mode="w")
        man = make_manifest(art, chunk)
        w, _ = self.world(art=art, sha=pin(man))
        self.f.put_s3("releases", "app/1.0.0.tar.gz.manifest", man)
        a = self.start(f"[agent]\nmemory_limit = {limit}\n[artifact]\nconnections = 3\n")
        self.wait_for(lambda: a.proc.poll() is not None or
                      (a.status_json() or {}).get("phase") in ("serving", "failed"), 120, 0.5)
        self.assertNotEqual(a.proc.poll(), -signal.SIGABRT, "SIGABRT:\n" + a.log_text())
        self.assert_serving(a, w)
        return a.log_text()

    def test_parallel_fetch_fits_its_connections_in_the_limit(self):
        """The review's repro: 32M, 3 connections, 16 MiB chunks. Three chunk buffers and
        three thread stacks do not fit: the agent fetches over one connection."""
        log = self.boot_chunked("32M", 16 << 20)
        self.assertRegex(log, r"artifact: 3 connections \(a 16777216-byte chunk and a "
                         r"\d+-byte stack each\) do not fit in half the memory limit of "
                         r"33554432 bytes: 1\n")
        self.assertNotIn("chunks over", log, "one connection is the plain download")

    def test_parallel_fetch_with_fewer_connections(self):
        """48M, 3 connections, 8 MiB chunks and 1 MiB stacks: two fit in half the limit
        (the same with glibc and musl: the agent sizes its threads' stacks)."""
        log = self.boot_chunked("48M", 8 << 20)
        self.assertIn("(a 8388608-byte chunk and a 1048576-byte stack each) do not fit in "
                      "half the memory limit of 50331648 bytes: 2\n", log)
        self.assertIn("artifact: 6 chunks over 2 connections", log)

    def test_default_limit_lets_a_release_through(self):
        w, _ = self.world()
        a = self.start()
        self.assert_serving(a, w)
