"""bench/realboot.d/aptsources.py: this machine's apt sources as mmdebstrap mirror lines.

Pure functions over text and a temporary /etc/apt tree; nothing is fetched.
"""
import os
import shutil
import sys
import tempfile
import unittest

SRCDIR = os.environ.get("ASG_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "bench", "realboot.d"))
import aptsources  # noqa: E402

KEY = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEB822 = f"""Types: deb deb-src
# a comment line inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: {KEY}

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Enabled: no

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: trixie
Components: main
"""
LIST = """# the classic format
deb http://list.example/debian bookworm main non-free-firmware
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://list.example/x bookworm-backports main
deb-src http://list.example/debian bookworm main
  deb http://list.example/debian sid main   # another suite
deb http://list.example/broken
"""


class AptSources(unittest.TestCase):
    def test_deb822(self):
        got = aptsources.mirror_lines(aptsources.parse_deb822(DEB822), "bookworm")
        want = [f"deb [signed-by={KEY}] http://mirror.example/debian bookworm main contrib",
                f"deb [signed-by={KEY}] http://mirror.example/debian bookworm-updates main contrib"]
        self.assertEqual(got, want)

    def test_one_line_entries(self):
        got = aptsources.mirror_lines(aptsources.parse_list(LIST), "bookworm")
        want = ["deb http://list.example/debian bookworm main non-free-firmware",
                "deb [signed-by=/etc/apt/keyrings/x.gpg] http://list.example/x bookworm-backports main"]
        self.assertEqual(got, want)

    def test_inline_key_is_dropped(self):
        text = ("Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main\n"
                "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n")
        got = aptsources.mirror_lines(aptsources.parse_deb822(text), "bookworm")
        self.assertEqual(got, ["deb http://m.example/debian bookworm main"])

    def test_machine_tree(self):
        etc = tempfile.mkdtemp(prefix="aptsources-")
        try:
            os.makedirs(os.path.join(etc, "sources.list.d"))
            for name, text in (("sources.list", LIST), ("sources.list.d/debian.sources", DEB822),
                               ("sources.list.d/other.list.disabled-by-someone",
                                "deb http://never.example/debian bookworm main\n")):
                with open(os.path.join(etc, name), "w") as fh:
                    fh.write(text)
            got = aptsources.machine_mirrors("bookworm", etc)
            want = ["deb http://list.example/debian bookworm main non-free-firmware",
                    "deb [signed-by=/etc/apt/keyrings/x.gpg] http://list.example/x bookworm-backports main",
                    f"deb [signed-by={KEY}] http://mirror.example/debian bookworm main contrib",
                    f"deb [signed-by={KEY}] http://mirror.example/debian bookworm-updates main contrib"]
            self.assertEqual(got, want)
            self.assertEqual(aptsources.machine_mirrors("bullseye", etc), [])
        finally:
            shutil.rmtree(etc)


if __name__ == "__main__":
    unittest.main()
