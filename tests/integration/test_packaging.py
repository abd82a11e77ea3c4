"""Shipping: the systemd unit, man pages, bash completion and packaging files.

Cheap static checks (a few seconds in all), then the .deb and .rpm built
around the static binary (packaging/build-deb and packaging/build-rpm with
--binary, a few seconds each: nothing is compiled): they depend on systemd
(and /bin/sh) only, carry the binary byte for byte, static, with the same files
as before, and lintian finds no error in the .deb.

The binary packaged is ASG_STATIC_BINARY when it is set, else
build-static/x86_64/asg-agent (packaging/build-static x86_64 makes it); an
arm64/aarch64 pair is built too from ASG_STATIC_AARCH64 or
build-static/aarch64/asg-agent when it is there. Without a binary, or without
a tool, a test is skipped with the reason.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
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
        self.assertEqual(s["LimitCORE"], ["0"], "no core dumps of the credentials")
        self.assertEqual(s["MemoryMax"], ["1G"])

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

    def test_conf_page_is_what_the_binary_prints(self):
        # The page and agent.conf.example against `asg-agent config-reference`: a diff when stale.
        script = os.path.join(SRCDIR, "man", "make-conf-man.py")
        if not os.path.exists(script):
            self.skipTest("man/make-conf-man.py is not in this tree")
        r = sh([sys.executable, script, "--check", AGENT])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""),
                         "run: make update-conf-reference")


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
        self.assertEqual(self.complete("aws", ""),
                         ["ec2", "autoscaling", "elbv2", "elb", "cloudwatch", "sts"])


class Packaging(unittest.TestCase):
    def test_versions_agree(self):
        ac = re.search(r"AC_INIT\(\[asg-agent\],\s*\[([^]]+)\]",
                       read(os.path.join(SRCDIR, "configure.ac"))).group(1)
        deb = re.match(r"asg-agent \(([^)-]+)-",
                       read(os.path.join(SRCDIR, "packaging/debian/changelog"))).group(1)
        rpm = re.search(r"(?m)^Version:\s*(\S+)",
                        read(os.path.join(SRCDIR, "packaging/rpm/asg-agent.spec"))).group(1)
        self.assertEqual((deb, rpm), (ac, ac))

    PREFIX = {"EC2": "ec2", "AUTOSCALING": "autoscaling", "ELBV2": "elasticloadbalancing",
              "ELB": "elasticloadbalancing",
              "CLOUDWATCH": "cloudwatch", "STS": "sts"}
    # The IAM actions of the S3 requests (the multipart ones are s3:PutObject; a
    # HeadObject of a missing key answers 404 only with s3:ListBucket).
    S3_IAM = {"PutObject": ["s3:PutObject"], "CreateMultipartUpload": ["s3:PutObject"],
              "UploadPart": ["s3:PutObject"], "CompleteMultipartUpload": ["s3:PutObject"],
              "AbortMultipartUpload": ["s3:AbortMultipartUpload"],
              "HeadObject": ["s3:GetObject", "s3:ListBucket"]}

    def aws_calls(self, files):
        """The IAM actions the given agent/*.c files call: aws_call() and
        aws_call_ok() name service and action literally; rollgrp_standby() is
        passed EnterStandby/ExitStandby by its callers; tags.c's describe_tags() is
        DescribeTags of its service; tags_set_group() and tags_delete_group() are
        CreateOrUpdateTags and DeleteTags, calls of whoever calls them (CI's rollout
        and publish), not of tags.c, and lifecycle_hook_tags() their
        DescribeLifecycleHooks;
        aws_s3_open() is s3:GetObject."""
        calls = set()
        for name in files:
            src = read(os.path.join(SRCDIR, "agent", name))
            # tags.c's group setters are calls of whoever calls them (CI's rollout and publish).
            setters = {"tags_set_group": "CreateOrUpdateTags", "tags_delete_group": "DeleteTags"}
            for fn, action in setters.items():
                if name == "tags.c":
                    src, n = re.subn(r"\n" + fn + r"\(.*?\n}\n", "\n", src, flags=re.S)
                    self.assertEqual(n, 1, f"tags.c defines {fn}")
                elif re.search(r"\b" + fn + r"\(", src):
                    calls.add(f"autoscaling:{action}")
            # lifecycle_hook_tags() reads the hooks for whoever tags the group with them.
            if name != "lifecycle.c" and re.search(r"\blifecycle_hook_tags\(", src):
                calls.add("autoscaling:DescribeLifecycleHooks")
            for svc, action in re.findall(
                    r'\baws_call(?:_ok)?\([^;]*?AWS_(EC2|AUTOSCALING|ELBV2|ELB|CLOUDWATCH|STS),'
                    r'\s*"(\w+)"', src):
                calls.add(f"{self.PREFIX[svc]}:{action}")
            # rollgrp.c's delay_of() makes the call it is given, one per load balancer kind.
            for svc, action in re.findall(r'\bdelay_of\(a, AWS_(ELBV2|ELB),\s*"(\w+)"', src):
                calls.add(f"{self.PREFIX[svc]}:{action}")
            for action in re.findall(r'\brollgrp_standby\([^;]*?"(\w+Standby)"', src):
                calls.add(f"autoscaling:{action}")
            # tags.c's describe_tags() makes DescribeTags calls for the service it is given.
            for svc in re.findall(r'\bdescribe_tags\([^;]*?AWS_(EC2|AUTOSCALING)', src):
                calls.add(f"{self.PREFIX[svc]}:DescribeTags")
            if re.search(r"\baws_s3_open\(", src) and name != "aws.c":
                calls.add("s3:GetObject")
            # aws_s3_call() requests name their S3 action in .action = "...".
            for action in re.findall(r'\.action = (?:abort \? )?"(\w+)"(?: :\s*"(\w+)")?',
                                     src):
                for a in filter(None, action):
                    calls.update(self.S3_IAM[a])
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
        role what `asg-agent rollout` and `publish` (agent/roll*.c, publish.c)
        call; nothing more."""
        sources = sorted(n for n in os.listdir(os.path.join(SRCDIR, "agent"))
                         if n.endswith(".c"))
        ci_sources = [n for n in sources if n.startswith("roll") or n == "publish.c"]
        instance = self.aws_calls([n for n in sources if n not in ci_sources])
        self.assertIn("autoscaling:CompleteLifecycleAction", instance)
        self.assertIn("s3:GetObject", instance)
        allowed = self.policy_actions("packaging/aws/iam-policy.json")
        self.assertEqual(sorted(instance - allowed), [], "called but not allowed")
        self.assertEqual(sorted(allowed - instance), [], "allowed but never called")
        if ci_sources:
            ci = self.aws_calls(ci_sources)
            self.assertIn("autoscaling:EnterStandby", ci)
            self.assertIn("s3:AbortMultipartUpload", ci)
            self.assertIn("cloudwatch:DescribeAlarms", ci)
            allowed = self.policy_actions("packaging/aws/ci-rollout-policy.json")
            self.assertEqual(sorted(ci - allowed), [], "rollout calls it, CI may not")
            self.assertEqual(sorted(allowed - ci), [], "CI may, rollout never calls it")

    def test_cloudformation_role_matches_policy(self):
        """The template's inline policy has the same actions as iam-policy.json."""
        tpl = read(os.path.join(SRCDIR, "packaging/aws/asg-blue-green.yaml"))
        inline = set(re.findall(r"^\s+- ((?:ec2|autoscaling|s3|cloudwatch):\w+)\s*$", tpl, re.M))
        inline |= set(re.findall(r"^\s+Action: ((?:ec2|autoscaling|s3|cloudwatch):\w+)\s*$",
                                 tpl, re.M))
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


# The packages around the static binary -------------------------------------

STATIC_DEFAULT = os.path.join(SRCDIR, "build-static", "x86_64", "asg-agent")
STATIC_AARCH64_DEFAULT = os.path.join(SRCDIR, "build-static", "aarch64", "asg-agent")
# e_machine of the ELF header: (Debian architecture, RPM architecture, readelf's Machine).
ELF_MACHINES = {62: ("amd64", "x86_64", "X86-64"), 183: ("arm64", "aarch64", "AArch64")}

# What the packages installed before the static binary, which they keep: the
# .deb's paths (dpkg-deb -c) and the .rpm's (rpm -qpl; Debian's rpm puts the
# docs in asg-agent-VERSION and leaves the man pages uncompressed, Fedora's
# does not: normalized). The .deb adds its lintian overrides.
DEB_PATHS = """
./ ./etc/ ./etc/asg-agent/ ./etc/asg-agent/agent.conf ./etc/asg-agent/agent.conf.example
./lib/ ./lib/systemd/ ./lib/systemd/system/ ./lib/systemd/system/asg-agent.service
./lib/systemd/system-preset/ ./lib/systemd/system-preset/80-asg-agent.preset
./usr/ ./usr/bin/ ./usr/bin/asg-agent ./usr/lib/ ./usr/lib/tmpfiles.d/
./usr/lib/tmpfiles.d/asg-agent.conf ./usr/share/ ./usr/share/bash-completion/
./usr/share/bash-completion/completions/ ./usr/share/bash-completion/completions/asg-agent
./usr/share/doc/ ./usr/share/doc/asg-agent/ ./usr/share/doc/asg-agent/README.md.gz
./usr/share/doc/asg-agent/changelog.Debian.gz ./usr/share/doc/asg-agent/copyright
./usr/share/doc/asg-agent/examples/ ./usr/share/doc/asg-agent/examples/README.md
./usr/share/doc/asg-agent/examples/asg-agent.pkr.hcl
./usr/share/doc/asg-agent/examples/asg-blue-green.yaml
./usr/share/doc/asg-agent/examples/ci-rollout-policy.json
./usr/share/doc/asg-agent/examples/example-app.service
./usr/share/doc/asg-agent/examples/iam-policy.json
./usr/share/lintian/ ./usr/share/lintian/overrides/ ./usr/share/lintian/overrides/asg-agent
./usr/share/man/ ./usr/share/man/man5/ ./usr/share/man/man5/asg-agent.conf.5.gz
./usr/share/man/man8/ ./usr/share/man/man8/asg-agent.8.gz
./var/ ./var/lib/ ./var/lib/asg-agent/
""".split()
RPM_PATHS = """
/etc/asg-agent /etc/asg-agent/agent.conf /etc/asg-agent/agent.conf.example
/usr/bin/asg-agent /usr/lib/systemd/system-preset/80-asg-agent.preset
/usr/lib/systemd/system/asg-agent.service /usr/lib/tmpfiles.d/asg-agent.conf
/usr/share/bash-completion/completions/asg-agent /usr/share/doc/asg-agent
/usr/share/doc/asg-agent/README.md /usr/share/doc/asg-agent/examples
/usr/share/doc/asg-agent/examples/README.md /usr/share/doc/asg-agent/examples/asg-agent.pkr.hcl
/usr/share/doc/asg-agent/examples/asg-blue-green.yaml
/usr/share/doc/asg-agent/examples/ci-rollout-policy.json
/usr/share/doc/asg-agent/examples/example-app.service
/usr/share/doc/asg-agent/examples/iam-policy.json
/usr/share/man/man5/asg-agent.conf.5 /usr/share/man/man8/asg-agent.8 /var/lib/asg-agent
""".split()


def elf_machine(path):
    """ELF_MACHINES' entry for a binary, or None when it is not a known ELF."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return ELF_MACHINES.get(int.from_bytes(head[18:20], "little" if head[5] == 1 else "big"))


def static_binary(aarch64=False):
    """(path, None), or (None, why it is not there)."""
    if aarch64:
        path = os.environ.get("ASG_STATIC_AARCH64") or STATIC_AARCH64_DEFAULT
        if not os.path.isfile(path):
            return None, (f"no aarch64 static binary: ASG_STATIC_AARCH64 or {path} "
                          "(packaging/build-static aarch64)")
        return path, None
    path = os.environ.get("ASG_STATIC_BINARY")
    if path:
        if not os.path.isfile(path):
            return None, f"ASG_STATIC_BINARY={path} does not exist"
        return path, None
    if not os.path.isfile(STATIC_DEFAULT):
        return None, ("no static binary: set ASG_STATIC_BINARY=/path, or make "
                      f"{STATIC_DEFAULT} (packaging/build-static x86_64)")
    return STATIC_DEFAULT, None


def cpio_members(data):
    """{name: (mode, bytes)} of a cpio archive in the "newc" format (rpm2cpio's)."""
    out, off = {}, 0
    while off + 110 <= len(data):
        hdr = data[off:off + 110]
        if hdr[:6] not in (b"070701", b"070702"):
            raise ValueError(f"not a newc cpio header at {off}")
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        out[name] = (mode, data[off:off + size])
        off = (off + size + 3) & ~3
    return out


class StaticPackage:
    """What both packages are checked for; a subclass builds one in setUpClass
    and sets cls.binary (the input), cls.pkg, cls.packaged (/usr/bin/asg-agent's
    bytes in the package) and cls.mode (its permissions)."""

    aarch64 = False
    skip = None
    out = None

    @classmethod
    def find_binary(cls, tools):
        """False, with cls.skip saying why, when the package cannot be built here."""
        cls.skip = cls.out = None       # not StaticDeb's, in StaticDebArm64
        for name, pkg in tools:
            if tool(name) is None:
                cls.skip = f"{name} is not installed ({pkg})"
                return False
        binary, why = static_binary(cls.aarch64)
        machine = binary and elf_machine(binary)
        if binary is None:
            cls.skip = why
        elif machine is None:
            cls.skip = f"{binary} is not an x86_64 or aarch64 ELF binary"
        elif cls.aarch64 and machine[1] != "aarch64":
            cls.skip = f"{binary} is not an aarch64 binary"
        if cls.skip:
            return False
        cls.binary, cls.machine = os.path.abspath(binary), machine
        cls.out = tempfile.mkdtemp(prefix="asg-pkg-")
        return True

    def setUp(self):
        if self.skip:
            self.skipTest(self.skip)

    @classmethod
    def build(cls, script, arch):
        r = sh([os.path.join(SRCDIR, "packaging", script), "--arch", arch,
                "--binary", cls.binary, cls.out], timeout=300,
               env=dict(os.environ, LC_ALL="C.UTF-8"))
        if r.returncode != 0:
            shutil.rmtree(cls.out, ignore_errors=True)
            raise AssertionError(f"packaging/{script} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        return r

    @classmethod
    def tearDownClass(cls):
        if cls.out:
            shutil.rmtree(cls.out, ignore_errors=True)

    def test_binary_is_the_input_byte_for_byte(self):
        with open(self.binary, "rb") as f:
            self.assertTrue(self.packaged == f.read(),
                            "/usr/bin/asg-agent in the package differs from " + self.binary)
        self.assertEqual(self.mode & 0o7777, 0o755)

    @unittest.skipUnless(tool("readelf"), "readelf is not installed (binutils)")
    def test_packaged_binary_is_static(self):
        with tempfile.NamedTemporaryFile(prefix="asg-agent-") as f:
            f.write(self.packaged)
            f.flush()
            r = sh(["readelf", "-lhd", f.name])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.machine[2], r.stdout)
        self.assertNotIn("INTERP", r.stdout, "a static binary has no program interpreter")
        self.assertNotIn("(NEEDED)", r.stdout, "a static binary needs no shared library")


class StaticDeb(StaticPackage, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not cls.find_binary((("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"))):
            return
        arch = cls.machine[0]
        cls.log = cls.build("build-deb", arch).stdout
        cls.pkg = os.path.join(cls.out, f"asg-agent_{cls.version()}_{arch}.deb")
        tar = sh(["dpkg-deb", "--fsys-tarfile", cls.pkg], text=False).stdout
        # As dpkg-deb -c lists them: "./usr/bin/asg-agent", "./usr/bin/".
        cls.paths = [line.split()[5] for line in sh(["dpkg-deb", "-c", cls.pkg]).stdout.splitlines()]
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            member = t.getmember("./usr/bin/asg-agent")
            cls.mode = member.mode
            cls.packaged = t.extractfile(member).read()

    @staticmethod
    def version():
        return re.match(r"asg-agent \(([^)]+)\)",
                        read(os.path.join(SRCDIR, "packaging/debian/changelog"))).group(1)

    def field(self, name):
        r = sh(["dpkg-deb", "-f", self.pkg, name])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_depends_only_systemd(self):
        depends = self.field("Depends")
        names = {re.split(r"[\s(:]", alt.strip())[0]
                 for dep in depends.split(",") for alt in dep.split("|")}
        # debhelper's ${misc:Depends} adds nothing for this package today.
        self.assertEqual(names, {"systemd"}, depends)
        for other in ("Pre-Depends", "Recommends"):
            self.assertEqual(self.field(other), "", other)
        self.assertIn(f"Depends: {depends}", self.log, "build-deb prints the Depends")
        self.assertEqual(self.field("Architecture"), self.machine[0])

    def test_same_files_as_before(self):
        self.assertEqual(sorted(self.paths), sorted(DEB_PATHS))

    def test_enabled_never_started(self):
        scripts = tempfile.mkdtemp(prefix="asg-ctl-")
        try:
            self.assertEqual(sh(["dpkg-deb", "-e", self.pkg, scripts]).returncode, 0)
            postinst = read(os.path.join(scripts, "postinst"))
            self.assertIn("deb-systemd-helper enable 'asg-agent.service'", postinst)
            self.assertNotIn("deb-systemd-invoke", postinst, "the package never starts the agent")
            self.assertFalse(os.path.exists(os.path.join(scripts, "prerm")),
                             "the package never stops the agent")
            self.assertEqual(read(os.path.join(scripts, "conffiles")).split(),
                             ["/etc/asg-agent/agent.conf", "/etc/asg-agent/agent.conf.example"])
        finally:
            shutil.rmtree(scripts, ignore_errors=True)

    @unittest.skipUnless(tool("lintian"), "lintian is not installed")
    def test_lintian_no_errors(self):
        r = sh(["lintian", self.pkg], timeout=300)
        errors = [line for line in r.stdout.splitlines() if line.startswith("E: ")]
        self.assertEqual(errors, [], r.stdout)
        for line in r.stdout.splitlines():
            print(f"# lintian: {line}")


class StaticRpm(StaticPackage, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not cls.find_binary((("rpmbuild", "rpm"), ("rpm2cpio", "rpm"))):
            return
        arch = cls.machine[1]
        cls.log = cls.build("build-rpm", arch).stdout
        rpms = [f for f in os.listdir(cls.out) if f.endswith(f".{arch}.rpm")]
        if len(rpms) != 1:
            shutil.rmtree(cls.out, ignore_errors=True)
            raise AssertionError(f"not one .{arch}.rpm: {rpms}")
        cls.pkg = os.path.join(cls.out, rpms[0])
        members = cpio_members(sh(["rpm2cpio", cls.pkg], text=False).stdout)
        cls.mode, cls.packaged = members["./usr/bin/asg-agent"]

    def rpm(self, *args):
        r = sh(["rpm", "-qp"] + list(args) + [self.pkg])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_requires_only_systemd_and_sh(self):
        evr = self.rpm("--qf", "%{VERSION}-%{RELEASE}")[0]
        requires = self.rpm("-R")
        # config(asg-agent) is rpm's own, for the %config files: the package provides it.
        other = [r for r in requires if r not in ("systemd", "/bin/sh", f"config(asg-agent) = {evr}")
                 and not r.startswith("rpmlib(")]
        self.assertEqual(other, [], requires)
        self.assertIn("systemd", requires)
        self.assertIn(f"config(asg-agent) = {evr}", self.rpm("--provides"))
        self.assertIn("Requires:", self.log, "build-rpm prints the Requires")
        self.assertEqual(self.rpm("--qf", "%{ARCH}"), [self.machine[1]])

    def test_same_files_as_before(self):
        paths = []
        for p in self.rpm("-l"):
            if p.startswith("/usr/lib/.build-id"):
                continue        # links to the binary's build id, when it has one
            p = re.sub(r"^/usr/share/doc/asg-agent-[^/]+", "/usr/share/doc/asg-agent", p)
            paths.append(re.sub(r"^(/usr/share/man/.*)\.gz$", r"\1", p))
        self.assertEqual(sorted(paths), sorted(RPM_PATHS))
        self.assertEqual(self.rpm("-c"), ["/etc/asg-agent/agent.conf",
                                          "/etc/asg-agent/agent.conf.example"])

    def test_enabled_never_started(self):
        scripts = "\n".join(self.rpm("--scripts"))
        self.assertIn("preset asg-agent.service", scripts)
        self.assertNotRegex(scripts, r"\b(start|restart|try-restart)\b",
                            "the package never starts or restarts the agent")


class StaticDebArm64(StaticDeb):
    aarch64 = True


class StaticRpmAarch64(StaticRpm):
    aarch64 = True


class StaticPackagingFiles(unittest.TestCase):
    """Nothing is compiled while packaging: no -dev package, no compiler."""

    def test_debian_control(self):
        control = read(os.path.join(SRCDIR, "packaging/debian/control"))
        build_depends = re.search(r"(?ms)^Build-Depends:(.*?)^\S", control).group(1)
        self.assertEqual([d.strip() for d in build_depends.split(",") if d.strip()],
                         ["debhelper-compat (= 13)"])
        self.assertRegex(control, r"(?m)^Depends: systemd, \$\{misc:Depends\}$")
        self.assertNotIn("shlibs:Depends", control)
        self.assertNotIn("libsystemd", control)

    def test_rpm_spec(self):
        spec = read(os.path.join(SRCDIR, "packaging/rpm/asg-agent.spec"))
        self.assertEqual(re.findall(r"(?m)^BuildRequires:\s*(.+)$", spec), ["systemd-rpm-macros"])
        self.assertNotRegex(spec, r"(?m)^%(configure|make_build|make_install|build)\b")
        self.assertRegex(spec, r"(?m)^%global debug_package %\{nil\}$")
        self.assertNotIn("libsystemd", spec)


if __name__ == "__main__":
    unittest.main()
