"""The command line: help from the table, version, check-config's FILE:LINE messages,
and the hidden config-reference the build makes the reference files with."""
import os
import re
import subprocess
import time
import unittest

from agentlib import AGENT, SRCDIR, TempDir, run, write
from bootlib import merge_ini


class Help(unittest.TestCase):
    def test_help_lists_commands(self):
        r = run(["help"])
        self.assertEqual(r.returncode, 0)
        for name in ("help", "version", "check-config", "aws"):
            self.assertIn(f"  {name} ", r.stdout)

    def test_command_help(self):
        r = run(["aws", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: asg-agent aws SERVICE ACTION", r.stdout)

    def test_unknown_command(self):
        r = run(["frobnicate"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)

    def test_no_command(self):
        self.assertEqual(run([]).returncode, 2)

    def test_status_usage_errors(self):
        # A stray argument was ignored, and --timeout '' or nan meant "wait for ever".
        for args, want in ((["extra"], "status takes no argument 'extra'"),
                           (["--wait", "--timeout", ""], "bad --timeout ''"),
                           (["--wait", "--timeout", "nan"], "bad --timeout 'nan'"),
                           (["--wait", "--timeout", "inf"], "bad --timeout 'inf'")):
            with self.subTest(args=args):
                r = run(["status"] + args)
                self.assertEqual((r.returncode, r.stdout), (2, ""), r.stderr)
                self.assertIn(want, r.stderr)

    def test_version(self):
        r = run(["version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^asg-agent \d+\.\d+\.\d+\n")
        for lib in ("curl", "openssl", "expat", "json-c", "zlib"):
            self.assertIn(lib, r.stdout)


BROKEN = [
    ("[agent]\nlog_level = loud\n",
     "{f}:2: log_level: 'loud' is not error, warn, info or debug"),
    ("[agent]\nfoo = 1\n", "{f}:2: unknown key 'foo' in [agent]"),
    ("[agent]\n[cloud]\nregion = x\n", "{f}:3: unknown section [cloud]"),
    ("[aws]\nimds_timeout = 0\n", "{f}:2: imds_timeout: 0 is out of range (1 to 3600)"),
    ("[aws]\napi_timeout = fast\n", "{f}:2: api_timeout: 'fast' is not a whole number"),
    ("[artifact]\nallow_unverified = perhaps\n",
     "{f}:2: allow_unverified: 'perhaps' is not yes or no"),
    ("[artifact]\nmax_size = lots\n",
     "{f}:2: max_size: 'lots' is not a size (like 512M or 4G)"),
    ("[version]\n\nsource = tea-leaves\n", "{f}:3: source: 'tea-leaves' is not one of"),
    ("[aws\nregion = x\n", "{f}:1: syntax error"),
    ("[app]\nunit = a.service\n\ncommand = ./a\n",
     "{f}:4: [app] unit and command are both set"),
    ("[health]\npath = healthz\n", "{f}:2: path: must start with '/'"),
    ("[artifact]\nurl = ftp://x/y\n", "{f}:2: url: must start with s3://"),
    ("[aws]\nimds_endpoint = 169.254.169.254\n",
     "{f}:2: imds_endpoint: must be an http:// or https:// URL"),
    # No inline comments: a value is the rest of its line, as asg-agent.conf(5) says.
    ("[agent]\nlog_level = warn ; quieter\n",
     "{f}:2: log_level: 'warn ; quieter' is not error, warn, info or debug"),
    # An old file's string with a comment is said, not kept with the comment in it.
    ("[lifecycle]\nlaunch_hook = web-launch ; the hook\n",
     "{f}:2: launch_hook: 'web-launch ; the hook': ';' after a space is not a comment"),
]

# Valid files that `run` refuses before it fetches anything: check-config says why.
RUN_REFUSES = [
    ("[app]\ncommand = sh -c \"exec ./app\n", "[app] command: unterminated \" quote"),
    ("[app]\ncommand = ./app --port 80 ; main app\n", "[app] command: ';' outside quotes"),
    ("[health]\nlisten = not-an-address\n",
     "[health] listen: health endpoint not-an-address: expected address:port"),
    ("[artifact]\nurl = s3://b/{url}\n", "[artifact] url"),
    ("[artifact]\nsignature_url = ftp://x/{version}.sig\npublic_key = {key}\n",
     "[artifact] signature_url: must start with s3://"),
]
RUNNABLE = "[artifact]\nurl = s3://b/{version}.tgz\nsha256_tag = sha\n[app]\ncommand = ./app\n"


class CheckConfig(unittest.TestCase):
    def test_broken_configs(self):
        with TempDir() as d:
            for i, (text, want) in enumerate(BROKEN):
                with self.subTest(i=i, want=want):
                    f = write(os.path.join(d, f"bad{i}.conf"), text)
                    r = run(["check-config", "-c", f])
                    self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                    self.assertIn(want.format(f=f), r.stderr)
                    self.assertNotIn("configuration OK", r.stdout)

    def test_what_run_would_refuse(self):
        with TempDir() as d:
            f = write(os.path.join(d, "ok.conf"), RUNNABLE)
            r = run(["check-config", "-c", f])
            self.assertEqual((r.returncode, r.stdout), (0, "configuration OK\n"), r.stderr)
            # A semicolon is the value's, not a comment: the command keeps "; echo b".
            f = write(os.path.join(d, "semi.conf"), merge_ini(
                RUNNABLE, "[app]\ncommand = sh -c \"echo a ; echo b\"\n"))
            r = run(["check-config", "-c", f])
            self.assertEqual((r.returncode, r.stdout), (0, "configuration OK\n"), r.stderr)
            key = write(os.path.join(d, "key.pem"), "")
            for i, (text, want) in enumerate(RUN_REFUSES):
                with self.subTest(i=i, want=want):
                    text = text.replace("{key}", key)
                    f = write(os.path.join(d, f"refused{i}.conf"), merge_ini(RUNNABLE, text))
                    r = run(["check-config", "-c", f])
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                    self.assertIn("note: 'asg-agent run' would refuse", r.stdout)
                    self.assertIn(want, r.stdout)

    def test_global_c_option(self):
        with TempDir() as d:
            f = write(os.path.join(d, "bad.conf"), "[agent]\nfoo = 1\n")
            r = run(["-c", f, "check-config"])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"{f}:2: unknown key", r.stderr)

    def test_all_problems_reported(self):
        with TempDir() as d:
            f = write(os.path.join(d, "bad.conf"),
                      "[agent]\nfoo = 1\ndeadline = 1\n[aws]\nbar = 2\n")
            r = run(["check-config", "-c", f])
            self.assertEqual(r.returncode, 1)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 3, r.stderr)

    def test_example_config_is_valid(self):
        r = run(["check-config", "-c", os.path.join(SRCDIR, "agent.conf.example")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith("configuration OK\n"), r.stdout)
        # The example sets no artifact: run-only requirements are a note, not an error.
        self.assertIn("note: 'asg-agent run' would refuse", r.stdout)

    def test_missing_file(self):
        r = run(["check-config", "-c", "/nonexistent/asg.conf"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/asg.conf: No such file", r.stderr)


class ConfigReference(unittest.TestCase):
    """agent.conf.example and asg-agent.conf(5)'s option reference, printed from the table."""

    def reference(self, fmt):
        r = run(["config-reference", "--format", fmt])
        self.assertEqual((r.returncode, r.stderr), (0, ""), fmt)
        return r.stdout

    def test_hidden_from_help(self):
        self.assertNotIn("config-reference", run(["help"]).stdout)
        r = run(["help", "config-reference"])
        self.assertEqual((r.returncode, r.stdout.splitlines()[0]),
                         (0, "usage: asg-agent config-reference --format example|man|man-reload"))

    def test_example_is_the_shipped_file(self):
        # No configuration is read: a missing -c file does not matter.
        r = run(["config-reference", "--format", "example"], config="/nonexistent/agent.conf")
        with open(os.path.join(SRCDIR, "agent.conf.example"), encoding="utf-8") as f:
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, f.read(), ""))

    def test_man_has_every_option_of_the_example(self):
        example = re.findall(r"(?m)^#(\w+) = ", self.reference("example"))
        man = self.reference("man")
        self.assertEqual(re.findall(r'(?m)^\.BI (\w+) " = "', man), example)
        self.assertEqual(man.count(".SS ["), self.reference("example").count("\n["))

    def test_reload_list_is_the_reloaded_entries(self):
        man = self.reference("man")
        entries, section = [], None
        for block in man.split(".TP\n"):
            m = re.search(r"(?m)^\.SS \[(\w+)\]$", block)
            key = re.match(r"\.BI (\w+) ", block)
            if key and "Reloaded by SIGHUP." in block:
                entries.append(f"[{section}] {key.group(1)}")
            section = m.group(1) if m else section
        listed = re.findall(r"(?m)^\.IP \\\(bu 2\n(.*)$", self.reference("man-reload"))
        self.assertEqual(listed, entries)
        self.assertGreater(len(listed), 5)

    def test_usage_errors(self):
        for args in ([], ["--format", "html"], ["--format", "man", "extra"]):
            with self.subTest(args=args):
                r = run(["config-reference"] + args)
                self.assertEqual((r.returncode, r.stdout), (2, ""))
                self.assertIn("usage: asg-agent config-reference --format", r.stderr)

    @unittest.skipUnless(os.path.exists("/dev/full"), "no /dev/full")
    def test_write_error(self):
        with open("/dev/full", "w") as full:
            r = subprocess.run([AGENT, "config-reference", "--format", "man"], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stderr), (1, "asg-agent: config-reference: write error\n"))


class AwsUsage(unittest.TestCase):
    def test_bad_service(self):
        r = run(["aws", "sqs", "ListQueues"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown service 'sqs'", r.stderr)

    def test_bad_param(self):
        r = run(["aws", "ec2", "DescribeTags", "novalue"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("'novalue' is not Name=Value", r.stderr)


if __name__ == "__main__":
    unittest.main()


class NotDumpable(unittest.TestCase):
    """The agent holds role credentials: no core dumps, and no ptrace or /proc/PID/mem
    by another process of the same uid. A non-dumpable process's /proc/PID is root's."""

    def test_proc_owned_by_root(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run the agent as another uid")
        with TempDir() as d:
            os.chmod(d, 0o755)
            fifo = os.path.join(d, "agent.conf")
            os.mkfifo(fifo, 0o644)
            # check-config blocks opening the FIFO, long after main() started.
            p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534",
                                  "--clear-groups", AGENT, "-c", fifo, "check-config"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                exe = os.path.realpath(AGENT)
                for _ in range(500):
                    try:
                        if os.readlink(f"/proc/{p.pid}/exe") == exe:
                            break
                    except OSError:
                        pass
                    time.sleep(0.01)
                self.assertEqual(os.readlink(f"/proc/{p.pid}/exe"), exe)
                # main() makes the process non-dumpable at its start, after the dynamic
                # loader, which on a loaded machine can take a while: give it 10 s.
                for _ in range(1000):
                    uid = os.stat(f"/proc/{p.pid}/status").st_uid
                    if uid == 0:
                        break
                    time.sleep(0.01)
                self.assertEqual(uid, 0, f"/proc/PID of the agent running as 65534 "
                                 f"belongs to uid {uid}: it is dumpable")
            finally:
                with open(fifo, "w"):
                    pass
                p.wait(timeout=10)
