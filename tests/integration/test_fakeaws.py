"""Tests of the fake AWS itself (tests/fakeaws): IMDSv2 rules, STS
credentials with real signature/IAM checks, lifecycle hooks, fault proxy,
tag delay, IMDS refuse, S3 streaming.

    cd tests/integration && python3 -m unittest test_fakeaws -v

Everything binds and talks to 127.0.0.1 only.
"""

import datetime as dt
import email.utils
import hashlib
import http.client
import ipaddress
import itertools
import json
import os
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakeaws"))

import botocore.exceptions  # noqa: E402
from botocore.auth import S3SigV4Auth, SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from harness import FakeAWS  # noqa: E402

FAKE: FakeAWS = None  # shared by most tests (startup ~2 s)
_names = itertools.count(1)

TOKEN_HDR = "X-aws-ec2-metadata-token"
TTL_HDR = "X-aws-ec2-metadata-token-ttl-seconds"


def setUpModule():
    global FAKE
    FAKE = FakeAWS(auth=True)
    FAKE.start()
    sys.stderr.write(f"\n[fakeaws started in {FAKE.startup_seconds:.2f}s]\n")


def tearDownModule():
    pid = FAKE.info.get("pid")
    FAKE.stop()
    assert_process_gone(pid)


def assert_process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"fakeaws pid {pid} still running after stop()")


def unique(prefix="g"):
    return f"{prefix}{next(_names)}"


# -- raw signed requests (for byte-level checks) ---------------------------------

def _signed(port, service, method, path, body, creds, headers=None):
    url = f"http://127.0.0.1:{port}{path}"
    req = AWSRequest(method, url, data=body, headers=dict(headers or {}))
    c = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("Token"))
    (S3SigV4Auth if service == "s3" else SigV4Auth)(c, service, "us-east-1").add_auth(req)
    return dict(req.headers.items())


def query_request(port, service, params, creds, conn=None):
    """Signed Query-API POST; returns (status, headers(lower), body bytes)."""
    body = urllib.parse.urlencode(params)
    hdrs = _signed(port, service, "POST", "/", body, creds,
                   {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        if own:
            conn.close()


def raw_exchange(port, service, method, path, creds, params=None, headers=None, timeout=5):
    """Send one signed request on a raw socket; read until the peer closes.

    Returns (bytes received, how it ended: "eof" | "reset" | "timeout")."""
    body = urllib.parse.urlencode(params) if params else ""
    extra = dict(headers or {})
    if params:
        extra["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    hdrs = _signed(port, service, method, path, body, creds, extra)
    hdrs["Host"] = f"127.0.0.1:{port}"
    if body:
        hdrs["Content-Length"] = str(len(body))
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n" + body
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        s.sendall(req.encode())
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return got, "reset"
            except socket.timeout:
                return got, "timeout"
            if not chunk:
                return got, "eof"
            got += chunk
    finally:
        s.close()


def split_response(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else None
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def error_code(exc):
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


class FakeTestCase(unittest.TestCase):
    def tearDown(self):
        FAKE.clear_faults()
        FAKE.control("DELETE", "/tag-delay")
        FAKE.set_imds(disabled=False)

    def role_creds(self):
        return FAKE.imds_credentials()

    def via_proxy(self, service, creds=None):
        return FAKE.client(service, via_proxy=True, credentials=creds or self.role_creds())

    def complete(self, w, result, instance_id=None, creds=None):
        """CompleteLifecycleAction through the proxy with the role credentials."""
        return self.via_proxy("autoscaling", creds).complete_lifecycle_action(
            AutoScalingGroupName=w.group, LifecycleHookName=w.hook,
            InstanceId=instance_id or w.instance_id, LifecycleActionResult=result)


# ---------------------------------------------------------------------------------


class TestImds(FakeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = FAKE.make_world(group=unique("imds"), instance_tags_in_imds=True, sha256="ab" * 32)

    def setUp(self):
        FAKE.set_imds(instance_id=self.world.instance_id, tags_enabled=True, lifecycle_state=None)

    def get(self, path, token, headers=None):
        h = {TOKEN_HDR: token} if token else {}
        h.update(headers or {})
        return FAKE.imds_request("GET", path, h)

    def test_get_needs_valid_token(self):
        self.assertEqual(self.get("/latest/meta-data/instance-id", None)[0], 401)
        self.assertEqual(self.get("/latest/meta-data/instance-id", "bogus-token")[0], 401)
        st, _, body = self.get("/latest/meta-data/instance-id", FAKE.imds_token())
        self.assertEqual((st, body), (200, self.world.instance_id))

    def test_token_ttl_rules(self):
        for bad in (None, "0", "21601", "-5", "abc", ""):
            hdr = {} if bad is None else {TTL_HDR: bad}
            self.assertEqual(FAKE.imds_request("PUT", "/latest/api/token", hdr)[0], 400, bad)
        for good in ("1", "21600"):
            st, hdrs, tok = FAKE.imds_request("PUT", "/latest/api/token", {TTL_HDR: good})
            self.assertEqual(st, 200)
            self.assertEqual(hdrs.get(TTL_HDR.lower()), good)
            self.assertGreaterEqual(len(tok), 40)

    def test_x_forwarded_for_refused(self):
        st, _, _ = FAKE.imds_request("PUT", "/latest/api/token", {TTL_HDR: "60", "X-Forwarded-For": "10.0.0.1"})
        self.assertEqual(st, 403)
        tok = FAKE.imds_token()
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok, {"X-Forwarded-For": "10.0.0.1"})[0], 403)

    def test_token_expires_after_ttl(self):
        tok = FAKE.imds_token(ttl=1)
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)
        time.sleep(1.15)
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 401)

    def test_expire_tokens_now(self):
        tok = FAKE.imds_token()
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)
        FAKE.expire_imds_tokens()
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 401)
        self.assertEqual(self.get("/latest/meta-data/instance-id", FAKE.imds_token())[0], 200)

    def test_disabled_is_403(self):
        tok = FAKE.imds_token()
        FAKE.set_imds(disabled=True)
        self.assertEqual(FAKE.imds_request("PUT", "/latest/api/token", {TTL_HDR: "60"})[0], 403)
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 403)

    def test_paths(self):
        tok = FAKE.imds_token()
        w = self.world
        self.assertEqual(self.get("/latest/meta-data/placement/region", tok)[2], "us-east-1")
        self.assertEqual(self.get("/latest/meta-data/placement/availability-zone", tok)[2], "us-east-1a")
        doc = json.loads(self.get("/latest/dynamic/instance-identity/document", tok)[2])
        self.assertEqual(doc["instanceId"], w.instance_id)
        self.assertEqual(doc["region"], "us-east-1")
        self.assertEqual(doc["availabilityZone"], "us-east-1a")
        self.assertEqual(doc["accountId"], "123456789012")
        self.assertTrue(doc["imageId"].startswith("ami-"))
        self.assertEqual(doc["instanceType"], "t3.micro")
        self.assertIn(ipaddress.ip_address(doc["privateIp"]), ipaddress.ip_network("10.0.16.0/20"),
                      "in the world's subnet")
        dt.datetime.strptime(doc["pendingTime"], "%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials/", tok)[2], "asg-agent-instance")
        st, _, body = self.get("/latest/meta-data/iam/security-credentials/asg-agent-instance", tok)
        creds = json.loads(body)
        self.assertEqual(creds["Code"], "Success")
        self.assertEqual(creds["Type"], "AWS-HMAC")
        for k in ("AccessKeyId", "SecretAccessKey", "Token"):
            self.assertTrue(creds[k])
        for k in ("Expiration", "LastUpdated"):
            dt.datetime.strptime(creds[k], "%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(self.get("/latest/meta-data/no-such-thing", tok)[0], 404)
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials/other-role", tok)[0], 404)

    def test_target_lifecycle_state_is_target_not_current(self):
        tok = FAKE.imds_token()
        self.assertEqual(FAKE.instance_state(self.world.instance_id), "Pending:Wait")
        self.assertEqual(self.get("/latest/meta-data/autoscaling/target-lifecycle-state", tok)[2], "InService")
        FAKE.set_imds(lifecycle_state="Terminated")
        self.assertEqual(self.get("/latest/meta-data/autoscaling/target-lifecycle-state", tok)[2], "Terminated")

    def test_tags(self):
        tok = FAKE.imds_token()
        st, _, keys = self.get("/latest/meta-data/tags/instance", tok)
        self.assertEqual(st, 200)
        keys = keys.split("\n")
        for k in ("asg-agent:version", "asg-agent:sha256", "aws:autoscaling:groupName"):
            self.assertIn(k, keys)
        self.assertEqual(self.get("/latest/meta-data/tags/instance/asg-agent:version", tok)[2], "1.2.3")
        self.assertEqual(self.get("/latest/meta-data/tags/instance/aws:autoscaling:groupName", tok)[2],
                         self.world.group)
        self.assertEqual(self.get("/latest/meta-data/tags/instance/nope", tok)[0], 404)
        FAKE.set_imds(tags_enabled=False)
        self.assertEqual(self.get("/latest/meta-data/tags/instance", tok)[0], 404)
        self.assertEqual(self.get("/latest/meta-data/tags/instance/asg-agent:version", tok)[0], 404)

    def test_set_imds_requires_real_instance(self):
        st, out = FAKE.control("POST", "/imds", {"instance_id": "i-0123456789abcdef0"}, check=False)
        self.assertEqual(st, 400)
        self.assertIn("does not exist", out["error"])

    def test_status_fault_first_n(self):
        tok = FAKE.imds_token()
        rule = FAKE.fault("imds", kind="status", status=500, count=2)
        got = [self.get("/latest/meta-data/instance-id", tok)[0] for _ in range(3)]
        self.assertEqual(got, [500, 500, 200])
        fired = [r for r in FAKE.faults()["imds"] if r["id"] == rule["id"]][0]
        self.assertEqual(fired["fired"], 2)

    def test_status_fault_on_path_only(self):
        tok = FAKE.imds_token()
        FAKE.fault("imds", kind="status", status=401, path="security-credentials", count=-1)
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials/", tok)[0], 401)
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)

    def test_delay_fault(self):
        tok = FAKE.imds_token()
        FAKE.fault("imds", kind="delay", seconds=0.4, count=1)
        t0 = time.monotonic()
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.38)

    def test_reset_fault(self):
        tok = FAKE.imds_token()
        FAKE.fault("imds", kind="reset", count=1)
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            self.get("/latest/meta-data/instance-id", tok)
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)

    def test_refuse_then_recover(self):
        tok = FAKE.imds_token()
        t0 = time.monotonic()
        FAKE.refuse_imds(1.0)
        with self.assertRaises(ConnectionRefusedError):
            FAKE.imds_request("PUT", "/latest/api/token", {TTL_HDR: "60"})
        while True:
            try:
                FAKE.imds_request("GET", "/latest/meta-data/instance-id", {TOKEN_HDR: tok})
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic() - t0, 3.0, "IMDS did not come back")
                time.sleep(0.02)
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)
        # same port, and tokens survive
        self.assertEqual(self.get("/latest/meta-data/instance-id", tok)[0], 200)
        self.assertTrue(FAKE.health())

    def test_keep_alive(self):
        c = http.client.HTTPConnection("127.0.0.1", FAKE.info["imds"], timeout=5)
        try:
            socks = set()
            for _ in range(3):
                c.request("PUT", "/latest/api/token", headers={TTL_HDR: "60"})
                r = c.getresponse()
                tok = r.read().decode()
                socks.add(id(c.sock))
                c.request("GET", "/latest/meta-data/instance-id", headers={TOKEN_HDR: tok})
                r = c.getresponse()
                self.assertEqual(r.read().decode(), self.world.instance_id)
                socks.add(id(c.sock))
            self.assertEqual(len(socks), 1)
        finally:
            c.close()

    def test_requests_are_logged(self):
        FAKE.clear_requests()
        FAKE.imds_get("/latest/meta-data/instance-id")
        got = [(r["method"], r["path"], r["status"]) for r in FAKE.requests(target="imds")]
        self.assertEqual(got, [("PUT", "/latest/api/token", 200), ("GET", "/latest/meta-data/instance-id", 200)])


class TestCredentialsAndAuth(FakeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = FAKE.make_world(group=unique("auth"))

    def test_credentials_come_from_sts(self):
        creds = self.role_creds()
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"), creds["AccessKeyId"])
        ident = self.via_proxy("sts", creds).get_caller_identity()
        self.assertIn(":assumed-role/asg-agent-instance/", ident["Arn"])
        tags = self.via_proxy("ec2", creds).describe_tags(
            Filters=[{"Name": "resource-id", "Values": [self.world.instance_id]}])["Tags"]
        self.assertIn("asg-agent:version", {t["Key"] for t in tags})

    def test_wrong_secret_is_rejected(self):
        bad = dict(self.role_creds(), SecretAccessKey="x" * 40)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("ec2", bad).describe_tags()
        self.assertEqual(error_code(cm.exception), ("AuthFailure", 401))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("autoscaling", bad).describe_auto_scaling_groups()
        self.assertEqual(error_code(cm.exception), ("SignatureDoesNotMatch", 403))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("s3", bad).list_buckets()
        self.assertEqual(error_code(cm.exception)[1], 403)

    def test_role_policy_is_enforced(self):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("ec2").terminate_instances(InstanceIds=[self.world.instance_id])
        self.assertEqual(error_code(cm.exception)[1], 403)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=self.world.group)
        self.assertEqual(error_code(cm.exception), ("AccessDenied", 403))
        # while the things the agent needs are allowed
        self.via_proxy("autoscaling").describe_auto_scaling_instances(InstanceIds=[self.world.instance_id])
        self.via_proxy("elbv2").describe_target_groups()

    def test_rotate_credentials(self):
        old = self.role_creds()
        new = FAKE.rotate_credentials(expires_in=900)
        self.assertNotEqual(old["AccessKeyId"], new["AccessKeyId"])
        exp = dt.datetime.strptime(new["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        left = (exp - dt.datetime.now(dt.timezone.utc)).total_seconds()
        self.assertTrue(840 < left <= 900, left)
        served = json.loads(FAKE.imds_get("/latest/meta-data/iam/security-credentials/asg-agent-instance")[1])
        self.assertEqual(served, new)
        self.assertEqual(FAKE.imds_credentials(), new)
        self.via_proxy("sts", new).get_caller_identity()

    def test_agent_env(self):
        os.environ["AWS_ACCESS_KEY_ID"] = "AKIALEAK"
        try:
            env = FAKE.agent_env()
        finally:
            del os.environ["AWS_ACCESS_KEY_ID"]
        aws = {k: v for k, v in env.items() if k.startswith("AWS_")}
        self.assertEqual(aws, {"AWS_EC2_METADATA_SERVICE_ENDPOINT": FAKE.imds_endpoint,
                               "AWS_ENDPOINT_URL": FAKE.aws_endpoint})
        self.assertNotIn(FAKE.admin_credentials["SecretAccessKey"], json.dumps(env))


class TestLifecycle(FakeTestCase):
    def test_continue_then_second_completion_fails(self):
        w = FAKE.make_world(group=unique("lc"))
        self.assertEqual(FAKE.instance_state(w.instance_id), "Pending:Wait")
        params = dict(Action="CompleteLifecycleAction", Version="2011-01-01", AutoScalingGroupName=w.group,
                      LifecycleHookName=w.hook, InstanceId=w.instance_id, LifecycleActionResult="CONTINUE")
        st, _, body = query_request(FAKE.info["aws"], "autoscaling", params, self.role_creds())
        self.assertEqual(st, 200, body)
        self.assertTrue(body.startswith(
            b'<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            b"<CompleteLifecycleActionResult/><ResponseMetadata><RequestId>"), body)
        self.assertEqual(FAKE.instance_state(w.instance_id), "InService")
        st, _, body = query_request(FAKE.info["aws"], "autoscaling", params, self.role_creds())
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>ValidationError</Code>", body)
        self.assertIn(f"No active Lifecycle Action found with instance ID {w.instance_id}".encode(), body)
        events = [e for e in FAKE.lifecycle() if e["instance_id"] == w.instance_id and e["kind"] == "complete"]
        self.assertEqual([(e["result"], e["ok"], e["hook"]) for e in events],
                         [("CONTINUE", True, w.hook), ("CONTINUE", False, w.hook)])

    def test_heartbeat_only_while_pending(self):
        w = FAKE.make_world(group=unique("hb"))
        asg = self.via_proxy("autoscaling")
        args = dict(AutoScalingGroupName=w.group, LifecycleHookName=w.hook, InstanceId=w.instance_id)
        asg.record_lifecycle_action_heartbeat(**args)
        self.complete(w, "CONTINUE")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            asg.record_lifecycle_action_heartbeat(**args)
        self.assertEqual(error_code(cm.exception), ("ValidationError", 400))
        kinds = [(e["kind"], e["ok"]) for e in FAKE.lifecycle() if e["instance_id"] == w.instance_id]
        self.assertEqual(kinds, [("start", True), ("heartbeat", True), ("complete", True), ("heartbeat", False)])

    def test_complete_by_token(self):
        w = FAKE.make_world(group=unique("tok"))
        pending = [p for p in FAKE.lifecycle_pending() if p["instance_id"] == w.instance_id]
        self.assertEqual(len(pending), 1)
        self.via_proxy("autoscaling").complete_lifecycle_action(
            AutoScalingGroupName=w.group, LifecycleHookName=w.hook,
            LifecycleActionToken=pending[0]["token"], LifecycleActionResult="CONTINUE")
        self.assertEqual(FAKE.instance_state(w.instance_id), "InService")

    def test_abandon_terminates_and_replaces(self):
        w = FAKE.make_world(group=unique("ab"))
        self.complete(w, "ABANDON")
        self.assertEqual(FAKE.ec2_instance_state(w.instance_id), "terminated")
        self.assertIsNone(FAKE.instance_state(w.instance_id))
        members = FAKE.group_instances(w.group)
        self.assertEqual(len(members), 1)
        self.assertNotEqual(members[0]["InstanceId"], w.instance_id)
        self.assertEqual(members[0]["LifecycleState"], "Pending:Wait")  # replacement goes through the hook
        self.assertTrue(FAKE.ec2_instance_running(members[0]["InstanceId"]))

    def test_no_hook_means_in_service(self):
        w = FAKE.make_world(group=unique("nohook"), hook=False)
        self.assertEqual(FAKE.instance_state(w.instance_id), "InService")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("autoscaling").complete_lifecycle_action(
                AutoScalingGroupName=w.group, LifecycleHookName="x", InstanceId=w.instance_id,
                LifecycleActionResult="CONTINUE")
        self.assertEqual(error_code(cm.exception), ("ValidationError", 400))

    def test_heartbeat_timeout_applies_default_result(self):
        # 3 s: the world's own set-up calls and the first look fit inside it under load.
        w = FAKE.make_world(group=unique("to"), heartbeat_timeout=3, default_result="CONTINUE")
        self.assertEqual(FAKE.instance_state(w.instance_id), "Pending:Wait")
        deadline = time.monotonic() + 8
        while FAKE.instance_state(w.instance_id) != "InService":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        ev = [e for e in FAKE.lifecycle() if e["instance_id"] == w.instance_id and e["kind"] == "timeout"]
        self.assertEqual(ev[0]["result"], "CONTINUE")

    def test_target_group_registration_follows_state(self):
        w = FAKE.make_world(group=unique("tg"), target_group=True)
        elb = FAKE.client("elbv2")

        def targets():
            return {t["Target"]["Id"] for t in
                    elb.describe_target_health(TargetGroupArn=w.target_group_arn)["TargetHealthDescriptions"]}

        self.assertEqual(targets(), set())  # Pending:Wait is not registered
        self.complete(w, "CONTINUE")
        self.assertEqual(targets(), {w.instance_id})

    def test_terminating_hook_on_scale_in(self):
        w = FAKE.make_world(group=unique("term"), hook=False, terminate_hook=True, desired=2)
        asg = FAKE.client("autoscaling")
        asg.set_desired_capacity(AutoScalingGroupName=w.group, DesiredCapacity=1)
        states = {i["InstanceId"]: i["LifecycleState"] for i in FAKE.group_instances(w.group)}
        waiting = [i for i, s in states.items() if s == "Terminating:Wait"]
        self.assertEqual(len(waiting), 1, states)
        victim = waiting[0]
        FAKE.set_imds(instance_id=victim)
        self.assertEqual(FAKE.imds_get("/latest/meta-data/autoscaling/target-lifecycle-state")[1], "Terminated")
        self.assertTrue(FAKE.ec2_instance_running(victim))
        self.via_proxy("autoscaling").complete_lifecycle_action(
            AutoScalingGroupName=w.group, LifecycleHookName=w.terminate_hook, InstanceId=victim,
            LifecycleActionResult="CONTINUE")
        self.assertEqual(FAKE.ec2_instance_state(victim), "terminated")
        self.assertEqual(len(FAKE.group_instances(w.group)), 1)

    def test_standby_decrement_below_min_size_refused(self):
        w = FAKE.make_world(group=unique("sbmin"), hook=False, desired=2)
        asg = FAKE.client("autoscaling")
        asg.update_auto_scaling_group(AutoScalingGroupName=w.group, MinSize=1)
        ids = [i["InstanceId"] for i in FAKE.group_instances(w.group)]
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            asg.enter_standby(AutoScalingGroupName=w.group, InstanceIds=ids,
                              ShouldDecrementDesiredCapacity=True)
        self.assertEqual(error_code(cm.exception), ("ValidationError", 400))
        self.assertIn("min-size", cm.exception.response["Error"]["Message"])
        self.assertEqual([FAKE.instance_state(i) for i in ids], ["InService", "InService"])
        # Down to MinSize is allowed, and so is any number without the decrement.
        asg.enter_standby(AutoScalingGroupName=w.group, InstanceIds=ids[:1],
                          ShouldDecrementDesiredCapacity=True)
        asg.enter_standby(AutoScalingGroupName=w.group, InstanceIds=ids[1:],
                          ShouldDecrementDesiredCapacity=False)
        self.assertEqual([FAKE.instance_state(i) for i in ids], ["Standby", "Standby"])


class TestProxyFaults(FakeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = FAKE.make_world(group=unique("px"))
        FAKE.put_s3("fault-bucket", "obj/key.bin", bytes(range(256)) * 64)  # 16 KiB

    def setUp(self):
        FAKE.clear_requests()

    def port(self):
        return FAKE.info["aws"]

    def test_throttle_shapes_per_service(self):
        creds = self.role_creds()
        FAKE.fault(kind="throttle", service="ec2", count=1)
        st, hdrs, body = query_request(self.port(), "ec2", {"Action": "DescribeTags", "Version": "2016-11-15"}, creds)
        self.assertEqual(st, 503)
        self.assertRegex(body, rb"^<\?xml[^>]*>\s*<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                               rb"<Message>[^<]+</Message></Error></Errors><RequestID>[^<]+</RequestID></Response>$")
        st, _, _ = query_request(self.port(), "ec2", {"Action": "DescribeTags", "Version": "2016-11-15"}, creds)
        self.assertEqual(st, 200)  # count=1 used up

        FAKE.fault(kind="throttle", service="autoscaling", count=1)
        st, _, body = query_request(self.port(), "autoscaling",
                                    {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"}, creds)
        self.assertEqual(st, 400)
        self.assertIn(b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
                      b"<RequestId>", body)
        self.assertTrue(body.startswith(b"<ErrorResponse"))

        FAKE.fault(kind="throttle", service="s3", count=1)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.via_proxy("s3", creds).get_object(Bucket="fault-bucket", Key="obj/key.bin")
        self.assertEqual(error_code(cm.exception), ("SlowDown", 503))
        self.via_proxy("s3", creds).get_object(Bucket="fault-bucket", Key="obj/key.bin")["Body"].read()

        # The proxy logs a request once its answer is sent: the last may trail the client.
        want = [("ec2", 503), ("ec2", 200), ("autoscaling", 400), ("s3", 503), ("s3", 200)]
        deadline = time.time() + 5
        while True:
            statuses = [(r["service"], r["status"]) for r in FAKE.requests(target="aws")]
            if len(statuses) >= len(want) or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(statuses, want)

    def test_plain_and_custom_status(self):
        asg = self.via_proxy("autoscaling")
        FAKE.fault(kind="status", status=504, service="autoscaling", count=1)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            asg.describe_auto_scaling_groups()
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 504)
        FAKE.fault(kind="status", status=500, code="InternalFailure", message="boom <x>", count=1)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            asg.describe_auto_scaling_groups()
        self.assertEqual(error_code(cm.exception), ("InternalFailure", 500))
        self.assertEqual(cm.exception.response["Error"]["Message"], "boom <x>")
        asg.describe_auto_scaling_groups()

    def test_match_on_action_only(self):
        ec2 = self.via_proxy("ec2")
        FAKE.fault(kind="status", status=503, code="RequestLimitExceeded", action="DescribeTags", count=-1)
        ec2.describe_instances(InstanceIds=[self.world.instance_id])
        for _ in range(2):
            with self.assertRaises(botocore.exceptions.ClientError):
                ec2.describe_tags()
        rule = FAKE.faults()["aws"][0]
        self.assertEqual((rule["fired"], rule["remaining"]), (2, -1))

    def test_match_on_path_regex(self):
        s3 = self.via_proxy("s3")
        FAKE.fault(kind="status", status=503, code="SlowDown", service="s3", path=r"^/fault-bucket/obj/", count=1)
        s3.list_objects_v2(Bucket="fault-bucket")
        with self.assertRaises(botocore.exceptions.ClientError):
            s3.get_object(Bucket="fault-bucket", Key="obj/key.bin")

    def test_match_on_form_body(self):
        asg = self.via_proxy("autoscaling")
        FAKE.fault(kind="status", status=500, code="InternalFailure", action="CreateOrUpdateTags",
                   body=r"Tags\.member\.1\.Key=only:this", count=-1)
        tag = {"ResourceId": self.world.group, "ResourceType": "auto-scaling-group",
               "PropagateAtLaunch": False, "Value": "v w"}
        asg.create_or_update_tags(Tags=[dict(tag, Key="other")])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            asg.create_or_update_tags(Tags=[dict(tag, Key="only:this")])
        self.assertEqual(error_code(cm.exception), ("InternalFailure", 500))
        asg.describe_auto_scaling_groups()  # another form: not this rule's
        rule = FAKE.faults()["aws"][0]
        self.assertEqual((rule["fired"], rule["remaining"]), (1, -1))

    def test_for_seconds(self):
        asg = self.via_proxy("autoscaling")
        FAKE.fault(kind="throttle", service="autoscaling", count=-1, for_seconds=3.0)
        t0 = time.monotonic()
        for _ in range(2):
            with self.assertRaises(botocore.exceptions.ClientError):
                asg.describe_auto_scaling_groups()
        time.sleep(max(0.0, t0 + 3.1 - time.monotonic()))
        asg.describe_auto_scaling_groups()

    def test_status_fault_does_not_reach_moto_unless_forward(self):
        w = FAKE.make_world(group=unique("fw"))
        FAKE.fault(kind="status", status=500, code="InternalFailure", action="CompleteLifecycleAction", count=1)
        with self.assertRaises(botocore.exceptions.ClientError):
            self.complete(w, "CONTINUE")
        self.assertEqual(FAKE.instance_state(w.instance_id), "Pending:Wait")
        # forward=true: the action happens, the answer is lost
        FAKE.fault(kind="status", status=500, code="InternalFailure", action="CompleteLifecycleAction",
                   count=1, forward=True)
        with self.assertRaises(botocore.exceptions.ClientError):
            self.complete(w, "CONTINUE")
        self.assertEqual(FAKE.instance_state(w.instance_id), "InService")

    def test_reset_without_answer(self):
        FAKE.fault(kind="reset", service="autoscaling", count=1)
        got, how = raw_exchange(self.port(), "autoscaling", "POST", "/", self.role_creds(),
                                {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"})
        self.assertEqual(got, b"")
        self.assertEqual(how, "reset")

    def test_reset_after_n_body_bytes(self):
        FAKE.fault(kind="reset", service="s3", after_bytes=1000, count=1)
        got, how = raw_exchange(self.port(), "s3", "GET", "/fault-bucket/obj/key.bin", self.role_creds())
        self.assertIn(how, ("reset", "eof"))
        status, hdrs, body = split_response(got)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-length"], str(16384))
        self.assertLessEqual(len(body), 1000)
        self.assertEqual(FAKE.requests(target="aws")[-1]["status"], "reset@1000")

    def test_truncate(self):
        FAKE.fault(kind="truncate", service="s3", bytes=5000, count=1)
        got, how = raw_exchange(self.port(), "s3", "GET", "/fault-bucket/obj/key.bin", self.role_creds())
        self.assertEqual(how, "eof")
        status, hdrs, body = split_response(got)
        self.assertEqual((status, hdrs["content-length"], len(body)), (200, "16384", 5000))
        self.assertEqual(body, (bytes(range(256)) * 64)[:5000])
        # Query API answers too (default: half the body)
        FAKE.fault(kind="truncate", service="autoscaling", count=1)
        got, how = raw_exchange(self.port(), "autoscaling", "POST", "/", self.role_creds(),
                                {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"})
        status, hdrs, body = split_response(got)
        self.assertEqual(how, "eof")
        self.assertLess(len(body), int(hdrs["content-length"]))

    def test_delay(self):
        FAKE.fault(kind="delay", seconds=0.5, service="ec2", count=1)
        ec2 = self.via_proxy("ec2")
        t0 = time.monotonic()
        ec2.describe_tags()
        self.assertGreaterEqual(time.monotonic() - t0, 0.48)
        ec2.describe_tags()
        # count=1 is used up: the second call met no fault (a bound on its time would be a race)
        self.assertEqual([r["faults"] for r in FAKE.requests(target="aws")], [["delay"], []])

    def test_date_skew(self):
        FAKE.fault(kind="date_skew", seconds=3600, count=1)
        r = self.via_proxy("autoscaling").describe_auto_scaling_groups()
        date = email.utils.parsedate_to_datetime(r["ResponseMetadata"]["HTTPHeaders"]["date"])
        skew = (date - dt.datetime.now(dt.timezone.utc)).total_seconds()
        self.assertTrue(3590 < skew < 3610, skew)

    def test_keep_alive_and_faults_on_one_connection(self):
        creds = self.role_creds()
        conn = http.client.HTTPConnection("127.0.0.1", self.port(), timeout=10)
        try:
            p = {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"}
            self.assertEqual(query_request(self.port(), "autoscaling", p, creds, conn)[0], 200)
            sock = conn.sock
            FAKE.fault(kind="throttle", count=1)
            self.assertEqual(query_request(self.port(), "autoscaling", p, creds, conn)[0], 400)
            self.assertEqual(query_request(self.port(), "autoscaling", p, creds, conn)[0], 200)
            self.assertIs(conn.sock, sock)  # same TCP connection throughout
        finally:
            conn.close()

    def test_request_log(self):
        ec2, asg = self.via_proxy("ec2"), self.via_proxy("autoscaling")
        ec2.describe_tags()
        ec2.describe_tags()
        asg.describe_auto_scaling_instances()
        self.assertEqual(len(FAKE.requests(service="ec2", action="DescribeTags")), 2)
        self.assertEqual(len(FAKE.requests(service="autoscaling", action="DescribeAutoScalingInstances")), 1)
        FAKE.clear_requests()
        self.assertEqual(FAKE.requests(target="aws"), [])


class TestTagDelay(FakeTestCase):
    def view(self, w):
        ec2, asg = self.via_proxy("ec2"), self.via_proxy("autoscaling")
        key = "asg-agent:version"
        inst = {t["Key"] for t in ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": [w.instance_id]}])["Tags"]}
        grp = {t["Key"] for t in asg.describe_tags(
            Filters=[{"Name": "auto-scaling-group", "Values": [w.group]}])["Tags"]}
        di = {t["Key"] for r in ec2.describe_instances(InstanceIds=[w.instance_id])["Reservations"]
              for i in r["Instances"] for t in i.get("Tags", [])}
        imds = FAKE.imds_get("/latest/meta-data/tags/instance")[1].split("\n")
        return {"instance": key in inst, "group": key in grp, "describe_instances": key in di,
                "imds": key in imds, "other_tags_kept": "aws:autoscaling:groupName" in inst}

    def test_hides_then_shows(self):
        w = FAKE.make_world(group=unique("td"), instance_tags_in_imds=True)
        everything = {"instance": True, "group": True, "describe_instances": True, "imds": True,
                      "other_tags_kept": True}
        self.assertEqual(self.view(w), everything)
        t0 = time.monotonic()
        FAKE.tag_delay("asg-agent:version", 3.0)
        self.assertEqual(self.view(w), {"instance": False, "group": False, "describe_instances": False,
                                        "imds": False, "other_tags_kept": True})
        while not self.view(w)["instance"]:
            self.assertLess(time.monotonic() - t0, 8)
            time.sleep(0.05)
        self.assertGreaterEqual(time.monotonic() - t0, 2.95)
        self.assertEqual(self.view(w), everything)
        # moto itself was never changed
        self.assertIn("asg-agent:version", {t["Key"] for t in FAKE.client("ec2").describe_tags(
            Filters=[{"Name": "resource-id", "Values": [w.instance_id]}])["Tags"]})

    def test_never_and_instance_scope(self):
        w = FAKE.make_world(group=unique("tdn"), instance_tags_in_imds=True)
        FAKE.tag_delay("asg-agent:version", -1, scope="instance")
        v = self.view(w)
        self.assertEqual((v["instance"], v["imds"], v["group"]), (False, False, True))
        FAKE.tag_delay("asg-agent:version", 0)
        self.assertTrue(self.view(w)["instance"])


class TestS3Streaming(FakeTestCase):
    SIZE = 64 * 1024 * 1024

    def test_large_get_streams_with_range(self):
        data = os.urandom(self.SIZE)
        FAKE.put_s3("big-artifacts", "releases/1.2.3/agent.bin", data)
        s3 = self.via_proxy("s3")
        r = s3.get_object(Bucket="big-artifacts", Key="releases/1.2.3/agent.bin")
        self.assertEqual(r["ContentLength"], self.SIZE)
        h = hashlib.sha256()
        first = r["Body"].read(1024 * 1024)
        h.update(first)
        time.sleep(0.3)  # client stalls: the proxy must not read ahead the whole object
        inflight = FAKE.control("GET", "/inflight")["requests"]
        self.assertEqual(len(inflight), 1)
        self.assertLess(inflight[0]["upstream_bytes"], 32 * 1024 * 1024, inflight)
        for chunk in iter(lambda: r["Body"].read(4 * 1024 * 1024), b""):
            h.update(chunk)
        self.assertEqual(h.digest(), hashlib.sha256(data).digest())

        direct = FAKE.client("s3").head_object(Bucket="big-artifacts", Key="releases/1.2.3/agent.bin")
        self.assertEqual(r["ETag"], direct["ETag"])

        r = s3.get_object(Bucket="big-artifacts", Key="releases/1.2.3/agent.bin", Range="bytes=1000-1999")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(r["ContentRange"], f"bytes 1000-1999/{self.SIZE}")
        self.assertEqual(r["ContentLength"], 1000)
        self.assertEqual(r["Body"].read(), data[1000:2000])

        r = s3.get_object(Bucket="big-artifacts", Key="releases/1.2.3/agent.bin",
                          Range=f"bytes={self.SIZE - 10}-")
        self.assertEqual(r["Body"].read(), data[-10:])

        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.get_object(Bucket="big-artifacts", Key="releases/1.2.3/agent.bin", IfNoneMatch=direct["ETag"])
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 304)


class TestAuthOff(unittest.TestCase):
    def test_any_credentials_accepted_and_process_cleaned_up(self):
        with FakeAWS(auth=False) as f:
            pid = f.info["pid"]
            self.assertFalse(f.info["auth"])
            bad = {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "whatever"}
            f.client("autoscaling", via_proxy=True, credentials=bad).describe_auto_scaling_groups()
        assert_process_gone(pid)


if __name__ == "__main__":
    unittest.main()
