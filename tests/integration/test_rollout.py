"""`asg-agent rollout`: the blue/green switch from CI against the fake AWS."""
import json
import signal
import subprocess
import threading
import time
import unittest

from agentlib import AGENT, clean_env
from fakecase import FakeAWSCase
from harness import LAUNCHING, TERMINATING

# The actions that change a group; a refusal "before any change" sends none of them.
MUTATING = ("UpdateAutoScalingGroup", "SetDesiredCapacity", "EnterStandby", "ExitStandby",
            "TerminateInstanceInAutoScalingGroup", "CreateOrUpdateTags", "DeleteTags")


class RolloutCase(FakeAWSCase):
    """Two groups behind one target group (blue live with 2 instances, green empty with a
    launch hook) and the helpers of the rollout tests; test_rollout_guards.py reuses it."""
    prefix = "rollout"
    config = "[aws]\napi_timeout = 10\n"
    classic = False  # behind a Classic Load Balancer (self.lb) instead of a target group

    def setUp(self):
        super().setUp()
        self.blue, self.green = f"blue{self.n}", f"green{self.n}"
        w = self.f.make_world(group=self.blue, version="1.0.0", hook=False,
                              target_group=not self.classic, desired=2)
        self.world, self.tg = w, w.target_group_arn
        self.asg = self.f.client("autoscaling")
        balancer = {"TargetGroupARNs": [self.tg]}
        if self.classic:
            self.lb = f"clb{self.n}"
            self.f.client("elb").create_load_balancer(
                LoadBalancerName=self.lb, Subnets=[w.subnet_id], Listeners=[
                    {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}])
            self.asg.attach_load_balancers(AutoScalingGroupName=self.blue,
                                           LoadBalancerNames=[self.lb])
            balancer = {"LoadBalancerNames": [self.lb]}
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=self.green,
            LaunchTemplate={"LaunchTemplateId": w.launch_template_id, "Version": "$Latest"},
            MinSize=0, MaxSize=10, DesiredCapacity=0, VPCZoneIdentifier=w.subnet_id,
            **balancer)
        self.asg.put_lifecycle_hook(LifecycleHookName=f"{self.green}-launch",
                                    AutoScalingGroupName=self.green,
                                    LifecycleTransition=LAUNCHING, HeartbeatTimeout=300,
                                    DefaultResult="ABANDON")
        self.agents_stop = threading.Event()
        self.agent_thread = None

        self.sampler_stop = threading.Event()
        self.samples = []
        self.sampler = None
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.agents_stop.set()
        self.sampler_stop.set()
        if self.agent_thread:
            self.agent_thread.join(10)
        if self.sampler:
            self.sampler.join(10)
        # Leave no rollout behind: the next test's status must find only its own.
        for g in (self.blue, self.green):
            keys = [k for k in self.tags(g) if k.startswith("asg-agent:rollout")
                    or k.startswith("asg-agent:history:")]
            if keys:
                self.asg.delete_tags(Tags=[{"ResourceId": g, "ResourceType": "auto-scaling-group",
                                            "Key": k} for k in keys])
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

    def fake_agents(self, result="CONTINUE", launches_only=False):
        """Play the new instances' agents: complete each pending launch action (and
        terminate action, unless launches_only: those then wait out their timeout, as a
        drain does)."""
        def loop():
            while not self.agents_stop.is_set():
                for p in self.f.lifecycle_pending():
                    if launches_only and p.get("transition") != LAUNCHING:
                        continue
                    if p.get("group") in (self.blue, self.green):
                        try:
                            self.asg.complete_lifecycle_action(
                                AutoScalingGroupName=p["group"], LifecycleHookName=p["hook"],
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

    def serving(self):
        """How many instances the load balancer sends traffic to."""
        if self.classic:
            d = self.f.client("elb").describe_instance_health(LoadBalancerName=self.lb)
            return sum(1 for i in d["InstanceStates"] if i["State"] == "InService")
        d = self.f.client("elbv2").describe_target_health(TargetGroupArn=self.tg)
        return sum(1 for t in d["TargetHealthDescriptions"]
                   if t["TargetHealth"]["State"] == "healthy")

    def watch_serving(self):
        """Sample the load balancer's healthy instances all through the test."""
        def loop():
            while not self.sampler_stop.is_set():
                try:
                    self.samples.append(self.serving())
                except Exception as e:  # a failed sample must not pass for a healthy one
                    self.samples.append(f"error: {e}")
                self.sampler_stop.wait(0.1)
        self.sampler = threading.Thread(target=loop, daemon=True)
        self.sampler.start()

    def assert_always_served(self):
        """No sample saw zero healthy targets (and there were samples to see)."""
        # A quick test may end before ten samples: the state it left is worth sampling too.
        deadline = time.time() + 5
        while len(self.samples) <= 10 and time.time() < deadline:
            time.sleep(0.05)
        self.sampler_stop.set()
        self.sampler.join(10)
        self.assertGreater(len(self.samples), 10, "too few target health samples")
        bad = [x for x in self.samples if not isinstance(x, int) or x == 0]
        self.assertEqual(bad, [], f"moments without a healthy target, of {len(self.samples)}")

    def make_alarm(self, name):
        cw = self.f.client("cloudwatch")
        cw.put_metric_alarm(AlarmName=name, MetricName="HTTPCode_Target_5XX_Count",
                            Namespace="AWS/ApplicationELB", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanOrEqualToThreshold")
        return cw

    def background(self, *args):
        p = subprocess.Popen([AGENT, "-c", self.conf, "rollout", *args], env=self.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def finish_background(self, p, timeout=120):
        out, err = p.communicate(timeout=timeout)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def record(self, name=None):
        """The rollout tag's fields, or {} when there is none."""
        v = self.tags(name or self.green).get("asg-agent:rollout")
        if v is None:
            return {}
        words = v.split()
        rec = dict(w.split("=", 1) for w in words[1:])
        rec["version"] = words[0]
        return rec

    def wait_record(self, step, phase, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rec = self.record()
            if rec.get("step") == step and rec.get("phase") == phase:
                return rec
            time.sleep(0.1)
        self.fail(f"no step={step} phase={phase} in {timeout} s: got {self.record()}")

    def history(self):
        r = self.rollout("history", "--live", self.blue, "--idle", self.green, "--json")
        self.assert_exit(r, 0)
        return json.loads(r.stdout)

    def start(self, *extra):
        return self.rollout("start", "--live", self.blue, "--idle", self.green,
                            "--version", "2.0.0", "--sha256", "a" * 64, "--timeout", "60",
                            *extra)

    def mutations(self):
        """The group-changing requests the CLI sent through the proxy since setUp."""
        return [(q.get("action"), q.get("path")) for q in self.f.requests(target="aws")
                if q.get("action") in MUTATING]

    def guarded(self, *extra, version="2.0.0"):
        return ["start", "--live", self.blue, "--idle", self.green, "--version", version,
                "--sha256", "a" * 64, "--timeout", "60", *extra]

    def stopped_in_bake(self):
        """A guarded start in 4 steps, one new instance stopped in step 2's bake (it fails the
        balancer's health check): rolled back. The rollout's result and the stopped id."""
        self.watch_serving()
        self.fake_agents()
        p = self.background(*self.guarded("--steps", "50,100", "--bake", "30", "--auto"))
        self.wait_record("2/4", "baking")
        ids = [i["InstanceId"] for i in self.asg_group(self.green)["Instances"]]
        self.f.client("ec2").stop_instances(InstanceIds=ids[:1])
        r = self.finish_background(p)
        self.assert_exit(r, 4)
        self.assertIn("new instances healthy behind the load balancers", r.stderr)
        self.assertIn("during step 2 of 4 (bake)", r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assert_always_served()
        return r, ids[0]


class Rollout(RolloutCase):
    def test_start_then_finish(self):
        self.fake_agents()
        # A terminate hook's tag left from before: green has no terminate hook now.
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": self.green, "ResourceType": "auto-scaling-group",
            "Key": "asg-agent:terminate-hook", "Value": "gone 300", "PropagateAtLaunch": True}])
        self.f.client("elbv2").modify_target_group_attributes(TargetGroupArn=self.tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "42"}])
        r = self.start()
        self.assert_exit(r, 0)
        self.assertIn("put in Standby", r.stdout)
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        tags = self.tags(self.green)
        self.assertEqual(tags["asg-agent:version"], "2.0.0")
        self.assertEqual(tags["asg-agent:sha256"], "a" * 64)
        # The new group's hook is named for its instances; the stale terminate tag is gone.
        self.assertEqual(tags.get("asg-agent:launch-hook"), f"{self.green}-launch 300", tags)
        self.assertNotIn("asg-agent:terminate-hook", tags)
        # Its instances told how long a scale-in's terminate action takes to exist.
        self.assertEqual(tags.get("asg-agent:deregistration-delay"), "42", tags)
        self.assertIn("phase=switched", tags["asg-agent:rollout"])
        # The scale-out announced to the instances it launched (their copies of the tag):
        # 2 of them, just now; the group's tag deleted once they were healthy.
        ids = [i["InstanceId"] for i in self.asg_group(self.green)["Instances"]]
        copies = self.f.client("ec2").describe_tags(Filters=[
            {"Name": "resource-id", "Values": ids},
            {"Name": "key", "Values": ["asg-agent:scale-out"]}])["Tags"]
        self.assertEqual(len(copies), 2, copies)
        for c in copies:
            count, at = c["Value"].split(" ")
            self.assertEqual(count, "2", copies)
            self.assertLess(abs(time.time() - int(at)), 120, copies)
        self.assertNotIn("asg-agent:scale-out", tags)
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
        self.watch_serving()
        self.fake_agents()
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 0)
        self.assert_always_served()
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertNotIn("asg-agent:rollout", self.tags(self.blue))
        elb = self.f.client("elbv2")
        healthy = {d["Target"]["Id"] for d in elb.describe_target_health(
            TargetGroupArn=self.tg)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"}
        blue_ids = {i["InstanceId"] for i in self.asg_group(self.blue)["Instances"]}
        self.assertTrue(blue_ids <= healthy)

    def draining_standby(self):
        """EnterStandby holds the old instances in EnteringStandby for 15 s (their load
        balancers drain them, 300 s by default on AWS); start returns meanwhile."""
        self.f.standby_drain(15)
        self.addCleanup(self.f.standby_drain, 0)
        self.fake_agents()
        ids = sorted(i["InstanceId"] for i in self.asg_group(self.blue)["Instances"])
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual(self.states(self.blue), ["EnteringStandby", "EnteringStandby"])
        return ids

    def test_finish_while_the_old_instances_drain_terminates_them(self):
        self.draining_standby()
        fin = self.rollout("finish")
        self.assert_exit(fin, 0)
        self.assertIn(f"{self.blue}: 2 instances entering Standby", fin.stdout)
        # None left behind in Standby, where no capacity would ever take them away.
        self.assertTrue(self.wait_for(lambda: self.asg_group(self.blue)["Instances"] == [], 15),
                        self.asg_group(self.blue)["Instances"])

    def test_rollback_while_the_old_instances_drain_brings_the_same_ones_back(self):
        ids = self.draining_standby()
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 0)
        self.assertIn(f"{self.blue}: 2 instances entering Standby", rb.stdout)
        self.assertIn("2 instances back from Standby", rb.stdout)
        blue = self.asg_group(self.blue)["Instances"]
        self.assertEqual(sorted(i["InstanceId"] for i in blue), ids, "not the warm instances")
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)

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

    def scale_in(self, instance):
        """The new group's own scaling takes one instance away, as a scale-in policy does."""
        self.asg.terminate_instance_in_auto_scaling_group(InstanceId=instance,
                                                          ShouldDecrementDesiredCapacity=True)

    def test_own_scale_in_during_bake_is_not_a_failure(self):
        # Its instance drains first (a terminate hook), still Terminating at the next step.
        self.asg.put_lifecycle_hook(LifecycleHookName=f"{self.green}-terminate",
                                    AutoScalingGroupName=self.green,
                                    LifecycleTransition=TERMINATING, HeartbeatTimeout=300,
                                    DefaultResult="CONTINUE")
        self.watch_serving()
        self.fake_agents(launches_only=True)
        p = self.background(*self.guarded("--steps", "100", "--bake", "8", "--auto"))
        self.wait_record("1/2", "baking")
        victim = self.asg_group(self.green)["Instances"][0]["InstanceId"]
        self.scale_in(victim)
        r = self.finish_background(p)
        self.assert_exit(r, 0)
        self.assertIn(f"{self.green}: desired capacity 1 by its own scaling (the rollout "
                      "asked 2)", r.stdout)
        states = {i["InstanceId"]: i["LifecycleState"]
                  for i in self.asg_group(self.green)["Instances"]}
        self.assertTrue(states.get(victim, "").startswith("Terminating"), states)
        self.assertEqual(self.record()["phase"], "switched")
        # Step 2 gives it the old group's size again before it parks the old instances.
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 2)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        self.assert_always_served()

    def pending_green(self, n):
        """The new group's launch actions, once n of them wait (no agent answers yet)."""
        got = []
        def pending():
            got[:] = [q for q in self.f.lifecycle_pending() if q.get("group") == self.green]
            return len(got) >= n
        self.assertTrue(self.wait_for(pending, 30), got)
        return got

    def test_own_scale_in_while_the_step_waits_is_not_an_abandon(self):
        p = self.background(*self.guarded())
        first, second = self.pending_green(2)[:2]
        self.asg.complete_lifecycle_action(
            AutoScalingGroupName=self.green, LifecycleHookName=first["hook"],
            InstanceId=first["instance_id"], LifecycleActionResult="CONTINUE")
        self.assertTrue(self.wait_for(lambda: "InService" in self.states(self.green), 15))
        self.scale_in(first["instance_id"])
        time.sleep(3)  # a poll of the rollout sees the group one smaller, its second pending
        self.fake_agents()
        r = self.finish_background(p)
        self.assert_exit(r, 0)
        self.assertIn(f"{self.green}: desired capacity 1 by its own scaling (the step asked 2): "
                      "waiting for 1", r.stdout)
        self.assertNotIn("ABANDON", r.stdout + r.stderr)
        self.assertEqual(self.record()["phase"], "switched")
        # No more old instances parked than new ones serve.
        self.assertIn(f"{self.green}: 1 healthy of the 2 planned: 1 old instances in Standby, "
                      "not 2", r.stdout)
        self.assertEqual(self.states(self.blue), ["InService", "Standby"])

    def test_capacity_set_to_0_while_the_step_waits_rolls_back(self):
        p = self.background(*self.guarded())
        self.pending_green(2)
        self.asg.set_desired_capacity(AutoScalingGroupName=self.green, DesiredCapacity=0)
        r = self.finish_background(p)
        self.assert_exit(r, 4)
        self.assertIn(f"{self.green}: its desired capacity was set to 0 while the step waited "
                      "for 2 instances during step 1 of 1 (scaling): rolled back", r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])

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

    def test_stale_alarms_tag_is_not_watched(self):
        # A start that crashed after tagging its alarms, before its record; the rerun
        # names none, and its resumed steps must not watch the old ones.
        cw = self.make_alarm(f"old{self.n}")
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": self.green, "ResourceType": "auto-scaling-group",
            "Key": "asg-agent:rollout-alarms", "Value": f"old{self.n}",
            "PropagateAtLaunch": False}])
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        self.assertNotIn("asg-agent:rollout-alarms", self.tags(self.green))
        cw.set_alarm_state(AlarmName=f"old{self.n}", StateValue="ALARM",
                                StateReason="not this rollout's")
        self.assert_exit(self.rollout("step"), 0)
        self.assertEqual(self.record()["step"], "2/4")

    def test_corrupted_record_is_refused(self):
        # A size with junk after it once read as its number; the CI scales by it.
        bad = (f"2.0.0 live={self.blue} idle={self.green} step=1/1 phase=scaling size=2x "
               "steps=- bake=0 since=0 hist=5")
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": g, "ResourceType": "auto-scaling-group", "Key": "asg-agent:rollout",
            "Value": bad, "PropagateAtLaunch": False} for g in (self.blue, self.green)])
        r = self.rollout("step")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("unreadable asg-agent:rollout tag", r.stderr)
        r = self.rollout("step", "--live", self.blue, "--idle", self.green)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("unreadable asg-agent:rollout tag", r.stderr)
        r = self.start()
        self.assert_exit(r, 3)
        self.assertIn("a rollout is in progress", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0, "nothing scaled")
        self.assertEqual(self.states(self.blue), ["InService", "InService"])

    def test_steps_auto_to_the_end(self):
        self.watch_serving()
        self.make_alarm(f"5xx{self.n}")
        self.fake_agents()
        r = self.rollout(*self.guarded("--steps", "50,100", "--bake", "1", "--alarm",
                                       f"5xx{self.n}", "--auto"))
        self.assert_exit(r, 0)
        for k in range(1, 5):
            self.assertIn(f"step {k} of 4 done", r.stdout)
        self.assertIn(f"watching 5xx{self.n}", r.stdout)
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        self.assertEqual(self.record()["phase"], "switched")
        self.assert_exit(self.rollout("finish"), 0)
        self.assert_always_served()
        (h,) = self.history()
        self.assertEqual((h["version"], h["outcome"], len(h["steps"])), ("2.0.0", "finished", 4))
        self.assertTrue(all(st["began"] and st["ended"] for st in h["steps"]), h)

    def test_manual_steps(self):
        self.watch_serving()
        self.fake_agents()
        r = self.rollout(*self.guarded("--steps", "50,100", "--bake", "1"))
        self.assert_exit(r, 0)
        self.assertIn("waiting for approval", r.stdout)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 1, "the canary share")
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        st = self.rollout("status")
        self.assertIn("step 1 of 4, baked", st.stdout)
        self.assert_exit(self.rollout("finish"), 3)
        want = [(2, [], ["InService", "InService"]),
                (2, ["InService", "Standby"], ["InService", "InService"]),
                (2, ["Standby", "Standby"], ["InService", "InService"])]
        for k, (green, blue, green_states) in enumerate(want, start=2):
            r = self.rollout("step")
            self.assert_exit(r, 0)
            self.assertIn(f"step {k} of 4 done", r.stdout)
            self.assertNotIn(f"step {k + 1} of 4 done", r.stdout, "one step per approval")
            self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], green)
            if blue:
                self.assertEqual(self.states(self.blue), blue)
            self.assertEqual(self.states(self.green), green_states)
        self.assertEqual(self.record()["phase"], "switched")
        again = self.rollout("step")
        self.assert_exit(again, 0)
        self.assertIn("switched", again.stdout)
        self.assert_exit(self.rollout("finish"), 0)
        self.assert_always_served()

    def test_step_named_runs_once(self):
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        r = self.rollout("step", "--step", "3")
        self.assert_exit(r, 3)
        self.assertIn("--step 3: the rollout is at step 1 of 4 (baked)", r.stderr)
        self.assert_exit(self.rollout("step", "--step", "2"), 0)
        self.assertEqual(self.record()["step"], "2/4")
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 2)
        # The same approval job again: step 2 is done, nothing moves.
        r = self.rollout("step", "--step", "2")
        self.assert_exit(r, 0)
        self.assertIn("step 2 of 4 is done already", r.stdout)
        self.assertEqual(self.record()["step"], "2/4")
        self.assertEqual(self.states(self.blue), ["InService", "InService"], "no Standby yet")
        self.assert_exit(self.rollout("step", "--step", "3"), 0)
        self.assertEqual(self.record()["step"], "3/4")
        self.assertEqual(sorted(self.states(self.blue)), ["InService", "Standby"])
        for bad in (["--step", "0"], ["--step", "11"], ["--step", "2x"],
                    ["--step", "4", "--auto"]):
            self.assert_exit(self.rollout("step", *bad), 2)
        self.assert_exit(self.rollout("finish", "--step", "4"), 2)

    def test_alarm_in_first_bake_rolls_back(self):
        self.watch_serving()
        alarm = f"5xx{self.n}"
        cw = self.make_alarm(alarm)
        self.fake_agents()
        p = self.background(*self.guarded("--steps", "50,100", "--bake", "30", "--alarm",
                                          alarm, "--auto"))
        self.wait_record("1/4", "baking")
        st = self.rollout("status", "--json")
        self.assert_exit(st, 0)
        doc = json.loads(st.stdout)
        self.assertEqual((doc["step"], doc["phase"]), (1, "baking"))
        self.assertGreater(doc["bake_left"], 0)
        self.assertEqual([a["name"] for a in doc["alarms"]], [alarm])
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                           StateReason="Threshold Crossed: 7 errors")
        r = self.finish_background(p)
        self.assert_exit(r, 4)
        self.assertIn(f"alarm {alarm} is in ALARM (Threshold Crossed: 7 errors)", r.stderr)
        self.assertIn("during step 1 of 4 (bake)", r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(), {}, "the rollout is over")
        self.assertEqual(self.history()[0]["outcome"], "rolled-back")
        self.assert_always_served()

    def test_composite_alarm_rolls_back(self):
        # Without AlarmTypes, AWS's DescribeAlarms answers metric alarms only: a
        # composite --alarm was "not found" at start.
        metric, composite = f"m{self.n}", f"c{self.n}"
        cw = self.make_alarm(metric)
        cw.put_composite_alarm(AlarmName=composite, AlarmRule=f"ALARM({metric})")
        self.fake_agents()
        p = self.background(*self.guarded("--bake", "30", "--alarm", composite, "--auto"))
        self.wait_record("1/1", "baking")
        st = self.rollout("status", "--json")
        self.assert_exit(st, 0)
        self.assertEqual([a["name"] for a in json.loads(st.stdout)["alarms"]], [composite])
        cw.set_alarm_state(AlarmName=composite, StateValue="ALARM",
                           StateReason="ALARM(m) is true")
        r = self.finish_background(p)
        self.assert_exit(r, 4)
        self.assertIn(f"alarm {composite} is in ALARM", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)

    def test_alarm_with_old_in_standby_rolls_back(self):
        # The last step: every old instance in Standby; they must serve again first.
        self.watch_serving()
        alarm = f"5xx{self.n}"
        cw = self.make_alarm(alarm)
        self.fake_agents()
        # Each step bakes 8 s: the alarm is set at the start of the second bake.
        p = self.background(*self.guarded("--steps", "100", "--bake", "8", "--alarm",
                                          alarm, "--auto"))
        self.wait_record("2/2", "baking")
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="p99 above 2 s")
        r = self.finish_background(p)
        self.assert_exit(r, 4)
        self.assertIn(f"alarm {alarm} is in ALARM (p99 above 2 s) during step 2 of 2 (bake)",
                      r.stderr)
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assert_always_served()

    def test_new_instance_unhealthy_in_bake_rolls_back(self):
        r, stopped = self.stopped_in_bake()
        self.assertIn(f"{stopped} is unused", r.stderr)  # the state of a stopped target

    def test_old_instance_unhealthy_in_bake_is_said_not_rolled_back(self):
        self.watch_serving()
        self.fake_agents()
        p = self.background(*self.guarded("--steps", "100", "--bake", "4", "--auto"))
        self.wait_record("1/2", "baking")
        old = self.asg_group(self.blue)["Instances"][0]["InstanceId"]
        self.f.client("ec2").stop_instances(InstanceIds=[old])
        r = self.finish_background(p)
        self.assert_exit(r, 0)
        self.assertIn(f"{self.blue}: 1 serving instances of the old version not healthy",
                      r.stdout)
        self.assertEqual(self.record()["phase"], "switched")
        self.assert_always_served()

    def test_killed_during_bake_then_rerun_continues_it(self):
        self.watch_serving()
        self.fake_agents()
        args = self.guarded("--steps", "100", "--bake", "8", "--auto")
        p = self.background(*args)
        since = int(self.wait_record("1/2", "baking")["since"])
        time.sleep(1)
        p.kill()
        p.wait()
        time.sleep(3)
        self.assertEqual(self.record()["phase"], "baking", "killed in the bake")
        r = self.rollout(*args)
        self.assert_exit(r, 0)
        self.assertIn("resuming the rollout of 2.0.0 (step 1 of 2, baking)", r.stdout)
        (h,) = self.history()
        baked = h["steps"][0]
        ended = time.mktime(time.strptime(baked["ended"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        # Not skipped: it ran the whole 8 s; not restarted: not 8 s after the rerun (since + 12).
        self.assertGreaterEqual(ended - since, 8, baked)
        self.assertLess(ended - since, 11, baked)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        self.assertEqual(len(self.asg_group(self.green)["Instances"]), 2, "no extra capacity")
        self.assert_always_served()

    def test_finish_refused_during_bake(self):
        self.watch_serving()
        self.fake_agents()
        # One step (no --steps): the switch, then its bake, the last one.
        p = self.background(*self.guarded("--bake", "60", "--auto"))
        self.wait_record("1/1", "baking")
        r = self.rollout("finish")
        self.assert_exit(r, 3)
        self.assertIn("still running", r.stderr)
        self.assertEqual(self.asg_group(self.blue)["DesiredCapacity"], 0)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"], "finish did nothing")
        p.kill()
        p.wait()
        self.assert_exit(self.rollout("finish", "--force"), 0)
        self.assertEqual(self.tags(self.green)["asg-agent:live"], "true")
        self.assertEqual(self.history()[0]["outcome"], "finished")
        self.assert_always_served()

    def test_history_and_rollback_to_first_version_by_name(self):
        self.watch_serving()
        self.fake_agents()
        pairs = [(self.blue, self.green, "2.0.0", "a"), (self.green, self.blue, "3.0.0", "b"),
                 (self.blue, self.green, "4.0.0", "c")]
        for live, idle, version, digit in pairs:
            r = self.rollout("start", "--live", live, "--idle", idle, "--version", version,
                             "--sha256", digit * 64, "--timeout", "60", "--auto")
            self.assert_exit(r, 0)
            self.assert_exit(self.rollout("finish"), 0)
        hist = self.history()
        self.assertEqual([(h["version"], h["sha256"], h["outcome"], h["from"], h["to"])
                          for h in hist],
                         [(v, d * 64, "finished", live, idle) for live, idle, v, d in pairs])
        self.assertTrue(all(h["by"].startswith("arn:aws:") for h in hist), hist)
        text = self.rollout("history")
        self.assert_exit(text, 0)
        self.assertIn(f"4.0.0  {self.blue} -> {self.green}  finished", text.stdout)
        back = self.rollout("start", "--live", self.green, "--idle", self.blue, "--version",
                            "2.0.0", "--timeout", "60", "--auto")
        self.assert_exit(back, 0)
        self.assertIn("digest " + "a" * 64 + " from the history", back.stdout)
        self.assertEqual(self.tags(self.blue)["asg-agent:sha256"], "a" * 64)
        self.assertEqual(self.tags(self.blue)["asg-agent:version"], "2.0.0")
        self.assert_exit(self.rollout("finish"), 0)
        self.assertEqual(self.history()[-1]["sha256"], "a" * 64)
        self.assert_always_served()

    def test_history_of_every_group_reads_every_page(self):
        """`rollout history` without names lists every group's history tags, and
        DescribeTags answers 50 at a time, as AWS does: the entries past the first
        page are there too."""
        w = self.asg_group(self.blue)
        decoys = [f"hist{self.n}x{i:02d}" for i in range(30)]
        for name in decoys:
            self.asg.create_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=0,
                LaunchTemplate={"LaunchTemplateId": w["LaunchTemplate"]["LaunchTemplateId"],
                                "Version": "$Latest"},
                MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=w["VPCZoneIdentifier"])
            self.addCleanup(self.asg.delete_auto_scaling_group, AutoScalingGroupName=name,
                            ForceDelete=True)
            self.asg.create_or_update_tags(Tags=[{
                "ResourceId": name, "ResourceType": "auto-scaling-group",
                "Key": f"asg-agent:history:{started}", "PropagateAtLaunch": False,
                "Value": f"1.0.{started} - finished from=old t=0-5 "
                         "by=arn:aws:iam::123456789012:user/ci"}
                for started in (1700000000, 1700000100)])
        r = self.rollout("history", "--json")
        self.assert_exit(r, 0)
        seen = sorted((h["to"], h["version"]) for h in json.loads(r.stdout)
                      if h["to"] in decoys)
        want = sorted((name, f"1.0.{t}") for name in decoys for t in (1700000000, 1700000100))
        self.assertEqual(len(seen), len(want), f"entries: {seen[:3]}...")
        self.assertEqual(seen, want)

    def test_usage(self):
        self.assert_exit(self.rollout("start", "--live", self.blue), 2)
        self.assert_exit(self.rollout("sideways"), 2)
        self.assert_exit(self.rollout("start", "--live", "a", "--idle", "a", "--version", "1"), 2)
        for steps in ("50,10", "10,50", "0,100", "x", "10,20,30,40,50,100"):
            r = self.rollout(*self.guarded("--steps", steps))
            self.assert_exit(r, 2)
            self.assertIn("bad --steps", r.stderr)
        for bake in ("-1", "nan", "86401", "5s"):
            self.assert_exit(self.rollout(*self.guarded("--bake", bake)), 2)
        self.assert_exit(self.rollout(*self.guarded("--alarm", "a,b")), 2)
        self.assertEqual(self.tags(self.green).get("asg-agent:rollout"), None, "nothing recorded")


if __name__ == "__main__":
    unittest.main()
