"""Test harness around fakeaws.py (moto + fault proxy + IMDSv2 fake).

    import sys; sys.path.insert(0, "tests/fakeaws")
    from harness import FakeAWS

    with FakeAWS(auth=True) as f:
        world = f.make_world(group="blue", version="1.2.3")
        env = f.agent_env()            # give this to the agent under test
        ...                            # run the agent
        f.lifecycle()                  # CompleteLifecycleAction calls it made

FakeAWS starts fakeaws.py as a subprocess in its own process group and
stops it (SIGTERM, then SIGKILL) on exit, also when the test fails.
Everything is on 127.0.0.1.  See README.md for the control API.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
FAKEAWS = os.path.join(HERE, "fakeaws.py")
REGION = "us-east-1"
AMI_ID = "ami-12c6146b"  # one of moto's built-in AMIs
ROLE_NAME = "asg-agent-instance"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


class FakeAWSError(RuntimeError):
    pass


@dataclass
class World:
    """What make_world() built."""

    group: str
    instance_id: str
    hook: str | None
    instance_ids: list = field(default_factory=list)
    terminate_hook: str | None = None
    vpc_id: str = ""
    subnet_id: str = ""
    launch_template_id: str = ""
    target_group_arn: str | None = None
    version: str = ""


def _clean_env(base=None) -> dict:
    env = dict(os.environ if base is None else base)
    for k in list(env):
        if k.startswith("AWS_") or k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            del env[k]
    return env


class FakeAWS:
    def __init__(self, auth: bool = True, startup_timeout: float = 30.0, keep_dir: bool = False,
                 credential_expires_in: int = 3600, log_level: str = "INFO"):
        self.auth = auth
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.credential_expires_in = credential_expires_in
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.dir: str | None = None
        self.info: dict = {}
        self.startup_seconds: float | None = None
        self._clients: dict = {}

    # -- lifecycle ------------------------------------------------------------
    def __enter__(self) -> "FakeAWS":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        t0 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix="fakeaws-")
        ports = os.path.join(self.dir, "ports.json")
        self.log_path = os.path.join(self.dir, "fakeaws.log")
        self._stderr = open(os.path.join(self.dir, "stderr.log"), "wb")
        cmd = [
            sys.executable, FAKEAWS,
            "--ports-file", ports,
            "--auth", "on" if self.auth else "off",
            "--log", self.log_path,
            "--log-level", self.log_level,
            "--credential-expires-in", str(self.credential_expires_in),
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
            env=_clean_env(), start_new_session=True,  # own process group
        )
        try:
            deadline = t0 + self.startup_timeout
            while not os.path.exists(ports):
                if self.proc.poll() is not None:
                    raise FakeAWSError(f"fakeaws exited with {self.proc.returncode}:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise FakeAWSError(f"fakeaws did not start in {self.startup_timeout}s:\n{self.log_tail()}")
                time.sleep(0.01)
            with open(ports) as fh:
                self.info = json.load(fh)
            while True:
                try:
                    if self.control("GET", "/health", check=False)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise FakeAWSError("fakeaws /health never answered 200")
                time.sleep(0.01)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=5)
            else:
                proc.wait()
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None
        self._clients.clear()
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, n: int = 40) -> str:
        out = []
        for name in ("stderr.log", "fakeaws.log"):
            p = os.path.join(self.dir or "", name)
            if os.path.exists(p):
                with open(p, errors="replace") as fh:
                    out.append(f"--- {name}\n" + "".join(fh.readlines()[-n:]))
        return "\n".join(out)

    # -- endpoints ------------------------------------------------------------
    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.info['aws']}"

    @property
    def imds_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.info['imds']}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.info['moto']}"

    @property
    def control_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.info['control']}"

    @property
    def admin_credentials(self) -> dict:
        return dict(self.info["admin"])

    def imds_endpoint_for(self, instance_id: str) -> str:
        """IMDS base URL of one instance's own identity (see imds_instances)."""
        return f"{self.imds_endpoint}/{instance_id}"

    def agent_env(self, base: dict | None = None, instance_id: str | None = None) -> dict:
        """Environment for the agent under test: the inherited (or given)
        environment minus every AWS_* variable, plus the two endpoints.
        With instance_id, IMDS is that instance's identity prefix
        (register it first with imds_instances)."""
        env = _clean_env(base)
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = (
            self.imds_endpoint if instance_id is None else self.imds_endpoint_for(instance_id))
        env["AWS_ENDPOINT_URL"] = self.aws_endpoint
        return env

    def client(self, service: str, via_proxy: bool = False, credentials: dict | None = None,
               retries: int = 0, **kw):
        """boto3 client, admin credentials, straight to moto (or via the
        fault proxy with via_proxy=True), region us-east-1, retries off."""
        import boto3
        import botocore.config

        creds = credentials or self.admin_credentials
        key = (service, via_proxy, json.dumps(creds, sort_keys=True), retries)
        if not kw and key in self._clients:
            return self._clients[key]
        cfg = botocore.config.Config(
            retries={"total_max_attempts": retries + 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            **kw.pop("config_kwargs", {}),
        )
        c = boto3.client(
            service,
            endpoint_url=self.aws_endpoint if via_proxy else self.moto_endpoint,
            region_name=REGION,
            aws_access_key_id=creds.get("AccessKeyId"),
            aws_secret_access_key=creds.get("SecretAccessKey"),
            aws_session_token=creds.get("Token") or creds.get("SessionToken"),
            config=cfg,
            **kw,
        )
        if not kw:
            self._clients[key] = c
        return c

    # -- control API ------------------------------------------------------------
    def control(self, method: str, path: str, body=None, check: bool = True):
        conn = http.client.HTTPConnection("127.0.0.1", self.info["control"], timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data is not None else {})
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        out = json.loads(raw) if raw.strip() else None
        if check and r.status != 200:
            raise FakeAWSError(f"{method} {path} -> {r.status}: {out}")
        return (r.status, out) if not check else out

    def health(self) -> bool:
        return self.control("GET", "/health", check=False)[0] == 200

    def set_imds(self, **kw) -> dict:
        """instance_id, region, az, lifecycle_state (None/"auto" = derive from
        moto), tags_enabled, disabled, role_name."""
        return self.control("POST", "/imds", kw)

    def imds_config(self) -> dict:
        return self.control("GET", "/imds")

    def fault(self, target: str = "aws", **rule) -> dict:
        """Add a fault rule; see README.md.  Returns the rule (with its id).
        For target="imds", kind="refuse"/"expire_tokens" act immediately."""
        if target not in ("aws", "imds"):
            raise ValueError("target must be 'aws' or 'imds'")
        return self.control("POST", f"/{target}/fault", rule)

    def faults(self) -> dict:
        return self.control("GET", "/faults")

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def refuse_imds(self, seconds: float) -> dict:
        return self.fault("imds", kind="refuse", seconds=seconds)

    def expire_imds_tokens(self) -> dict:
        return self.fault("imds", kind="expire_tokens")

    def tag_delay(self, key: str, seconds: float, scope: str = "both") -> dict:
        """Hide tag `key` (instance copy and/or group copy) from the agent's
        view for `seconds` from now (-1 = until changed, 0 = show now)."""
        return self.control("POST", "/tag-delay", {"key": key, "seconds": seconds, "scope": scope})

    def standby_drain(self, seconds: float) -> dict:
        """EnterStandby holds instances in EnteringStandby for `seconds` (a load
        balancer's draining) before Standby; 0, the default, goes at once."""
        return self.control("POST", "/standby-drain", {"seconds": seconds})

    def rotate_credentials(self, expires_in: int = 3600) -> dict:
        return self.control("POST", "/imds/rotate-credentials", {"expires_in": expires_in})

    def imds_credentials(self) -> dict:
        return self.control("GET", "/imds/credentials")

    def lifecycle(self) -> list:
        """Recorded lifecycle events: kind start/complete/heartbeat/timeout,
        instance_id, group, hook, result, ok, error, time."""
        return self.control("GET", "/lifecycle")["events"]

    def lifecycle_pending(self, group: str | None = None) -> list:
        """Lifecycle actions waiting for completion (with their tokens),
        optionally only those of one group."""
        out = self.control("GET", "/lifecycle")["pending"]
        return [p for p in out if group is None or p.get("group") == group]

    # -- many instances: per-instance IMDS identities, token buckets -------------
    def imds_instances(self, instance_ids=None, group: str | None = None, **kw) -> dict:
        """Give instances their own IMDS identity under a path prefix
        (`/INSTANCE_ID/latest/...`: own tokens, tags, lifecycle state; the
        role's credentials are shared).  kw: region, az, lifecycle_state,
        tags_enabled, disabled, role_name.  Returns {instance_id: endpoint}."""
        body = dict(kw)
        if instance_ids is not None:
            body["instance_ids"] = list(instance_ids)
        if group is not None:
            body["group"] = group
        out = self.control("POST", "/imds/instances", body)["instances"]
        return {i["instance_id"]: i["endpoint"] for i in out}

    def imds_instances_list(self) -> list:
        return self.control("GET", "/imds/instances")["instances"]

    def clear_imds_instances(self, instance_ids=None) -> list:
        body = None if instance_ids is None else {"instance_ids": list(instance_ids)}
        return self.control("DELETE", "/imds/instances", body)["removed"]

    def launch(self, group: str, desired: int, imds: bool = True, **imds_kw) -> list:
        """Scale `group` to `desired` at once (raising MaxSize if needed); with
        a launch hook every new instance waits in Pending:Wait.  Returns the
        new instance ids; with imds=True each gets its own IMDS identity."""
        asg = self.client("autoscaling")
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        before = {i["InstanceId"] for i in g["Instances"]}
        if desired > g["MaxSize"]:
            asg.update_auto_scaling_group(AutoScalingGroupName=group, MaxSize=desired)
        asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired)
        new = [i["InstanceId"] for i in self.group_instances(group) if i["InstanceId"] not in before]
        if imds and new:
            self.imds_instances(new, **imds_kw)
        return new

    def set_buckets(self, spec: dict | None = None, preset: str | None = None) -> dict:
        """Turn on account-wide token buckets in the proxy (replacing any):
        {"ec2:DescribeTags": {"burst": 100, "rate": 20}, "autoscaling:*": {...}},
        patterns allowed, "shared": true for one bucket across the matches;
        preset="aws" loads the documented sizes first.  Counters restart."""
        body = dict(spec or {})
        if preset is not None:
            body["preset"] = preset
        return self.control("POST", "/buckets", body)

    def buckets(self) -> dict:
        """{"enabled", "rules", "buckets": {name: {burst, rate, tokens, allowed,
        throttled, ...}}, "counters": {"service:action": {allowed, throttled, bucket}}}"""
        return self.control("GET", "/buckets")

    def clear_buckets(self) -> dict:
        return self.control("DELETE", "/buckets")

    def reset_bucket_counters(self) -> dict:
        return self.control("DELETE", "/buckets/counters")

    def requests(self, target: str | None = None, service: str | None = None,
                 action: str | None = None) -> list:
        """Requests seen by the proxy (target "aws") and IMDS ("imds")."""
        out = self.control("GET", "/requests")["requests"]
        return [
            r for r in out
            if (target is None or r.get("target") == target)
            and (service is None or r.get("service") == service)
            and (action is None or r.get("action") == action)
        ]

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    # -- moto helpers -------------------------------------------------------------
    def instance_state(self, instance_id: str) -> str | None:
        """Lifecycle state per DescribeAutoScalingInstances (None if not in a group)."""
        r = self.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
        inst = r.get("AutoScalingInstances") or []
        return inst[0]["LifecycleState"] if inst else None

    def ec2_instance_state(self, instance_id: str) -> str | None:
        r = self.client("ec2").describe_instances(InstanceIds=[instance_id])
        for res in r["Reservations"]:
            for i in res["Instances"]:
                return i["State"]["Name"]
        return None

    def ec2_instance_running(self, instance_id: str) -> bool:
        return self.ec2_instance_state(instance_id) == "running"

    def group_instances(self, group: str) -> list:
        """[{InstanceId, LifecycleState, ...}] of the group."""
        r = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        return r["AutoScalingGroups"][0]["Instances"] if r["AutoScalingGroups"] else []

    def put_s3(self, bucket: str, key: str, data) -> None:
        """Create the bucket if needed and store bytes or a file's content."""
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception:
            s3.create_bucket(Bucket=bucket)
        if isinstance(data, (bytes, bytearray, memoryview)):
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
        else:
            with open(data, "rb") as fh:
                s3.put_object(Bucket=bucket, Key=key, Body=fh)

    def make_world(self, group: str = "blue", version: str = "1.2.3", sha256: str | None = None,
                   hook: bool = True, instance_tags_in_imds: bool = False, desired: int = 1,
                   tags: dict | None = None, terminate_hook: bool = False, target_group: bool = False,
                   heartbeat_timeout: int = 300, default_result: str = "ABANDON") -> World:
        """VPC + subnet + launch template + ASG (desired 0), launch hook
        (HeartbeatTimeout 300), then SetDesiredCapacity(desired).  Group tags
        asg-agent:version (+ asg-agent:sha256) and `tags`, all
        PropagateAtLaunch.  Points the IMDS fake at the first instance."""
        ec2, asg = self.client("ec2"), self.client("autoscaling")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.16.0/20", AvailabilityZone=f"{REGION}a")
        subnet_id = subnet["Subnet"]["SubnetId"]
        lt = ec2.create_launch_template(
            LaunchTemplateName=f"{group}-lt",
            LaunchTemplateData={
                "ImageId": AMI_ID,
                "InstanceType": "t3.micro",
                "IamInstanceProfile": {"Name": ROLE_NAME},
                "MetadataOptions": {
                    "HttpTokens": "required",
                    "InstanceMetadataTags": "enabled" if instance_tags_in_imds else "disabled",
                },
            },
        )["LaunchTemplate"]["LaunchTemplateId"]
        all_tags = {"asg-agent:version": version}
        if sha256:
            all_tags["asg-agent:sha256"] = sha256
        all_tags.update(tags or {})
        tg_arn = None
        extra = {}
        if target_group:
            tg_arn = self.client("elbv2").create_target_group(
                Name=f"{group}-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance",
                HealthCheckIntervalSeconds=5, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
                HealthCheckTimeoutSeconds=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            extra["TargetGroupARNs"] = [tg_arn]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=group,
            LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"},
            MinSize=0, MaxSize=max(10, desired * 2), DesiredCapacity=0,
            VPCZoneIdentifier=subnet_id,
            Tags=[
                {"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": k, "Value": v,
                 "PropagateAtLaunch": True}
                for k, v in all_tags.items()
            ],
            **extra,
        )
        hook_name = term_hook = None
        if hook:
            hook_name = f"{group}-launch"
            asg.put_lifecycle_hook(
                LifecycleHookName=hook_name, AutoScalingGroupName=group, LifecycleTransition=LAUNCHING,
                HeartbeatTimeout=heartbeat_timeout, DefaultResult=default_result,
            )
        if terminate_hook:
            term_hook = f"{group}-terminate"
            asg.put_lifecycle_hook(
                LifecycleHookName=term_hook, AutoScalingGroupName=group, LifecycleTransition=TERMINATING,
                HeartbeatTimeout=heartbeat_timeout, DefaultResult="CONTINUE",
            )
        asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired)
        ids = [i["InstanceId"] for i in self.group_instances(group)]
        if ids:
            self.set_imds(instance_id=ids[0], region=REGION, tags_enabled=instance_tags_in_imds,
                          lifecycle_state=None, disabled=False)
        return World(group=group, instance_id=ids[0] if ids else "", hook=hook_name, instance_ids=ids,
                     terminate_hook=term_hook, vpc_id=vpc, subnet_id=subnet_id, launch_template_id=lt,
                     target_group_arn=tg_arn, version=version)

    # -- IMDS convenience (for tests of the fake itself) ---------------------------
    def imds_request(self, method: str, path: str, headers: dict | None = None, timeout: float = 5):
        """(status, headers dict, body str) straight from the IMDS fake."""
        conn = http.client.HTTPConnection("127.0.0.1", self.info["imds"], timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()

    def imds_token(self, ttl: int = 21600) -> str:
        st, _, body = self.imds_request("PUT", "/latest/api/token",
                                        {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
        if st != 200:
            raise FakeAWSError(f"IMDS token: {st} {body}")
        return body

    def imds_get(self, path: str, token: str | None = None):
        """(status, body) of an IMDS GET with a fresh (or given) token."""
        token = token or self.imds_token()
        st, _, body = self.imds_request("GET", path, {"X-aws-ec2-metadata-token": token})
        return st, body
