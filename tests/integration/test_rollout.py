"""`asg-agent rollout`: the blue/green switch from CI against the fake AWS."""
import json
import signal
import subprocess
import threading
import time
import unittest

from agentlib import AGENT, clean_env
from fakecase import FakeAWSCase
from harness import LAUNCHING


class Rollout(FakeAWSCase):
    prefix = "rollout"
    config = "[aws]\napi_timeout = 10\n"

    def setUp(self):
        super().setUp()
        self.blue, self.green = f"blue{self.n}", f"green{self.n}"
        w = self.f.make_world(group=self.blue, version="1.0.0", hook=False, target_group=True,
                              desired=2)
        self.tg = w.target_group_arn
        self.asg = self.f.client("autoscaling")
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=self.green,
            LaunchTemplate={"LaunchTemplateId": w.launch_template_id, "Version": "$Latest"},
            MinSize=0, MaxSize=10, DesiredCapacity=0, VPCZoneIdentifier=w.subnet_id,
            TargetGroupARNs=[self.tg])
        self.asg.put_lifecycle_hook(LifecycleHookName=f"{self.green}-launch",
                                    AutoScalingGroupName=self.green,
                                    LifecycleTransition=LAUNCHING, HeartbeatTimeout=300,
                                    DefaultResult="ABANDON")
        self.agents_stop = threading.Event()
        self.agent_thread = None

    def tearDown(self):
        self.agents_stop.set()
        if self.agent_thread:
            self.agent_thread.join(10)
        # Leave no rollout behind: the next test's status must find only its own.
        for g in (self.blue, self.green):
            self.asg.delete_tags(Tags=[{"ResourceId": g, "ResourceType": "auto-scaling-group",
                                        "Key": "asg-agent:rollout"}])
        super().tearDown()

    def env(self):
        admin = self.f.admin_credentials
        return clean_env({"AWS_ENDPOINT_URL": self.f.aws_endpoint,
                          "AWS_ACCESS_KEY_ID": admin["AccessKeyId"],
                          "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"],
                          "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})

    def rollout(self, *args, timeout=120):
        return subprocess.run([AGENT, "-c", self.conf, "rollout", *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def fake_agents(self, result="CONTINUE"):
        """Play the new instances' agents: complete each pending launch action."""
        def loop():
            while not self.agents_stop.is_set():
                for p in self.f.lifecycle_pending():
                    if p.get("group") == self.green:
                        try:
                            self.asg.complete_lifecycle_action(
                                AutoScalingGroupName=self.green, LifecycleHookName=p["hook"],
                                InstanceId=p["instance_id"], LifecycleActionResult=result)
                        except Exception:
                            pass
                time.sleep(0.2)
        self.agent_thread = threading.Thread(target=loop, daemon=True)
        self.agent_thread.start()

    def asg_group(self, name):
        return self.asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def tags(self, name):
        return {t["Key"]: t["Value"] for t in self.asg_group(name)["Tags"]}

    def states(self, name):
        return sorted(i["LifecycleState"] for i in self.asg_group(name)["Instances"])

    def start(self, *extra):
        return self.rollout("start", "--live", self.blue, "--idle", self.green,
                            "--version", "2.0.0", "--sha256", "a" * 64, "--timeout", "60",
                            *extra)

    def test_start_then_finish(self):
        self.fake_agents()
        r = self.start()
        self.assert_exit(r, 0)
        self.assertIn("put in Standby", r.stdout)
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        tags = self.tags(self.green)
        self.assertEqual(tags["asg-agent:version"], "2.0.0")
        self.assertEqual(tags["asg-agent:sha256"], "a" * 64)
        self.assertIn("phase=switched", tags["asg-agent:rollout"])
        st = self.rollout("status", "--json")
        self.assert_exit(st, 0)
        doc = json.loads(st.stdout)
        self.assertEqual({g["name"] for g in doc["groups"]}, {self.blue, self.green})
        human = self.rollout("status")
        self.assertIn("step 1 of 1, switched", human.stdout)
        # The same start again is a no-op that says where things stand.
        again = self.start()
        self.assert_exit(again, 0)
        fin = self.rollout("finish")
        self.assert_exit(fin, 0)
        self.assertEqual(self.asg_group(self.blue)["DesiredCapacity"], 0)
        self.assertNotIn("asg-agent:rollout", self.tags(self.green))
        self.assertEqual(self.tags(self.green)["asg-agent:live"], "true")
        self.assertEqual(self.tags(self.blue)["asg-agent:live"], "false")
        deadline = time.time() + 10
        while self.asg_group(self.blue)["Instances"] and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.asg_group(self.blue)["Instances"], [])
        self.assertEqual(self.rollout("status").returncode, 1, "no rollout in progress")

    def test_start_then_rollback(self):
        self.fake_agents()
        r = self.start()
        self.assert_exit(r, 0)
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 0)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertNotIn("asg-agent:rollout", self.tags(self.blue))
        elb = self.f.client("elbv2")
        healthy = {d["Target"]["Id"] for d in elb.describe_target_health(
            TargetGroupArn=self.tg)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"}
        blue_ids = {i["InstanceId"] for i in self.asg_group(self.blue)["Instances"]}
        self.assertTrue(blue_ids <= healthy)

    def test_new_version_abandons(self):
        self.fake_agents("ABANDON")
        r = self.start()
        self.assert_exit(r, 4)
        self.assertIn("ABANDON", r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"],
                         "the live group was never touched")
        self.assertEqual(self.asg_group(self.blue)["DesiredCapacity"], 2)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertNotIn("asg-agent:rollout", self.tags(self.blue))

    def test_refuses_busy_or_non_empty(self):
        self.asg.set_desired_capacity(AutoScalingGroupName=self.green, DesiredCapacity=1)
        r = self.start()
        self.assert_exit(r, 3)
        self.assertIn("is not empty", r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])

    def test_ci_job_killed_mid_step_then_rerun(self):
        # No agents yet: the start waits for health; kill it there, as a CI runner dies.
        p = subprocess.Popen([AGENT, "-c", self.conf, "rollout", "start", "--live", self.blue,
                              "--idle", self.green, "--version", "2.0.0", "--timeout", "60"],
                             env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        deadline = time.time() + 20
        while time.time() < deadline and len(self.asg_group(self.green)["Instances"]) < 2:
            time.sleep(0.2)
        p.kill()
        p.wait()
        self.assertIn("phase=scaling", self.tags(self.green)["asg-agent:rollout"])
        other = self.rollout("start", "--live", self.blue, "--idle", self.green, "--version",
                             "3.0.0")
        self.assertEqual(other.returncode, 3, "a different rollout is refused")
        self.fake_agents()
        r = self.rollout("start", "--live", self.blue, "--idle", self.green, "--version",
                         "2.0.0", "--timeout", "60")
        self.assert_exit(r, 0)
        self.assertIn("resuming", r.stdout)
        self.assertEqual(len(self.asg_group(self.green)["Instances"]), 2, "no extra capacity")
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])

    def test_usage(self):
        self.assert_exit(self.rollout("start", "--live", self.blue), 2)
        self.assert_exit(self.rollout("sideways"), 2)
        self.assert_exit(self.rollout("start", "--live", "a", "--idle", "a", "--version", "1"), 2)


if __name__ == "__main__":
    unittest.main()
