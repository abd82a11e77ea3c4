#!/usr/bin/env python3
"""make-seeds.py - (re)write the seed corpora in tests/fuzz/corpus/TARGET/.

    python3 tests/fuzz/make-seeds.py [--srcdir DIR]

Deterministic: the same files every run (fixed mtimes, gzip without a
timestamp). Everything here is written for these targets; the AWS XML answers
are the shapes moto 5.2.1 returns (captured once, request ids fixed), and
nothing is copied from the read-only SigV4 test suite. tar.zst seeds need the
zstd program; the sparse-file seed needs GNU tar; both are skipped without them.
"""
import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

T = 1700000000  # mtime of every entry
tarfile.RECORDSIZE = 512  # no padding to 10 KiB records: small seeds


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---------------------------------------------------------------- XML
EC2_NS = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15"'
AS_NS = 'xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"'
RID = "<ResponseMetadata><RequestId>f00dcafe-0000-4000-8000-000000000001</RequestId></ResponseMetadata>"

XML = {
    # moto 5.2.1: EC2 DescribeTags for the instance's version and group tags
    "ec2-describe-tags.xml": '<?xml version="1.0" encoding="utf-8"?>\n'
    f"<DescribeTagsResponse {EC2_NS}><tagSet>"
    "<item><key>asg-agent:version</key><resourceId>i-3d8965d9a17ceed51</resourceId>"
    "<resourceType>instance</resourceType><value>1.4.2</value></item>"
    "<item><key>aws:autoscaling:groupName</key><resourceId>i-3d8965d9a17ceed51</resourceId>"
    "<resourceType>instance</resourceType><value>web-blue</value></item>"
    "</tagSet><requestId>request-id</requestId></DescribeTagsResponse>",
    "ec2-describe-tags-empty.xml": '<?xml version="1.0" encoding="utf-8"?>\n'
    f"<DescribeTagsResponse {EC2_NS}><tagSet/><requestId>request-id</requestId>"
    "</DescribeTagsResponse>",
    # moto 5.2.1: Auto Scaling DescribeTags for the group
    "as-describe-tags.xml": f"<DescribeTagsResponse {AS_NS}><DescribeTagsResult><Tags>"
    "<member><ResourceId>web-blue</ResourceId><ResourceType>auto-scaling-group</ResourceType>"
    "<Key>asg-agent:version</Key><Value>1.4.2</Value><PropagateAtLaunch>true</PropagateAtLaunch></member>"
    "<member><ResourceId>web-blue</ResourceId><ResourceType>auto-scaling-group</ResourceType>"
    "<Key>asg-agent:sha256</Key><Value>9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08</Value>"
    "<PropagateAtLaunch>true</PropagateAtLaunch></member>"
    f"</Tags></DescribeTagsResult>{RID}</DescribeTagsResponse>",
    "as-describe-tags-novalue.xml": f"<DescribeTagsResponse {AS_NS}><DescribeTagsResult><Tags>"
    "<member><Key>asg-agent:version</Key></member><member><Value>orphan</Value></member>"
    "<member><Key>k</Key><Value></Value></member>"
    f"</Tags><NextToken>abc</NextToken></DescribeTagsResult>{RID}</DescribeTagsResponse>",
    # moto 5.2.1: DescribeAutoScalingInstances, found and not found
    "as-describe-instances.xml": f"<DescribeAutoScalingInstancesResponse {AS_NS}>"
    "<DescribeAutoScalingInstancesResult><AutoScalingInstances><member>"
    "<InstanceId>i-3d8965d9a17ceed51</InstanceId><InstanceType>t3.micro</InstanceType>"
    "<AutoScalingGroupName>web-blue</AutoScalingGroupName><AvailabilityZone>us-east-1a</AvailabilityZone>"
    "<LifecycleState>Pending:Wait</LifecycleState><HealthStatus>Healthy</HealthStatus>"
    "<LaunchTemplate><LaunchTemplateId>lt-374b5f8335805441a</LaunchTemplateId>"
    "<LaunchTemplateName>web-lt</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
    "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member></AutoScalingInstances>"
    f"</DescribeAutoScalingInstancesResult>{RID}</DescribeAutoScalingInstancesResponse>",
    "as-describe-instances-empty.xml": f"<DescribeAutoScalingInstancesResponse {AS_NS}>"
    "<DescribeAutoScalingInstancesResult><AutoScalingInstances/>"
    f"</DescribeAutoScalingInstancesResult>{RID}</DescribeAutoScalingInstancesResponse>",
    # moto 5.2.1: DescribeLifecycleHooks
    "as-describe-hooks.xml": f"<DescribeLifecycleHooksResponse {AS_NS}><DescribeLifecycleHooksResult>"
    "<LifecycleHooks><member><LifecycleHookName>launch</LifecycleHookName>"
    "<AutoScalingGroupName>web-blue</AutoScalingGroupName>"
    "<LifecycleTransition>autoscaling:EC2_INSTANCE_LAUNCHING</LifecycleTransition>"
    "<HeartbeatTimeout>600</HeartbeatTimeout><GlobalTimeout>172800</GlobalTimeout>"
    "<DefaultResult>ABANDON</DefaultResult></member><member><LifecycleHookName>terminate</LifecycleHookName>"
    "<AutoScalingGroupName>web-blue</AutoScalingGroupName>"
    "<LifecycleTransition>autoscaling:EC2_INSTANCE_TERMINATING</LifecycleTransition>"
    "<HeartbeatTimeout>300</HeartbeatTimeout><GlobalTimeout>172800</GlobalTimeout>"
    "<DefaultResult>ABANDON</DefaultResult></member></LifecycleHooks>"
    f"</DescribeLifecycleHooksResult>{RID}</DescribeLifecycleHooksResponse>",
    "as-set-instance-health.xml": f"<SetInstanceHealthResponse {AS_NS}>{RID}</SetInstanceHealthResponse>",
    "as-complete-lifecycle-action.xml": f"<CompleteLifecycleActionResponse {AS_NS}>"
    f"<CompleteLifecycleActionResult/>{RID}</CompleteLifecycleActionResponse>",
    # Errors: EC2 (moto 5.2.1), the Query APIs, S3 (as tests/fakeaws sends them)
    "ec2-error.xml": '<?xml version="1.0" encoding="utf-8"?>\n'
    f"<Response {EC2_NS}><Errors><Error><Code>InvalidInstanceID.NotFound</Code>"
    "<Message>The instance ID 'i-00000000000000000' does not exist</Message></Error></Errors>"
    "<RequestID>request-id</RequestID></Response>",
    "ec2-throttle.xml": "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
    "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>",
    "as-error.xml": f"<ErrorResponse {AS_NS}><Error><Type>Sender</Type><Code>ValidationError</Code>"
    "<Message>No active Lifecycle Action found with instance ID i-3d8965d9a17ceed51</Message>"
    "</Error><RequestId>rid-2</RequestId></ErrorResponse>",
    "as-signature-error.xml": f"<ErrorResponse {AS_NS}><Error><Type>Sender</Type>"
    "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not "
    "match the signature you provided. The Canonical String for this request should have been\n"
    "'POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:autoscaling"
    ".us-east-1.amazonaws.com\nx-amz-date:20261122T154000Z\nx-amz-security-token:IQoJb3JpZ2lu\n\n"
    "content-type;host;x-amz-date;x-amz-security-token\n0123'</Message></Error>"
    "<RequestId>rid-3</RequestId></ErrorResponse>",
    "s3-error.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    "<Message>Please reduce your request rate.</Message><RequestId>s3-3</RequestId>"
    "<HostId>aGVsbG8gd29ybGQ=</HostId></Error>",
    "s3-nosuchkey.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message><Key>releases/app-1.4.2.tar.gz</Key>"
    "<RequestId>s3-4</RequestId></Error>",
    # XML features the parser must take in its stride
    "features.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    "<!-- comment --><?pi data?><a:Response xmlns:a=\"urn:x\" attr='v'>"
    "<![CDATA[<not-a-tag>]]>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;\xc3\xa9\xe2\x82\xac"
    "<tagSet><item><key>k&amp;1</key><value>a<b/>c</value></item></tagSet>text</a:Response>",
    "doctype.xml": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><a>&lol2;</a>',
    "external-entity.xml": '<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a>&x;</a>',
    "deep-64.xml": "<x>" * 64 + "</x>" * 64,
    "deep-65.xml": "<x>" * 65 + "</x>" * 65,
    "unclosed.xml": "<Response><Errors><Error><Code>X</Code>",
    "utf16.xml": "\ufeff<a>b</a>".encode("utf-16-le").decode("latin-1"),
}


def xml_seeds(d):
    for name, text in XML.items():
        data = text.encode("latin-1") if name == "utf16.xml" else text.encode()
        write(d, name, data)


# ---------------------------------------------------------------- IMDS credentials
def creds_seeds(d):
    ok = {
        "Code": "Success",
        "LastUpdated": "2026-11-22T15:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Token": "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6example==",
        "Expiration": "2026-11-22T21:00:00Z",
    }
    write(d, "success.json", json.dumps(ok, indent=2) + "\n")
    v = dict(ok, Expiration="2026-11-22T21:00:00.123456Z")
    write(d, "fractional.json", json.dumps(v))
    v = dict(ok, Expiration="2026-11-22T21:00:00+00:00")
    write(d, "offset.json", json.dumps(v))
    v = dict(ok, Expiration="2026-11-22T21:00:00+02:00")
    write(d, "bad-offset.json", json.dumps(v))
    v = dict(ok, Expiration="tomorrow")
    write(d, "bad-expiration.json", json.dumps(v))
    write(d, "failure.json", json.dumps({"Code": "AssumeRoleUnauthorizedAccess",
                                         "Message": "EC2 cannot assume the role",
                                         "LastUpdated": "2026-11-22T15:00:00Z"}))
    v = dict(ok)
    del v["SecretAccessKey"]
    write(d, "no-secret.json", json.dumps(v))
    v = dict(ok, Token="")
    del v["Code"], v["Expiration"]
    write(d, "no-token.json", json.dumps(v))
    v = dict(ok, AccessKeyId=12, Token=None, Expiration=["x"])
    write(d, "wrong-types.json", json.dumps(v))
    write(d, "escapes.json", '{"AccessKeyId":"A\\u0000B","SecretAccessKey":"\\ud83d\\ude00\\n",'
          '"Token":"t\\"\\\\","Expiration":"1970-01-01T00:00:00Z"}')
    write(d, "array.json", '[{"AccessKeyId":"a"}]')
    write(d, "truncated.json", json.dumps(ok)[:90])
    write(d, "time-only.txt", "2026-02-29T24:60:61Z")


# ---------------------------------------------------------------- rollout history tag
def history_seeds(d):
    sha = "a" * 64
    write(d, "finished.txt", f"asg-agent:history:1796534895\n2.0.0 {sha} finished from=web-blue "
          "t=0-9,9-18,18-27,27-36 by=arn:aws:sts::123456789012:assumed-role/ci/job-7")
    write(d, "running.txt", "asg-agent:history:1796534895\n1.4.2 - running from=web-green "
          "t=1-9,10- by=arn:aws:iam::123456789012:user/deploy bot")
    write(d, "no-steps.txt", "asg-agent:history:5\nv - rolled-back from=g t= by=")
    write(d, "cut.txt", "asg-agent:history:5\n" + "v" * 200 + " - finished from=g t=1-2 by=" +
          "x" * 100)


# ---------------------------------------------------------------- rollout tag
def rollrec_seeds(d):
    write(d, "baking.txt", "2.0.0 live=web-blue idle=web-green step=2/4 phase=baking size=6 "
          "steps=25,100 bake=300 since=1796534900 hist=1796534895")
    write(d, "switched.txt", "1.4.2 live=a idle=b step=1/1 phase=switched size=1 steps=- "
          "bake=0 since=0 hist=5")
    write(d, "twice.txt", "v live=a idle=b step=1/2 phase=scaling size=3 steps=50,100 "
          "size=4 extra=word")
    write(d, "junk.txt", "v live=a idle=b step=1/2x phase=baked size=6abc steps=- bake=-1")


# ---------------------------------------------------------------- state.json
def state_seeds(d):
    st = {
        "phase": "serving", "pid": 812, "pid_start": 1234567, "boot_start": 1763825400.125,
        "updated": 1763825431.5, "downloaded": True, "app_pid": 915, "app_pid_start": 1239876,
        "drain_until": 0.0,
        "app_health": {"probes": 42, "failures": 1, "failing": 0, "last_ok": 1763825430.25},
        "version": "1.4.2", "version_source": "group tag asg-agent:version",
        "instance_id": "i-0abc1234def567890", "group": "web-blue", "region": "us-east-1",
        "artifact": "s3://releases/app-1.4.2.tar.gz",
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "verification": "sha256 and signature", "release_dir": "/var/lib/asg-agent/releases/1.4.2",
        "app": "command /srv/app/bin/server (pid 915)", "health": "healthy",
        "lifecycle": "launch hook completed: CONTINUE", "error": None,
        "target_state": "InService", "boot_id": "6c1e5d4a-1b2c-4d3e-8f90-123456789abc",
        "timeline": [
            {"step": "imds", "start": 1763825400.2, "seconds": 0.31, "polls": 1},
            {"step": "version tag", "start": 1763825400.5, "seconds": 4.0, "polls": 3,
             "detail": "group tag appeared after 3 polls"},
            {"step": "download", "start": 1763825404.5, "seconds": 2.5, "polls": 0,
             "detail": "12.5 MB, 5.0 MB/s"},
            {"step": "health", "start": 1763825407.0, "seconds": None, "polls": 12},
        ],
        "api_calls": {"DescribeTags": {"calls": 3, "throttled": 1},
                      "CompleteLifecycleAction": {"calls": 1, "throttled": 0}},
    }
    write(d, "serving.json", json.dumps(st, indent=2) + "\n")
    write(d, "serving-plain.json", json.dumps(st, separators=(",", ":")))
    write(d, "minimal.json", '{"phase":"starting-agent"}')
    for ph in ("waiting-for-tag", "draining", "warmed", "stopped"):
        write(d, f"phase-{ph}.json", json.dumps({"phase": ph, "pid": 1, "timeline": []}))
    write(d, "failed.json", json.dumps({"phase": "failed", "error": "sha256 mismatch: expected "
                                        "00, got 11", "timeline": [{"step": "download"}]}))
    write(d, "unknown-phase.json", '{"phase":"booting"}')
    write(d, "wrong-types.json", '{"phase":"serving","pid":"812","timeline":{"step":1},'
          '"api_calls":[1],"app_health":7,"downloaded":"no","version":5}')
    write(d, "escapes.json", '{"phase":"serving","version":"1.0\\u0000x","group":"\\u00e9\\ud83d\\ude00",'
          '"error":"a\\nb\\"c","api_calls":{"":{"calls":1},"a\\u0000b":{}}}')
    steps = [{"step": f"s{i}", "start": i, "seconds": i / 2, "polls": i} for i in range(40)]
    ctrs = {f"Action{i}": {"calls": i, "throttled": 0} for i in range(40)}
    write(d, "many.json", json.dumps({"phase": "fetching", "timeline": steps, "api_calls": ctrs}))
    write(d, "doubles.json", '{"phase":"serving","boot_start":1e-300,"updated":-0.0,'
          '"drain_until":1.7976931348623157e308,"timeline":[{"step":"x","seconds":-1.5}]}')
    write(d, "truncated.json", json.dumps(st)[:300])


# ---------------------------------------------------------------- tar archives
def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    """entries: (name, kind, data/linkname, mode) with kind f d l h c b p."""
    kinds = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE,
             "h": tarfile.LNKTYPE, "c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE,
             "p": tarfile.FIFOTYPE}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for e in entries:
            name, kind = e[0], e[1]
            arg = e[2] if len(e) > 2 else None
            mode = e[3] if len(e) > 3 else (0o755 if kind == "d" else 0o644)
            ti = tarfile.TarInfo(name)
            ti.type = kinds[kind]
            ti.mode = mode
            ti.mtime = T
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            if kind in "lh":
                ti.linkname = arg
            if kind in "cb":
                ti.devmajor, ti.devminor = 1, 3
            if kind == "f":
                data = arg or b""
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return out.getvalue()


def zstd(data):
    if shutil.which("zstd") is None:
        return None
    return subprocess.run(["zstd", "-q", "-19", "-c"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def sparse_tar():
    """A GNU sparse file (a hole, then data, then a hole), made by GNU tar."""
    tar = shutil.which("tar")
    if tar is None or b"GNU tar" not in subprocess.run([tar, "--version"],
                                                       stdout=subprocess.PIPE).stdout:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "sparse.bin")
        with open(p, "wb") as f:
            f.truncate(64 * 1024)
            f.seek(20000)
            f.write(b"data in the middle of a sparse file\n")
        os.utime(p, (T, T))
        return subprocess.run([tar, "--sparse", "--format=gnu", "--owner=0", "--group=0",
                               "--numeric-owner", "--blocking-factor=1", f"--mtime=@{T}", "-C", tmp, "-cf", "-",
                               "sparse.bin"], check=True, stdout=subprocess.PIPE).stdout


def artifact_seeds(d):
    app = [
        ("app/", "d"),
        ("app/bin/", "d", None, 0o750),
        ("app/bin/server", "f", b"#!/bin/sh\nexec sleep 1000\n", 0o755),
        ("app/config/", "d"),
        ("app/config/app.yaml", "f", b"port: 8080\nlog: info\n"),
        ("app/current", "l", "bin/server"),
        ("app/config/link-up", "l", "../bin/server"),
        ("app/bin/server-hard", "h", "app/bin/server"),
        ("app/empty", "f", b""),
    ]
    good = tar_bytes(app)
    seeds = {
        "good.tar": good,
        "good-pad.tar": good + b"\0" * 512,  # another length: another delivery mode
        "good.tar.gz": gz(good),
        "good-ustar.tar": tar_bytes(app, tarfile.USTAR_FORMAT),
        "good-pax.tar": tar_bytes(app + [("app/" + "long-name-" * 12 + "end", "f", b"pax"),
                                         ("app/ünïcode-名前", "f", b"utf-8 names")],
                                  tarfile.PAX_FORMAT),
        "gnu-longname.tar": tar_bytes([("d/", "d"), ("d/" + "n" * 150, "f", b"x"),
                                       ("d/l", "l", "n" * 150)]),
        "dot-entries.tar": tar_bytes([("./", "d"), ("./a/./b/", "d"), ("a//b/c", "f", b"c")]),
        "multi-member.tar.gz": gz(good[:1024]) + gz(good[1024:]),
        "trailing-garbage.tar.gz": gz(good) + b"not gzip, just trailing bytes",
        "setuid.tar": tar_bytes([("suid", "f", b"x", 0o4755), ("sgid-dir/", "d", None, 0o2775),
                                 ("sgid-dir/f", "f", b"y", 0o2644)]),
        "perm-000.tar": tar_bytes([("locked/", "d", None, 0o000), ("locked/f", "f", b"z", 0o000)]),
        # malicious or broken: every one of these must fail and leave nothing behind
        "evil-dotdot.tar": tar_bytes([("ok", "f", b"1"), ("../escaped", "f", b"pwned")]),
        "evil-dotdot-inner.tar": tar_bytes([("a/", "d"), ("a/../../escaped", "f", b"pwned")]),
        "evil-absolute.tar": tar_bytes([("/tmp/asg-fuzz-escaped", "f", b"pwned")]),
        "evil-symlink-out.tar": tar_bytes([("etc", "l", "../../../../etc")]),
        "evil-symlink-abs.tar": tar_bytes([("passwd", "l", "/etc/passwd")]),
        "evil-symlink-traverse.tar": tar_bytes([("up", "l", ".."), ("up/escaped", "f", b"pwned")]),
        "evil-symlink-dir-swap.tar": tar_bytes([("d/", "d"), ("d/f", "f", b"1"), ("d", "l", "."),
                                                ("d/g", "f", b"2")]),
        "evil-symlink-then-file.tar": tar_bytes([("x", "l", "canary"), ("x", "f", b"overwrite")]),
        "evil-symlink-dotdot-after-name.tar": tar_bytes([("a/", "d"), ("a/b/", "d"),
                                                         ("l", "l", "a/../../x")]),
        "evil-hardlink-out.tar": tar_bytes([("h", "h", "../canary")]),
        "evil-hardlink-abs.tar": tar_bytes([("h", "h", "/etc/passwd")]),
        "evil-hardlink-to-symlink.tar": tar_bytes([("l", "l", "target"), ("h", "h", "l")]),
        "evil-hardlink-to-dir.tar": tar_bytes([("d/", "d"), ("h", "h", "d")]),
        "evil-hardlink-forward.tar": tar_bytes([("h", "h", "later"), ("later", "f", b"x")]),
        "evil-device.tar": tar_bytes([("null", "c")]),
        "evil-blockdev.tar": tar_bytes([("sda", "b")]),
        "evil-fifo.tar": tar_bytes([("fifo", "p")]),
        "evil-duplicate.tar": tar_bytes([("f", "f", b"1"), ("f", "f", b"2")]),
        "evil-dir-over-file.tar": tar_bytes([("a", "f", b"1"), ("a/", "d")]),
        "evil-file-over-dir.tar": tar_bytes([("a/", "d"), ("a", "f", b"1")]),
        "evil-empty-name.tar": tar_bytes([("", "f", b"1")]),
        "evil-long-component.tar": tar_bytes([("x" * 300, "f", b"1")], tarfile.PAX_FORMAT),
        "evil-deep.tar.gz": gz(tar_bytes([("d/" * 300 + "f", "f", b"1")], tarfile.PAX_FORMAT)),
        "too-big.tar.gz": gz(tar_bytes([("big", "f", b"\0" * (300 * 1024))])),
        "too-many.tar.gz": gz(tar_bytes([(f"f{i}", "f", b"") for i in range(250)])),
        "bad-crc.tar.gz": (lambda z: z[:-8] + bytes([z[-8] ^ 1]) + z[-7:])(gz(good)),
        "truncated.tar.gz": gz(good)[:200],
        "truncated.tar": good[:1536],
        "empty.tar": b"\0" * 1024,
        "not-an-archive": b"hello, this is not a tar file\n",
    }
    z = zstd(good)
    if z is not None:
        seeds["good.tar.zst"] = z
    s = sparse_tar()
    if s is not None:
        seeds["gnu-sparse.tar"] = s
    # The same archives at other lengths, so they also arrive in other modes (see fuzz_artifact.c).
    for name in ("good-ustar.tar", "good-pax.tar", "dot-entries.tar", "setuid.tar", "perm-000.tar",
                 "gnu-longname.tar", "gnu-sparse.tar"):
        if name in seeds:
            seeds[name.replace(".tar", "-pad.tar")] = seeds[name] + b"\0" * 512
    for name, data in seeds.items():
        write(d, name, data)


# ---------------------------------------------------------------- configuration
def config_seeds(d, srcdir):
    example = os.path.join(srcdir, "agent.conf.example")
    os.makedirs(d, exist_ok=True)
    if os.path.exists(example):
        shutil.copy(example, os.path.join(d, "agent.conf.example"))
    write(d, "minimal.conf", "[artifact]\nurl = s3://releases/app-{version}.tar.gz\n"
          "[app]\ncommand = /srv/app/bin/server --port 8080\n")
    write(d, "full.conf", """# a production-like configuration
[agent]
log_level = debug
state_dir = /var/lib/asg-agent
deadline = 900

[aws]
region = eu-west-1
imds_timeout = 60
api_timeout = 30

[version]
tag = app:version
source = instance
wait = 600

[artifact]
url = https://releases.example.com/app/{version}/app-{version}.tar.gz
sha256_tag = app:sha256
public_key = /etc/asg-agent/release-key.pem
signature_url = {url}.sig
keep = 5
max_size = 2G
allow_unverified = no

[app]
unit = app.service
pre_start = bin/migrate
pre_start_timeout = 300
health_url = http://127.0.0.1:8080/health
health_timeout = 600
stop_timeout = 20
health_interval = 2
unhealthy_after = 5
unhealthy_grace = 120
replace_unhealthy = yes
warm_start = yes

[health]
listen = [::]:8081
path = /healthz

[lifecycle]
launch_hook = launch
terminate_hook = terminate
heartbeat = 30
poll = 1
drain = 20
""")
    write(d, "errors.conf", "top = level\n[agent]\nlog_level = loud\ndeadline = 5\n"
          "deadline = 99999999999999999999\n[nope]\nx = 1\n[app]\nunit = a.service\n"
          "command = /bin/true\nwarm_start = maybe\n[artifact]\nmax_size = 4Q\nurl = ftp://x\n"
          "[health]\npath = healthz\n[agent]\nstate_dir = relative\nunknown = 1\n")
    write(d, "crlf-bom.conf", "\ufeff[agent]\r\nlog_level = warn ; inline comment\r\n"
          "; comment\r\n# comment\r\n[artifact]\r\nmax_size = 512m\r\n")
    write(d, "syntax.conf", "[agent\nlog_level\n= value\n[]\n")
    # Values a real configuration may need that are longer than inih's default line buffer.
    long_url = "https://releases.example.com/app/{version}/app.tar.gz?" + "&".join(
        f"X-Amz-Param{i}=value{i}" for i in range(12))
    write(d, "long-line.conf", "[artifact]\nurl = " + long_url + "\n[app]\ncommand = "
          "/usr/bin/java " + " ".join(f"-Dopt{i}=v{i}" for i in range(30)) + " -jar app.jar\n"
          "[health]\npath = /healthz\n")


# ---------------------------------------------------------------- SigV4 requests
def sigv4_seeds(d):
    seeds = {
        "get-simple.req": "GET / HTTP/1.1\nHost:example.amazonaws.com\n"
                          "X-Amz-Date:20150830T123600Z\n\n",
        "get-query.req": "GET /?Param2=value2&Param1=value1&Param1=value0&empty=&noeq HTTP/1.1\n"
                         "Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\n",
        "get-query-escapes.req": "GET /?a%20b=c%2Fd&%E1%88%B4=%7e&plus=a+b&tilde=~ HTTP/1.1\n"
                                 "Host:example.amazonaws.com\n\n",
        "get-path-dots.req": "GET /./a/../b//c/./d/.. HTTP/1.1\nHost:example.amazonaws.com\n\n",
        "get-path-escapes.req": "GET /ex%20ample/%E1%88%B4/a b/ HTTP/1.1\nHost:h\n\n",
        "get-header-dup-fold.req": "GET / HTTP/1.1\nHost:example.amazonaws.com\n"
                                   "My-Header1:value1\nMy-Header1:  value2  \nmy-header1:value3\n"
                                   "My-Header2:\"a   b   c\"\nMy-Folded:first\n  second\n\tthird\n\n",
        "get-header-empty.req": "GET / HTTP/1.1\nHost:h\nX-Empty:\nX-Novalue\n\n",
        "post-form.req": "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded; "
                         "charset=utf-8\nHost:autoscaling.us-east-1.amazonaws.com\n"
                         "X-Fuzz-Service:autoscaling\nX-Fuzz-Region:us-east-1\n"
                         "X-Fuzz-Date:20261122T154000Z\nX-Amz-Security-Token:IQoJb3JpZ2lu\n\n"
                         "Action=DescribeTags&Version=2011-01-01&Filters.member.1.Name=auto-scaling-group",
        "post-binary-body.req": b"PUT /bucket/key HTTP/1.1\nHost:s3.amazonaws.com\n"
                                b"X-Fuzz-S3:1\nX-Fuzz-Service:s3\n\n\x00\x01\x02\xff body",
        "s3-get.req": "GET /releases/app 1.4.2.tar.gz HTTP/1.1\nHost:s3.us-east-1.amazonaws.com\n"
                      "X-Amz-Content-Sha256:UNSIGNED-PAYLOAD\nRange:bytes=1024-\n"
                      "X-Fuzz-S3:yes\nX-Fuzz-Service:s3\nX-Fuzz-Payload:UNSIGNED-PAYLOAD\n\n",
        "bad-method.req": "G(ET / HTTP/1.1\nHost:h\n\n",
        "bad-query.req": "GET /?a=%zz HTTP/1.1\nHost:h\n\n",
        "bad-header.req": "GET / HTTP/1.1\nHo st:h\nX:a\rb\n\n",
        "bad-scope.req": "GET / HTTP/1.1\nHost:h\nX-Fuzz-Region:us/east\nX-Fuzz-Date:2015\n\n",
        "bad-key.req": "GET / HTTP/1.1\nHost:h\nX-Fuzz-Key:AKID/EXAMPLE\nX-Fuzz-Secret:\n\n",
        "options-star.req": "OPTIONS * HTTP/1.1\nHost:h\n\n",
    }
    for name, data in seeds.items():
        write(d, name, data)


# ---------------------------------------------------------------- health endpoint requests
def health_seeds(d):
    # The first byte picks the chunk size: 0 all at once, else 1 + byte % 64.
    reqs = {
        "get.http": "GET /healthz HTTP/1.1\r\nHost: 10.0.1.5:8081\r\nUser-Agent: ELB-HealthChecker/2.0\r\n"
                    "Accept-Encoding: gzip, compressed\r\nConnection: close\r\n\r\n",
        "head.http": "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "pipelined.http": "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz?x=1 HTTP/1.1\r\n"
                          "Host: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\n\r\n"
                          "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "http10.http": "GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
                       "GET /healthz HTTP/1.0\r\n\r\n",
        "absolute.http": "GET http://10.0.1.5:8081/healthz#frag HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET https://host HTTP/1.1\r\n\r\n",
        "bare-lf.http": "\r\n\nGET /healthz HTTP/1.1\nHost: x\n\n",
        "body.http": "POST /healthz HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "chunked.http": "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "connection-tokens.http": "GET /healthz HTTP/1.1\r\nConnection: Upgrade, \tclose ,keep-alive\r\n\r\n",
        "http2.http": "GET /healthz HTTP/2.0\r\n\r\n",
        "pri.http": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "bad-method.http": "G\x01T /healthz HTTP/1.1\r\n\r\n",
        "bad-header.http": "GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "obs-fold.http": "GET /healthz HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "ctl-in-value.http": "GET /healthz HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
        "tls-hello.http": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "huge-header.http": "GET /healthz HTTP/1.1\r\nX-Big: " + "a" * 9000 + "\r\n\r\n",
        "slow-partial.http": "GET /healthz HTTP/1.1\r\nHost: x\r\n",
    }
    prefixes = [b"\0", b"\x01", b"\x07", b"\x3f"]
    for i, (name, text) in enumerate(reqs.items()):
        write(d, name, prefixes[i % len(prefixes)] + text.encode("latin-1"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--srcdir", default=os.path.dirname(os.path.dirname(here)))
    a = ap.parse_args()
    c = os.path.join(here, "corpus")
    xml_seeds(os.path.join(c, "xml"))
    creds_seeds(os.path.join(c, "creds"))
    state_seeds(os.path.join(c, "state"))
    history_seeds(os.path.join(c, "history"))
    rollrec_seeds(os.path.join(c, "rollrec"))
    artifact_seeds(os.path.join(c, "artifact"))
    config_seeds(os.path.join(c, "config"), a.srcdir)
    sigv4_seeds(os.path.join(c, "sigv4"))
    health_seeds(os.path.join(c, "health"))
    for t in sorted(os.listdir(c)):
        files = os.listdir(os.path.join(c, t))
        size = sum(os.path.getsize(os.path.join(c, t, f)) for f in files)
        print(f"{t:9} {len(files):3} seeds {size:8} bytes")


if __name__ == "__main__":
    sys.exit(main())
