"""Shipping: the systemd unit, man pages, bash completion and packaging files.

Cheap static checks (a few seconds in all). Tools that are missing skip their
test with the reason; building the .deb and .rpm is not done here
(packaging/build-deb and packaging/build-rpm do it).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from agentlib import AGENT, SRCDIR, run

UNIT = os.path.join(SRCDIR, "units", "asg-agent.service")
EXAMPLE_UNIT = os.path.join(SRCDIR, "units", "example-app.service")
MAN8 = os.path.join(SRCDIR, "man", "asg-agent.8")
MAN5 = os.path.join(SRCDIR, "man", "asg-agent.conf.5")
COMPLETION = os.path.join(SRCDIR, "completion", "asg-agent.bash")
EXAMPLE_CONF = os.path.join(SRCDIR, "agent.conf.example")
MAX_EXPOSURE = 3.0


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def tool(name):
    return shutil.which(name)


def sh(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, **kw)


def unit_settings(path):
    """{key: [values]} of a unit file, sections ignored."""
    out = {}
    for line in read(path).splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def commands():
    """The command names of `asg-agent help`, in its order."""
    r = run(["help"])
    assert r.returncode == 0, r.stderr
    names, inside = [], False
    for line in r.stdout.splitlines():
        if line.startswith("commands:"):
            inside = True
        elif inside:
            m = re.match(r"^  (\S+)\s{2,}", line)
            if not m:
                break
            names.append(m.group(1))
    assert names, r.stdout
    return names


def command_options(name):
    """The options in one command's usage line, e.g. ['--json', '--wait', '-o']."""
    r = run(["help", name])
    assert r.returncode == 0, r.stderr
    usage = r.stdout.splitlines()[0]
    return sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", usage)))


def example_options():
    """{(section, key)} of agent.conf.example."""
    opts, section = set(), None
    for line in read(EXAMPLE_CONF).splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#(\w+) = ", line)
        if m and section:
            opts.add((section, m.group(1)))
    return opts


def man5_options():
    """{(section, key)} documented in asg-agent.conf(5): .SS [section] then .BI key."""
    opts, section = set(), None
    for line in read(MAN5).splitlines():
        m = re.match(r"^\.SS \[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        if line.startswith(".SH"):
            section = None
        m = re.match(r'^\.BI (\w+) " = "', line)
        if m and section:
            opts.add((section, m.group(1)))
    return opts


def systemd_root(tmp):
    """A root for `systemd-analyze verify --root`: the host's system units,
    /bin/kill, the agent as /usr/bin/asg-agent and our unit in /etc."""
    units = None
    for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.exists(os.path.join(d, "sysinit.target")):
            units = d
            break
    if units is None:
        return None
    shutil.copytree(units, os.path.join(tmp, "usr/lib/systemd/system"), symlinks=True)
    os.symlink("usr/lib", os.path.join(tmp, "lib"))
    os.makedirs(os.path.join(tmp, "usr/bin"))
    os.symlink("usr/bin", os.path.join(tmp, "bin"))
    shutil.copy2(AGENT, os.path.join(tmp, "usr/bin/asg-agent"))
    shutil.copy2(shutil.which("kill") or "/bin/kill", os.path.join(tmp, "usr/bin/kill"))
    app = os.path.join(tmp, "var/lib/asg-agent/current/bin/example-app")
    os.makedirs(os.path.dirname(app))
    with open(app, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(app, 0o755)
    etc = os.path.join(tmp, "etc/systemd/system")
    os.makedirs(etc)
    for u in (UNIT, EXAMPLE_UNIT):
        shutil.copyfile(u, os.path.join(etc, os.path.basename(u)))
    # Man pages where `man`, run by systemd-analyze for Documentation=, finds them.
    for page, sect in ((MAN8, "man8"), (MAN5, "man5")):
        os.makedirs(os.path.join(tmp, "man", sect), exist_ok=True)
        shutil.copyfile(page, os.path.join(tmp, "man", sect, os.path.basename(page)))
    return tmp


@unittest.skipUnless(tool("systemd-analyze"), "systemd-analyze is not installed")
class SystemdUnit(unittest.TestCase):
    def test_verify(self):
        with tempfile.TemporaryDirectory(prefix="asg-root-") as tmp:
            if systemd_root(tmp) is None:
                self.skipTest("no systemd system unit directory on this machine")
            env = dict(os.environ, MANPATH=os.path.join(tmp, "man"))
            man = [] if tool("man") else ["--man=no"]
            r = sh(["systemd-analyze", "verify", "--root", tmp] + man +
                   ["asg-agent.service", "example-app.service"], env=env)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_security_exposure(self):
        r = sh(["systemd-analyze", "security", "--offline=yes", "--no-pager", UNIT])
        if r.returncode != 0 and "offline" in r.stderr:
            self.skipTest("systemd-analyze security has no --offline (systemd < 250)")
        m = re.search(r"Overall exposure level for asg-agent\.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)


class UnitContents(unittest.TestCase):
    def test_agent_unit(self):
        s = unit_settings(UNIT)
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["ExecStart"], ["/usr/bin/asg-agent run"])
        self.assertIn("network-online.target", " ".join(s["After"]))
        self.assertEqual(s["Restart"], ["no"])
        self.assertEqual(s["StateDirectory"], ["asg-agent"])
        self.assertEqual(s["ProtectSystem"], ["strict"])
        self.assertEqual(s["CapabilityBoundingSet"], [""])
        self.assertEqual(s["UMask"], ["0077"])

    def test_start_timeout_covers_the_deadline(self):
        deadline = int(re.search(r"^#deadline = (\d+)$", read(EXAMPLE_CONF), re.M).group(1))
        api = int(re.search(r"^#api_timeout = (\d+)$", read(EXAMPLE_CONF), re.M).group(1))
        timeout = int(unit_settings(UNIT)["TimeoutStartSec"][0])
        self.assertGreaterEqual(timeout, deadline + api)

    def test_example_app_unit(self):
        s = unit_settings(EXAMPLE_UNIT)
        self.assertEqual(s["EnvironmentFile"], ["/var/lib/asg-agent/release.env"])
        self.assertTrue(s["ExecStart"][0].startswith("/var/lib/asg-agent/current/"))
        self.assertNotIn("WantedBy", s, "only the agent starts the app")

    def test_preset_and_tmpfiles(self):
        self.assertIn("enable asg-agent.service",
                      read(os.path.join(SRCDIR, "units", "asg-agent.preset")))
        self.assertRegex(read(os.path.join(SRCDIR, "units", "asg-agent.tmpfiles")),
                         r"(?m)^d /var/lib/asg-agent/releases 0755 ")


class ManPages(unittest.TestCase):
    @unittest.skipUnless(tool("groff"), "groff is not installed")
    def test_groff_without_warnings(self):
        for page in (MAN8, MAN5):
            r = sh(["groff", "-man", "-ww", "-z", page])
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    @unittest.skipUnless(tool("man"), "man is not installed")
    def test_man_renders(self):
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        for page, title in ((MAN8, "ASG-AGENT(8)"), (MAN5, "ASG-AGENT.CONF(5)")):
            r = sh(["man", "-l", page], env=env)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
            self.assertIn(title, r.stdout)

    @unittest.skipUnless(tool("mandoc"), "mandoc is not installed")
    def test_mandoc_lint(self):
        r = sh(["mandoc", "-T", "lint", "-W", "warning", MAN8, MAN5])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_every_command_in_asg_agent_8(self):
        text = read(MAN8)
        section = text[text.index(".SH COMMANDS"):text.index(".SH SIGNALS")]
        synopsis = text[text.index(".SH SYNOPSIS"):text.index(".SH DESCRIPTION")]
        for name in commands():
            roff = name.replace("-", "\\-")
            self.assertRegex(section, r"(?m)^\.TP\n\.B[IR]? %s(?:\s|$)" % re.escape(roff),
                             f"command {name} has no entry under COMMANDS")
            self.assertIn(".B asg\\-agent " + roff, synopsis, name)
            for opt in command_options(name):
                self.assertIn(opt.replace("-", "\\-"), section, f"{name} {opt}")

    def test_every_option_in_asg_agent_conf_5(self):
        example = example_options()
        self.assertGreater(len(example), 30)
        documented = man5_options()
        self.assertEqual(sorted(example - documented), [], "in agent.conf.example, not in the man page")
        self.assertEqual(sorted(documented - example), [], "in the man page, not in agent.conf.example")

    def test_conf_page_is_generated_from_config_c(self):
        gen = os.path.join(SRCDIR, "man", "gen-conf-man.py")
        if not os.path.exists(gen):
            self.skipTest("man/gen-conf-man.py is not in this tree")
        r = sh([sys.executable, gen, "--check"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr +
                         "\nrun: python3 man/gen-conf-man.py")


@unittest.skipUnless(tool("bash"), "bash is not installed")
class BashCompletion(unittest.TestCase):
    def complete(self, *words):
        """What completing the last word gives, in a plain bash."""
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
                  '_asg_agent; printf "%s\\n" "${COMPREPLY[@]}"; complete -p asg-agent >&2')
        r = sh(["bash", "--norc", "--noprofile", "-c", script, "bash", COMPLETION,
                "asg-agent"] + list(words), cwd=SRCDIR)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("complete -F _asg_agent asg-agent", r.stderr)
        return [w for w in r.stdout.splitlines() if w]

    def test_commands(self):
        self.assertEqual(self.complete(""), commands())
        self.assertEqual(self.complete("-v", "st"), ["status"])
        self.assertEqual(self.complete("-c", "x.conf", "pre"), ["prefetch"])

    def test_command_options(self):
        for name in commands():
            # A command with steps (rollout start ...) takes its options after the step.
            usage = run(["help", name]).stdout.split()
            step = usage[3:4] if len(usage) > 3 and re.fullmatch(r"[a-z]+", usage[3]) else []
            got = self.complete(name, *step, "-")
            for opt in command_options(name):
                if opt == "-c" and name != "check-config":
                    continue
                self.assertIn(opt, got, f"asg-agent {name} {opt}")

    def test_config_file(self):
        self.assertIn("units/asg-agent.service", self.complete("-c", "units/asg-agent.s"))
        self.assertIn("units/asg-agent.service",
                      self.complete("check-config", "-c", "units/asg-agent.s"))

    def test_aws_services(self):
        self.assertEqual(self.complete("aws", ""), ["ec2", "autoscaling", "elbv2"])


class Packaging(unittest.TestCase):
    def test_versions_agree(self):
        ac = re.search(r"AC_INIT\(\[asg-agent\],\s*\[([^]]+)\]",
                       read(os.path.join(SRCDIR, "configure.ac"))).group(1)
        deb = re.match(r"asg-agent \(([^)-]+)-",
                       read(os.path.join(SRCDIR, "packaging/debian/changelog"))).group(1)
        rpm = re.search(r"(?m)^Version:\s*(\S+)",
                        read(os.path.join(SRCDIR, "packaging/rpm/asg-agent.spec"))).group(1)
        self.assertEqual((deb, rpm), (ac, ac))

    PREFIX = {"EC2": "ec2", "AUTOSCALING": "autoscaling", "ELBV2": "elasticloadbalancing"}

    def aws_calls(self, files):
        """The IAM actions the given agent/*.c files call: aws_call() and
        rollout.c's call() wrapper name service and action literally; rollout.c's
        standby() passes EnterStandby/ExitStandby; tags.c's describe_tags() is
        DescribeTags of its service; aws_s3_open() is s3:GetObject."""
        calls = set()
        for name in files:
            src = read(os.path.join(SRCDIR, "agent", name))
            for svc, action in re.findall(
                    r'\b(?:aws_call|call)\([^;]*?AWS_(EC2|AUTOSCALING|ELBV2),\s*"(\w+)"', src):
                calls.add(f"{self.PREFIX[svc]}:{action}")
            for action in re.findall(r'\bstandby\([^;]*?"(\w+Standby)"', src):
                calls.add(f"autoscaling:{action}")
            # tags.c's describe_tags() makes DescribeTags calls for the service it is given.
            for svc in re.findall(r'\bdescribe_tags\([^;]*?AWS_(EC2|AUTOSCALING)', src):
                calls.add(f"{self.PREFIX[svc]}:DescribeTags")
            if re.search(r"\baws_s3_open\(", src) and name != "aws.c":
                calls.add("s3:GetObject")
        return calls

    def policy_actions(self, path):
        policy = json.loads(read(os.path.join(SRCDIR, path)))
        allowed = set()
        for st in policy["Statement"]:
            self.assertEqual(st["Effect"], "Allow")
            acts = st["Action"]
            allowed.update([acts] if isinstance(acts, str) else acts)
        return allowed

    def test_iam_policies_allow_every_call(self):
        """The instance role allows what the agent calls on the instance; the CI
        role what `asg-agent rollout` (agent/rollout.c) calls; nothing more."""
        sources = sorted(n for n in os.listdir(os.path.join(SRCDIR, "agent"))
                         if n.endswith(".c"))
        ci_sources = [n for n in sources if n == "rollout.c"]
        instance = self.aws_calls([n for n in sources if n not in ci_sources])
        self.assertIn("autoscaling:CompleteLifecycleAction", instance)
        self.assertIn("s3:GetObject", instance)
        allowed = self.policy_actions("packaging/aws/iam-policy.json")
        self.assertEqual(sorted(instance - allowed), [], "called but not allowed")
        self.assertEqual(sorted(allowed - instance), [], "allowed but never called")
        if ci_sources:
            ci = self.aws_calls(ci_sources)
            self.assertIn("autoscaling:EnterStandby", ci)
            allowed = self.policy_actions("packaging/aws/ci-rollout-policy.json")
            self.assertEqual(sorted(ci - allowed), [], "rollout calls it, CI may not")
            self.assertEqual(sorted(allowed - ci), [], "CI may, rollout never calls it")

    def test_cloudformation_role_matches_policy(self):
        """The template's inline policy has the same actions as iam-policy.json."""
        tpl = read(os.path.join(SRCDIR, "packaging/aws/asg-blue-green.yaml"))
        inline = set(re.findall(r"^\s+- ((?:ec2|autoscaling|s3):\w+)\s*$", tpl, re.M))
        inline |= set(re.findall(r"^\s+Action: ((?:ec2|autoscaling|s3):\w+)\s*$", tpl, re.M))
        self.assertEqual(sorted(inline),
                         sorted(self.policy_actions("packaging/aws/iam-policy.json")))

    def test_scripts_parse(self):
        for script in ("packaging/build-deb", "packaging/build-rpm"):
            r = sh(["bash", "-n", os.path.join(SRCDIR, script)])
            self.assertEqual(r.returncode, 0, script + r.stderr)
        r = sh(["bash", "-n", COMPLETION])
        self.assertEqual(r.returncode, 0, r.stderr)
        nspawn = os.path.join(SRCDIR, "packaging/test-in-nspawn")
        compile(read(nspawn), nspawn, "exec")

    def test_debian_files(self):
        deb = os.path.join(SRCDIR, "packaging/debian")
        self.assertTrue(os.access(os.path.join(deb, "rules"), os.X_OK))
        self.assertIn("override_dh_auto_test:", read(os.path.join(deb, "rules")))
        for line in read(os.path.join(deb, "asg-agent.examples")).split():
            self.assertTrue(os.path.exists(os.path.join(SRCDIR, line)), line)

    @unittest.skipUnless(tool("packer"), "packer is not installed")
    def test_packer_template(self):
        tpl = os.path.join(SRCDIR, "packaging/packer/asg-agent.pkr.hcl")
        r = sh(["packer", "fmt", "-check", tpl])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = sh(["packer", "validate", "-syntax-only", tpl],
               env=dict(os.environ, CHECKPOINT_DISABLE="1"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
