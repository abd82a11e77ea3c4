"""The whole timeline: EC2's launch, the kernel, systemd, the agent's steps, CONTINUE, serving
and the load balancer's checks, in `status` and `status --json`. systemd's timestamps come
from a fake `systemctl` on PATH; the load balancer is this test sending ELB-HealthChecker
requests. Real binary, fake AWS with signature checks on."""
import http.client
import json
import os
import sys
import time
import unittest
import urllib.request

from bootlib import http_get
from fakecase import FakeAWSCase

# Prints the properties asked for from the values in FAKE_SHOW (JSON), or fails like
# systemctl outside systemd when FAKE_SHOW is unset.
FAKE_SYSTEMCTL = r'''
import json, os, sys
with open(os.environ["FAKE_CALLS"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\n")
if "FAKE_SHOW" not in os.environ:
    sys.stderr.write("System has not been booted with systemd as init system (PID 1).\n")
    sys.exit(1)
values = json.loads(os.environ["FAKE_SHOW"])
props = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--property=")][0]
for p in props.split(","):
    print(f"{p}={values.get(p, '')}")
'''


def elb_check(port):
    """One check as an ALB node sends it: (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    c.request("GET", "/healthz", headers={"User-Agent": "ELB-HealthChecker/2.0"})
    r = c.getresponse()
    out = r.status, r.read().decode()
    c.close()
    return out


class Timeline(FakeAWSCase):
    prefix = "tl"

    def setUp(self):
        super().setUp()
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as fh:
            fh.write(f"#!{sys.executable}\n" + FAKE_SYSTEMCTL)
        os.chmod(path, 0o755)
        self.calls = os.path.join(self.dir, "calls.jsonl")

    def env(self, show=None):
        e = {"PATH": self.bin + os.pathsep + os.environ.get("PATH", ""),
             "FAKE_CALLS": self.calls, "INVOCATION_ID": "0123456789abcdef"}
        if show is not None:
            e["FAKE_SHOW"] = json.dumps(show)
        return e

    def pending_time(self, w):
        """pendingTime of the instance's identity document, as the fake IMDS serves it."""
        base = self.agent_env()["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/")
        req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        token = urllib.request.urlopen(req, timeout=5).read().decode()
        req = urllib.request.Request(f"{base}/latest/dynamic/instance-identity/document",
                                     headers={"X-aws-ec2-metadata-token": token})
        doc = json.loads(urllib.request.urlopen(req, timeout=5).read())
        return doc["pendingTime"]

    def test_whole_timeline(self):
        w, _ = self.world(version="2.0.0")
        now_mono = time.monotonic()
        show = {"UserspaceTimestampMonotonic": int((now_mono - 4.0) * 1e6),
                "InactiveExitTimestampMonotonic": int((now_mono - 0.5) * 1e6),
                "ExecMainStartTimestampMonotonic": int((now_mono - 0.4) * 1e6)}
        t_start = time.time()
        a = self.start("[health]\nlb_healthy_threshold = 3\n", env=self.env(show))
        self.assert_serving(a, w)
        for i in range(3):
            self.assertEqual(elb_check(self.health_port), (200, "ok\n"), f"ELB check {i + 1}")
            time.sleep(0.3)
        self.assertTrue(self.wait_for(
            lambda: (a.status_json()["milestones"] or {}).get("lb_healthy"), 10),
            a.status_json())
        st = a.status_json()
        m = st["milestones"]
        for key in ("instance_launch", "kernel_start", "userspace_start", "unit_start",
                    "agent_start", "continue_sent", "serving", "lb_first_check",
                    "lb_healthy"):
            self.assertIsInstance(m.get(key), float, f"milestone {key}: {m}")
        # EC2's launch: the identity document's pendingTime, whole seconds.
        want = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m["instance_launch"]))
        self.assertEqual(want, self.pending_time(w))
        # IMDS's clock against ours, from its Date header (the fake's is ours).
        self.assertLessEqual(abs(st["imds_clock_offset"]), 1.0, st["imds_clock_offset"])
        # The kernel: now minus CLOCK_BOOTTIME.
        kernel = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        self.assertAlmostEqual(m["kernel_start"], kernel, delta=1.0)
        # systemd's monotonic timestamps, turned into wall clock.
        self.assertAlmostEqual(m["userspace_start"], t_start - 4.0, delta=0.5)
        self.assertAlmostEqual(m["unit_start"], t_start - 0.5, delta=0.5,
                               msg="InactiveExitTimestamp, not ExecMainStart")
        self.assertLessEqual(m["agent_start"], m["serving"])
        self.assertLessEqual(m["serving"], m["continue_sent"])
        self.assertLessEqual(m["serving"], m["lb_first_check"])
        self.assertGreaterEqual(m["lb_healthy"] - m["lb_first_check"], 0.5,
                                "the third check, two pauses after the first")
        lb = st["load_balancer"]
        self.assertEqual((lb["checks"], lb["healthy_threshold"]), (3, 3), lb)
        self.assertAlmostEqual(lb["interval"], 0.3, delta=0.25)
        with open(self.calls) as fh:
            calls = [json.loads(line) for line in fh]
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(calls[0][-1], "--property=UserspaceTimestampMonotonic", calls)
        self.assertTrue(calls[1][-1].endswith(".service"), calls)
        human = a.status().stdout
        for want in ("from launch to healthy:", "instance launched (EC2 pendingTime: EC2's clock",
                     "kernel started", "systemd userspace started", "agent unit started",
                     "CONTINUE sent", "first load-balancer check",
                     "load balancer healthy (as seen from here): 3 checks in a row",
                     "where the time went:", "health checks", "timeline:",
                     "clocks: IMDS's is "):
            self.assertIn(want, human)
        self.assertIn("load balancer healthy (as seen from here)", a.log_text())

    def cloudwatch(self):
        """{metric name: [values]} of namespace ASGAgent for this test's group, from moto."""
        cw = self.f.client("cloudwatch")
        out = {}
        for m in cw.list_metrics(Namespace="ASGAgent")["Metrics"]:
            if m["Dimensions"] != [{"Name": "AutoScalingGroupName", "Value": self.group}]:
                continue
            r = cw.get_metric_statistics(
                Namespace="ASGAgent", MetricName=m["MetricName"], Dimensions=m["Dimensions"],
                StartTime=time.time() - 3600, EndTime=time.time() + 3600, Period=60,
                Statistics=["Maximum", "SampleCount"], Unit="Seconds")
            out[m["MetricName"]] = r["Datapoints"]
        return out

    def test_cloudwatch(self):
        """[metrics] cloudwatch: one PutMetricData after CONTINUE, one once healthy; a
        throttled one is asked again."""
        w, _ = self.world()
        self.f.fault("aws", kind="throttle", action="PutMetricData", count=1)
        a = self.start("[health]\nlb_healthy_threshold = 2\n[metrics]\ncloudwatch = yes\n",
                       env=self.env(None))
        self.assert_serving(a, w)
        self.assertTrue(self.wait_for(lambda: "TimeToServing" in self.cloudwatch(), 10),
                        a.log_text())
        puts = self.f.requests(target="aws", action="PutMetricData")
        complete = self.f.requests(target="aws", action="CompleteLifecycleAction")
        self.assertEqual([(p["status"], bool(p.get("faults"))) for p in puts],
                         [(400, True), (200, False)],
                         "one put when serving, asked again after throttling")
        self.assertEqual(len(complete), 1)
        self.assertGreater(puts[0]["seq"], complete[0]["seq"], "after CONTINUE")
        for _ in range(2):
            elb_check(self.health_port)
            time.sleep(0.2)
        self.assertTrue(self.wait_for(
            lambda: "TimeToLoadBalancerHealthy" in self.cloudwatch(), 10), a.log_text())
        self.assertEqual(len(self.f.requests(target="aws", action="PutMetricData")), 3)
        got = self.cloudwatch()
        m = a.status_json()["milestones"]
        launch = m["instance_launch"]
        want = {"TimeToKernelStart": m["kernel_start"] - launch,
                "TimeToAgentStart": m["agent_start"] - launch,
                "TimeToServing": m["serving"] - launch,
                "TimeToContinue": m["continue_sent"] - launch,
                "AgentBootTime": m["serving"] - m["agent_start"],
                "TimeToFirstLoadBalancerCheck": m["lb_first_check"] - launch,
                "TimeToLoadBalancerHealthy": m["lb_healthy"] - launch,
                "ServingToLoadBalancerHealthy": m["lb_healthy"] - m["serving"]}
        self.assertEqual(sorted(got), sorted(want), "no systemd here: no systemd metrics")
        for name, value in want.items():
            self.assertEqual(len(got[name]), 1, f"{name}: one data point: {got[name]}")
            self.assertEqual(got[name][0]["SampleCount"], 1, name)
            self.assertAlmostEqual(got[name][0]["Maximum"], value, delta=0.002, msg=name)

    def test_cloudwatch_off_by_default(self):
        w, _ = self.world()
        a = self.start(env=self.env(None))
        self.assert_serving(a, w)
        elb_check(self.health_port)
        time.sleep(0.5)
        self.assertEqual(self.f.requests(target="aws", service="monitoring"), [])
        self.assertEqual(self.f.requests(target="aws", action="PutMetricData"), [])

    def test_no_systemd_no_checks(self):
        """Outside systemd, and before any load-balancer check: what is known, no more."""
        w, _ = self.world()
        a = self.start(env=self.env(None))
        self.assert_serving(a, w)
        # A probe that is not the load balancer's does not count.
        self.assertEqual(http_get(self.health_port, "/healthz"), (200, "ok\n"))
        # The milestones before the agent are read just after serving begins.
        self.assertTrue(self.wait_for(
            lambda: a.status_json()["milestones"]["instance_launch"], 10), a.log_text())
        time.sleep(0.5)
        st = a.status_json()
        m = st["milestones"]
        self.assertIsNone(m["lb_first_check"], m)
        self.assertEqual(st["load_balancer"]["checks"], 0)
        self.assertIsNone(m["userspace_start"], m)
        self.assertIsNone(m["unit_start"], m)
        self.assertIsInstance(m["kernel_start"], float)
        self.assertIsInstance(m["instance_launch"], float)
        human = a.status().stdout
        self.assertNotIn("systemd userspace started", human)
        self.assertIn("kernel started", human)
        self.assertEqual(a.status().returncode, 0)


if __name__ == "__main__":
    unittest.main()
