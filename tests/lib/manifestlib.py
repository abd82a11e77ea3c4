"""Chunk manifests (README: "Chunk manifests") and hostile archives for the artifact tests."""
import gzip
import hashlib
import io
import tarfile


def make_manifest(data, chunk_size=4 << 20):
    """The manifest of data (bytes) in the one format the agent accepts."""
    lines = ["asg-agent-manifest 1", f"size {len(data)}", f"chunk-size {chunk_size}",
             f"sha256 {hashlib.sha256(data).hexdigest()}"]
    for off in range(0, len(data), chunk_size):
        lines.append("chunk " + hashlib.sha256(data[off:off + chunk_size]).hexdigest())
    return ("\n".join(lines) + "\n").encode()


def pin(manifest):
    """The digest tag value that pins a manifest."""
    return "manifest:" + hashlib.sha256(manifest).hexdigest()


def sparse_bomb(regions=8_000_000):
    """A small tar.gz (about 39 KB) whose one entry's pax header declares a GNU 1.0
    sparse file with a map of `regions` regions: libarchive allocates per region, so
    parsing it before the digest check took the one-pass agent to hundreds of MiB
    (107 MiB at 2 million regions, measured with --allow-unverified)."""
    body = (f"{regions}\n" + "0\n1\n" * regions).encode()
    body += b"\0" * ((-len(body)) % 512)
    info = tarfile.TarInfo("GNUSparseFile.0/bomb")
    info.size = len(body) + regions
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                        "GNU.sparse.name": "bomb", "GNU.sparse.realsize": str(regions)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(body + b"\0" * regions))
    return gzip.compress(raw.getvalue(), 9)


def random_files(n, size, seed=1):
    """n files of incompressible bytes, {name: bytes}, the same for the same seed."""
    out = {}
    for i in range(n):
        h = hashlib.sha256(f"{seed}-{i}".encode()).digest()
        block = hashlib.shake_256(h).digest(size)
        out[f"data/f{i}.bin"] = block
    return out
