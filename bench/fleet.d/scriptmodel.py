#!/usr/bin/env python3
"""A model of N copies of bench/userdata.sh, for fleets too big to run as processes here.

    scriptmodel.py --aws URL --imds URL --instances FILE --calib JSON --out FILE

200 bash scripts each running 4 AWS CLI processes need ~0.7 s of CPU per CLI
call: on a 2-CPU machine they measure the machine, not AWS's buckets (on AWS
every instance has its own CPUs). This runs the same script, step by step,
as one thread per instance in one process, with the same API traffic:

  * IMDS with curl's requests: a token, instance-id, placement/region, through
    the instance's own IMDS identity (--imds is the fake's base; the instance's
    prefix is added).
  * Every `aws` command is one CLI process: its start-up (measured on this
    machine from single runs of the real script, passed in --calib as
    cli_start) is a sleep, then its own IMDS credential fetch (token, role,
    credentials), then the request(s) through botocore with the AWS CLI v1's
    retry policy: "legacy" mode, 5 attempts, delays rand(0,1) x 2^(n-1) s.
    `aws s3 cp` is HeadObject + GetObject.
  * Steps without API calls (sha256sum + tar, the app starting and the health
    loop's curl + `sleep 1`) are sleeps of the measured durations (--calib
    install, health).
  * The script's control flow: `set -e` ends the instance at a failed
    unguarded call (ec2 describe-tags, s3 cp, complete-lifecycle-action: no
    CONTINUE, the hook times out later); the tag poll is guarded and retried
    every `sleep 5` up to TAG_POLLS (60) times; CONTINUE at the end.

All threads start at the same instant. --out gets one JSON object per
instance: start and end wall times, ok, the error that ended it.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

import botocore.config
import botocore.exceptions
import botocore.session

TAG_POLLS = 60
VERSION_TAG = "asg-agent:version"
SHA_TAG = "asg-agent:sha256"


class Step(Exception):
    """set -e: an unguarded command failed; the script exits here."""


class Instance:
    def __init__(self, m, iid):
        self.m = m
        self.iid = iid
        u = urllib.parse.urlsplit(m.args.imds)
        self.imds_host, self.imds_port = u.hostname, u.port
        self.prefix = f"/{iid}"
        self.out = {"instance_id": iid, "ok": False, "error": None, "cli_calls": 0}

    # curl -sSf --max-time 5 against IMDS
    def imds(self, method, path, headers, timeout=5):
        c = http.client.HTTPConnection(self.imds_host, self.imds_port, timeout=timeout)
        try:
            c.request(method, self.prefix + path, headers=headers)
            r = c.getresponse()
            body = r.read().decode()
            if r.status != 200:
                raise Step(f"curl: (22) The requested URL returned error: {r.status}")
            return body
        except OSError as e:
            raise Step(f"curl: {e}") from None
        finally:
            c.close()

    def cli(self, service, fn):
        """One `aws ...` process: start-up, IMDS credentials, the request(s)."""
        self.out["cli_calls"] += 1
        time.sleep(self.m.calib["cli_start"])
        # botocore's InstanceMetadataFetcher: 1 s timeout, 1 attempt
        try:
            tok = self.imds("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, 1)
            h = {"X-aws-ec2-metadata-token": tok}
            role = self.imds("GET", "/latest/meta-data/iam/security-credentials/", h, 1).strip()
            self.imds("GET", f"/latest/meta-data/iam/security-credentials/{role}", h, 1)
        except Step as e:
            raise Step(f"Unable to locate credentials (IMDS: {e})") from None
        try:
            return fn(self.m.clients[service])
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            raise Step(f"An error occurred ({err.get('Code')}) when calling the "
                       f"{e.operation_name} operation (reached max retries: 4): {err.get('Message')}") from None
        except botocore.exceptions.BotoCoreError as e:
            raise Step(str(e)) from None

    def run(self):
        m = self.m
        m.go.wait()
        self.out["start"] = time.time()
        try:
            tok = self.imds("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
            h = {"X-aws-ec2-metadata-token": tok}
            iid = self.imds("GET", "/latest/meta-data/instance-id", h)
            region = self.imds("GET", "/latest/meta-data/placement/region", h)
            r = self.cli("ec2", lambda c: c.describe_tags(Filters=[
                {"Name": "resource-id", "Values": [iid]}, {"Name": "key", "Values": ["aws:autoscaling:groupName"]}]))
            asg = (r.get("Tags") or [{}])[0].get("Value")
            if not asg:
                raise Step("no group tag")
            version = sha = None
            for _ in range(TAG_POLLS):
                try:
                    r = self.cli("autoscaling", lambda c: c.describe_tags(Filters=[
                        {"Name": "auto-scaling-group", "Values": [asg]}]))
                    tags = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
                    version, sha = tags.get(VERSION_TAG), tags.get(SHA_TAG)
                except Step:
                    pass  # `|| OUT="None None"`
                if version:
                    break
                time.sleep(5)
            if not version or not sha:
                self.complete(asg, "ABANDON")
                raise Step("no version tag; ABANDON")
            key = f"{m.args.prefix}/{version}.tar.gz"

            def s3cp(c):
                c.head_object(Bucket=m.args.bucket, Key=key)
                return c.get_object(Bucket=m.args.bucket, Key=key)["Body"].read()

            self.cli("s3", s3cp)
            time.sleep(m.calib["install"])  # sha256sum -c, tar xzf, ln -sfn
            time.sleep(m.calib["health"])  # app start-up, curl + sleep 1 until healthy
            self.complete(asg, "CONTINUE")
            self.out["ok"] = True
        except Step as e:
            self.out["error"] = str(e)
        except Exception as e:  # a bug here: report it as the instance's end
            self.out["error"] = f"model: {type(e).__name__}: {e}"
        self.out["end"] = time.time()

    def complete(self, asg, result):
        self.cli("autoscaling", lambda c: c.complete_lifecycle_action(
            AutoScalingGroupName=asg, LifecycleHookName=f"{asg}-launch", InstanceId=self.iid,
            LifecycleActionResult=result))


class Model:
    def __init__(self, args):
        self.args = args
        self.calib = json.loads(args.calib)
        with open(args.instances) as fh:
            self.ids = json.load(fh)
        self.go = threading.Event()
        # The role's credentials, from IMDS as every instance's CLI gets them
        # (the same for all: one instance role).
        first = Instance(self, self.ids[0])
        tok = first.imds("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
        h = {"X-aws-ec2-metadata-token": tok}
        role = first.imds("GET", "/latest/meta-data/iam/security-credentials/", h).strip()
        self.creds = json.loads(first.imds("GET", f"/latest/meta-data/iam/security-credentials/{role}", h))
        sess = botocore.session.Session()
        sess.set_config_variable("credentials_file", "/dev/null")
        sess.set_config_variable("config_file", "/dev/null")
        cfg = botocore.config.Config(retries={"mode": "legacy"}, max_pool_connections=len(self.ids) + 16,
                                     s3={"addressing_style": "path"}, connect_timeout=60, read_timeout=60)
        self.clients = {
            svc: sess.create_client(svc, region_name="us-east-1", endpoint_url=args.aws, config=cfg,
                                    aws_access_key_id=self.creds["AccessKeyId"],
                                    aws_secret_access_key=self.creds["SecretAccessKey"],
                                    aws_session_token=self.creds["Token"])
            for svc in ("ec2", "autoscaling", "s3")
        }

    def run(self):
        insts = [Instance(self, i) for i in self.ids]
        threads = [threading.Thread(target=i.run, daemon=True) for i in insts]
        for t in threads:
            t.start()
        self.go.set()
        deadline = time.monotonic() + self.args.timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with open(self.args.out, "w") as fh:
            json.dump([i.out for i in insts], fh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aws", required=True, help="AWS endpoint (the fake's proxy)")
    ap.add_argument("--imds", required=True, help="the IMDS fake's base URL (no prefix)")
    ap.add_argument("--instances", required=True, help="JSON file: a list of instance ids")
    ap.add_argument("--calib", required=True, help='{"cli_start": S, "install": S, "health": S}')
    ap.add_argument("--bucket", default="releases")
    ap.add_argument("--prefix", default="app")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", required=True)
    Model(ap.parse_args()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
