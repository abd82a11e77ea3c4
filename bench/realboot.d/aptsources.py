"""bench/realboot.d/aptsources.py - this machine's apt sources as mmdebstrap mirror lines.

bench/realboot builds its root file systems from the mirrors this machine already
uses, read at run time: no mirror is named in the repository. Both formats are
read: one-line entries (/etc/apt/sources.list, sources.list.d/*.list) and deb822
stanzas (sources.list.d/*.sources). Only binary ("deb") entries of the wanted
suite family (bookworm, bookworm-updates, bookworm-security, ...) are kept;
disabled stanzas (Enabled: no) and files with other names (*.disabled) are not.
"""
import glob
import os


def _options(opts):
    """[opt=val ...] of a one-line entry -> {opt: val}."""
    out = {}
    for o in opts:
        k, sep, v = o.partition("=")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


def parse_list(text):
    """One-line entries -> [{"types", "uris", "suites", "components", "signed-by"}]."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind, words = words[0], words[1:]
        opts = {}
        if words and words[0].startswith("["):
            inner = []
            while words:
                w = words.pop(0)
                inner.append(w)
                if w.endswith("]"):
                    break
            opts = _options(" ".join(inner).strip("[]").split())
        if len(words) < 2:
            continue
        entries.append({"types": [kind], "uris": [words[0]], "suites": [words[1]],
                        "components": words[2:], "signed-by": opts.get("signed-by")})
    return entries


def parse_deb822(text):
    """deb822 stanzas -> the same dicts as parse_list (one per stanza)."""
    entries, fields, last = [], {}, None

    def flush():
        if fields and fields.get("enabled", "yes").lower() not in ("no", "false", "0"):
            entries.append({"types": fields.get("types", "").split(),
                            "uris": fields.get("uris", "").split(),
                            "suites": fields.get("suites", "").split(),
                            "components": fields.get("components", "").split(),
                            "signed-by": fields.get("signed-by")})
        fields.clear()

    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            flush()
            last = None
            continue
        if line[0] in " \t" and last:
            fields[last] += " " + line.strip()     # a continuation line
            continue
        k, sep, v = line.partition(":")
        if sep:
            last = k.strip().lower()
            fields[last] = v.strip()
    return entries


def mirror_lines(entries, suite):
    """One-line "deb [signed-by=...] URI SUITE COMPONENTS" strings for mmdebstrap: the
    binary entries whose suite is SUITE or SUITE-something, in the order given,
    without duplicates. A Signed-By that is a file is kept; an inline key is not."""
    out = []
    for e in entries:
        if "deb" not in e["types"]:
            continue
        sb = e.get("signed-by")
        opt = f"[signed-by={sb}] " if sb and "\n" not in sb and " " not in sb.strip() else ""
        for uri in e["uris"]:
            for s in e["suites"]:
                if s != suite and not s.startswith(suite + "-") and not s.startswith(suite + "/"):
                    continue
                line = f"deb {opt}{uri} {s} {' '.join(e['components']) or 'main'}"
                if line not in out:
                    out.append(line)
    return out


def machine_mirrors(suite, etc="/etc/apt"):
    """mirror_lines of this machine's apt sources ([] if none match SUITE)."""
    entries = []
    paths = [os.path.join(etc, "sources.list")] + sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")))
    for p in paths:
        if os.path.isfile(p):
            with open(p, errors="replace") as fh:
                entries += parse_list(fh.read())
    for p in sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.sources"))):
        with open(p, errors="replace") as fh:
            entries += parse_deb822(fh.read())
    return mirror_lines(entries, suite)
