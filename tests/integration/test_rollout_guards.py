"""`asg-agent rollout` guards: what it must refuse, and how it ends a step it lost half-way."""
import time
import unittest

from test_rollout import RolloutCase


class RolloutGuards(RolloutCase):
    prefix = "guard"

    # -- helpers -------------------------------------------------------------------------
    def snapshot(self):
        """What a refusal must leave as it was: both groups' sizes, states and tags."""
        out = {}
        for g in (self.blue, self.green):
            d = self.asg_group(g)
            out[g] = {"min": d["MinSize"], "desired": d["DesiredCapacity"],
                      "states": self.states(g), "tags": self.tags(g)}
        return out

    def assert_refused(self, args, text):
        """`rollout ARGS` exits 3 saying text, and the groups are as they were."""
        before = self.snapshot()
        r = self.rollout(*args)
        self.assert_exit(r, 3)
        self.assertIn(text, r.stderr)
        self.assertEqual(self.snapshot(), before, f"a refused {args[0]} changed the groups")

    def fail_once(self, action):
        """The next request of action is refused as AWS would (no retry helps it)."""
        self.f.fault(target="aws", kind="status", service="autoscaling", action=action,
                     status=400, code="ValidationError", message=f"{action} refused by test",
                     count=1)

    def switched(self, *extra):
        """A one-step rollout to its end: green serves, blue's two instances in Standby."""
        self.fake_agents()
        r = self.start(*extra)
        self.assert_exit(r, 0)
        self.assertEqual(self.record().get("phase"), "switched", r.stdout)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])

    def assert_rolled_back(self):
        """blue serves again (InService, healthy), green at 0, the rollout over."""
        self.assertEqual(self.states(self.blue), ["InService", "InService"])
        elb = self.f.client("elbv2")
        healthy = {d["Target"]["Id"] for d in elb.describe_target_health(
            TargetGroupArn=self.tg)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"}
        blue_ids = {i["InstanceId"] for i in self.asg_group(self.blue)["Instances"]}
        self.assertTrue(blue_ids <= healthy, f"blue {blue_ids} not all in healthy {healthy}")
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        for g in (self.blue, self.green):
            self.assertEqual(self.record(g), {}, f"{g}: the rollout tag is gone")
        self.assertNotIn("asg-agent:rollout-alarms", self.tags(self.green))
        (h,) = self.history()
        self.assertEqual(h["outcome"], "rolled-back", h)

    def assert_finished(self):
        """blue at 0 with no instance left, green live, the rollout over."""
        self.assertEqual(self.asg_group(self.blue)["DesiredCapacity"], 0)
        for g in (self.blue, self.green):
            self.assertEqual(self.record(g), {}, f"{g}: the rollout tag is gone")
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 2)
        self.assertTrue(self.wait_for(lambda: not self.asg_group(self.blue)["Instances"], 10),
                        f"blue keeps {self.asg_group(self.blue)['Instances']}")
        self.assertEqual(self.history()[-1]["outcome"], "finished")

    # -- 1. --live/--idle that are not the recorded rollout's ------------------------------
    def test_finish_with_swapped_names_is_refused(self):
        # Once finish scaled the group it was told was live: the new one, to 0.
        self.switched()
        self.assert_refused(["finish", "--live", self.green, "--idle", self.blue],
                            "the rollout in progress is from")
        self.assert_refused(["rollback", "--live", self.green, "--idle", self.blue,
                             "--timeout", "60"], "the rollout in progress is from")

    def test_step_with_swapped_names_is_refused(self):
        # Once step ran the recorded rollout's next step whatever the names said.
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        self.assertEqual(self.record().get("phase"), "baked")
        self.assert_refused(["step", "--live", self.green, "--idle", self.blue, "--timeout",
                             "60"], "the rollout in progress is from")

    # -- 2. finish records phase=finishing first --------------------------------------------
    def finish_interrupted(self, action):
        self.switched()
        self.fail_once(action)
        r = self.rollout("finish")
        self.assertNotEqual(r.returncode, 0, f"finish with {action} failing\n{r.stdout}")
        self.assertEqual(self.record().get("phase"), "finishing",
                         f"the tag after a finish that failed at {action}")
        green = self.asg_group(self.green)["DesiredCapacity"]
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 3)
        self.assertIn("finishing", rb.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], green,
                         "the new group keeps its capacity")
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assert_exit(self.rollout("finish"), 0)
        self.assert_finished()

    def test_finish_interrupted_at_terminate_then_finish_again(self):
        self.finish_interrupted("TerminateInstanceInAutoScalingGroup")

    def test_finish_interrupted_at_delete_tags_then_finish_again(self):
        self.finish_interrupted("DeleteTags")

    def test_step_rerun_while_its_standby_drains_parks_no_second_share(self):
        # EnterStandby took effect but its answer was lost; the old instance drains for 30 s.
        self.f.standby_drain(30)
        self.addCleanup(self.f.standby_drain, 0)
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        self.assert_exit(self.rollout("step"), 0)  # the new group at 100 %; step 3 parks
        self.f.fault(target="aws", kind="truncate", service="autoscaling",
                     action="EnterStandby", count=1)
        r = self.rollout("step")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(self.states(self.blue), ["EnteringStandby", "InService"])
        again = self.rollout("step")
        self.assert_exit(again, 0)
        self.assertEqual(self.states(self.blue), ["EnteringStandby", "InService"],
                         "a second instance parked: the old group would serve with none")

    # -- 3. both groups behind the same target groups ---------------------------------------
    def refused_for_target_groups(self):
        self.fake_agents()
        r = self.start()
        self.assert_exit(r, 3)
        self.assertIn("target groups", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(self.green), {}, "no rollout recorded")
        self.assertEqual(self.record(self.blue), {}, "no rollout recorded")
        self.assertEqual(self.mutations(), [], "requests that change a group")

    def test_start_refused_when_idle_has_no_target_group(self):
        self.asg.detach_load_balancer_target_groups(AutoScalingGroupName=self.green,
                                                    TargetGroupARNs=[self.tg])
        self.assertEqual(self.asg_group(self.green)["TargetGroupARNs"], [])
        self.refused_for_target_groups()

    def test_start_refused_when_idle_has_another_target_group(self):
        elb = self.f.client("elbv2")
        vpc = elb.describe_target_groups(TargetGroupArns=[self.tg])["TargetGroups"][0]["VpcId"]
        other = elb.create_target_group(Name=f"other{self.n}", Protocol="HTTP", Port=80,
                                        VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        self.asg.detach_load_balancer_target_groups(AutoScalingGroupName=self.green,
                                                    TargetGroupARNs=[self.tg])
        self.asg.attach_load_balancer_target_groups(AutoScalingGroupName=self.green,
                                                    TargetGroupARNs=[other])
        self.refused_for_target_groups()

    # -- 3b. what a rollout could not read back or would take for its own ----------------------
    def refused_unchanged(self, r, status, text):
        self.assert_exit(r, status)
        self.assertIn(text, r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(self.green), {}, "no rollout recorded")
        self.assertEqual(self.record(self.blue), {}, "no rollout recorded")
        self.assertEqual(self.mutations(), [], "requests that change a group")

    def test_start_refused_with_a_live_instance_in_standby(self):
        # An operator parked it to look at it: finish would have terminated it.
        parked = self.asg_group(self.blue)["Instances"][0]["InstanceId"]
        self.asg.enter_standby(AutoScalingGroupName=self.blue, InstanceIds=[parked],
                               ShouldDecrementDesiredCapacity=True)
        self.fake_agents()
        self.refused_unchanged(self.start(), 3, f"live group {self.blue} has 1 instances in "
                               "Standby")
        self.assertEqual(self.states(self.blue), ["InService", "Standby"])

    def test_start_refused_for_a_version_or_steps_that_do_not_read_back(self):
        self.fake_agents()
        r = self.rollout("start", "--live", self.blue, "--idle", self.green, "--version",
                         "2.0 beta", "--sha256", "a" * 64, "--timeout", "60")
        self.refused_unchanged(r, 2, "a version, group name or --steps with a space cannot be "
                               "recorded")
        # strtol reads " 100" as 100: the steps pass their own check, not the tag's.
        r = self.rollout(*self.guarded("--steps", "50, 100"))
        self.refused_unchanged(r, 2, "'50, 100' do not read back")

    def test_start_refused_for_a_group_larger_than_a_rollout_reads(self):
        # Its steps would wait for 501 healthy instances among the 500 it reads.
        self.asg.update_auto_scaling_group(AutoScalingGroupName=self.blue, MaxSize=1000,
                                           DesiredCapacity=501)
        self.addCleanup(self.asg.update_auto_scaling_group, AutoScalingGroupName=self.blue,
                        DesiredCapacity=2)  # the class's fake scans every instance
        self.fake_agents()
        self.refused_unchanged(self.start(), 3, f"live group {self.blue} has 501 instances: a "
                               "rollout reads at most 500")
    # -- 4. a rollback that failed half-way goes on at the next run ----------------------------
    def test_failed_auto_rollback_continues_on_rerun_of_start(self):
        alarm = f"5xx{self.n}"
        cw = self.make_alarm(alarm)
        self.fake_agents()
        args = self.guarded("--bake", "20", "--alarm", alarm, "--auto")
        p = self.background(*args)
        self.wait_record("1/1", "baking")
        self.fail_once("UpdateAutoScalingGroup")
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx up")
        r = self.finish_background(p)
        self.assert_exit(r, 1)
        self.assertEqual(self.record().get("phase"), "rolling-back",
                         "the tag after a rollback that failed half-way")
        # The alarm clears: the rerun must still go back, never on to switched.
        cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet again")
        self.f.clear_faults()
        again = self.rollout(*args)
        self.assert_exit(again, 4)
        self.assert_rolled_back()

    def test_failed_rollback_continues_on_step(self):
        self.switched()
        self.fail_once("ExitStandby")
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 1)
        self.assertEqual(self.record().get("phase"), "rolling-back",
                         "the tag after a rollback that failed at ExitStandby")
        r = self.rollout("step", "--timeout", "60")
        self.assert_exit(r, 4)
        self.assert_rolled_back()

    def test_rollback_killed_between_the_two_copies_goes_on_back(self):
        # A rollback killed after writing its record to the new group only: the new
        # group's copy, written first, is the one read (no "several rollouts").
        self.switched()
        rec = self.tags(self.green)["asg-agent:rollout"].replace("phase=switched",
                                                                 "phase=rolling-back")
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": self.green, "ResourceType": "auto-scaling-group",
            "Key": "asg-agent:rollout", "Value": rec, "PropagateAtLaunch": False}])
        self.assertIn("phase=switched", self.tags(self.blue)["asg-agent:rollout"])
        r = self.rollout("step", "--timeout", "60")
        self.assert_exit(r, 4)
        self.assert_rolled_back()

    def test_damaged_tag_named_is_said_unreadable(self):
        self.switched()
        for g in (self.blue, self.green):
            self.asg.create_or_update_tags(Tags=[{
                "ResourceId": g, "ResourceType": "auto-scaling-group",
                "Key": "asg-agent:rollout", "Value": "2.0.0 live=x size=two",
                "PropagateAtLaunch": False}])
        for args in (["finish"], ["rollback"], ["step"]):
            r = self.rollout(*args, "--live", self.blue, "--idle", self.green)
            self.assert_exit(r, 1)
            self.assertIn("unreadable asg-agent:rollout tag", r.stderr)
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"], "nothing acted on")

    # -- 5. the old group's MinSize --------------------------------------------------------
    def min_size_two(self):
        self.asg.update_auto_scaling_group(AutoScalingGroupName=self.blue, MinSize=2)
        # The fake refuses what AWS refuses: Standby with a decrement below MinSize.
        iid = self.asg_group(self.blue)["Instances"][0]["InstanceId"]
        with self.assertRaises(Exception) as cm:
            self.asg.enter_standby(AutoScalingGroupName=self.blue, InstanceIds=[iid],
                                   ShouldDecrementDesiredCapacity=True)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationError")
        self.assertEqual(self.states(self.blue), ["InService", "InService"])

    def test_min_size_old_group_switch_then_rollback(self):
        self.min_size_two()
        self.switched()
        rb = self.rollout("rollback", "--timeout", "60")
        self.assert_exit(rb, 0)
        self.assertEqual(self.asg_group(self.blue)["MinSize"], 2, "blue's MinSize restored")
        self.assert_rolled_back()

    def test_min_size_old_group_switch_then_finish(self):
        self.min_size_two()
        self.switched()
        r = self.rollout("finish")
        self.assert_exit(r, 0)
        self.assert_finished()
        # The floor goes with the traffic: the next rollout back must not find it gone.
        self.assertEqual(self.asg_group(self.green)["MinSize"], 2, r.stdout)

    def test_min_size_restored_for_a_record_from_before_min(self):
        # A rollout begun by a version that did not record min=: the step that lowers
        # MinSize records it first, and the rollback puts it back.
        self.min_size_two()
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        old = " ".join(w for w in self.tags(self.green)["asg-agent:rollout"].split()
                       if not w.startswith("min="))
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": g, "ResourceType": "auto-scaling-group", "Key": "asg-agent:rollout",
            "Value": old, "PropagateAtLaunch": False} for g in (self.blue, self.green)])
        for _ in range(2):
            self.assert_exit(self.rollout("step"), 0)
        self.assertEqual(self.record()["step"], "3/4")
        self.assertEqual(self.record().get("min"), "2", "recorded before it was lowered")
        self.assertEqual(sorted(self.states(self.blue)), ["InService", "Standby"])
        self.assert_exit(self.rollout("rollback", "--timeout", "60"), 0)
        self.assertEqual(self.asg_group(self.blue)["MinSize"], 2, "blue's MinSize restored")

    def test_min_size_lowered_alone_keeps_a_scaling_in_between(self):
        # The step lowered MinSize with the desired capacity it had read: a scale-out of
        # the old group between that read and the update was undone (an instance of the
        # group that still takes the traffic terminated). Now MinSize goes alone.
        self.min_size_two()
        self.fake_agents()
        self.assert_exit(self.rollout(*self.guarded("--steps", "50,100")), 0)
        self.assert_exit(self.rollout("step"), 0)
        self.assertEqual(self.record()["step"], "2/4")
        self.f.fault(kind="delay", seconds=3, service="autoscaling",
                     action="UpdateAutoScalingGroup", count=1)
        p = self.background("step")

        def updating():
            q = self.f.control("GET", "/inflight")["requests"]
            return any(e.get("action") == "UpdateAutoScalingGroup" for e in q)
        self.assertTrue(self.wait_for(updating, 60), "the step's MinSize update")
        self.asg.set_desired_capacity(AutoScalingGroupName=self.blue, DesiredCapacity=3)
        r = self.finish_background(p)
        self.assert_exit(r, 0)
        self.assertEqual(self.record()["step"], "3/4")
        blue = self.asg_group(self.blue)
        self.assertEqual((blue["MinSize"], blue["DesiredCapacity"], self.states(self.blue)),
                         (1, 2, ["InService", "InService", "Standby"]),
                         "the scale-out to 3 kept, one of the 3 put in Standby")

    # -- 6. finish checks the new version once more -------------------------------------------
    def test_finish_refused_while_an_alarm_fires(self):
        alarm = f"5xx{self.n}"
        cw = self.make_alarm(alarm)
        self.switched("--alarm", alarm)
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx up")
        self.assert_refused(["finish"], "ALARM")

    def test_finish_forced_past_a_deleted_alarm(self):
        alarm = f"gone{self.n}"
        cw = self.make_alarm(alarm)
        self.switched("--alarm", alarm)
        cw.delete_alarms(AlarmNames=[alarm])
        r = self.rollout("finish")
        self.assert_exit(r, 1)
        self.assertIn("do not exist", r.stderr)
        r = self.rollout("finish", "--force")
        self.assert_exit(r, 0)
        self.assertIn("--force: the alarms and the new group's health not checked", r.stdout)
        self.assert_finished()

    def test_finish_refused_with_a_new_instance_unhealthy(self):
        self.switched()
        ids = [i["InstanceId"] for i in self.asg_group(self.green)["Instances"]]
        self.f.client("ec2").stop_instances(InstanceIds=ids[:1])
        elb = self.f.client("elbv2")

        def unhealthy():
            return any(d["Target"]["Id"] == ids[0] and d["TargetHealth"]["State"] != "healthy"
                       for d in elb.describe_target_health(
                           TargetGroupArn=self.tg)["TargetHealthDescriptions"])
        self.assertTrue(self.wait_for(unhealthy, 20), f"{ids[0]} stopped but healthy")
        self.assert_refused(["finish"], "healthy")

    def test_finish_after_the_new_group_scaled_in(self):
        # Its own scaling took the new group below the old one's size after the
        # switch: its capacity, all healthy, is what finish asks for.
        self.switched()
        self.asg.set_desired_capacity(AutoScalingGroupName=self.green, DesiredCapacity=1)
        self.assertTrue(self.wait_for(lambda: self.states(self.green) == ["InService"], 20),
                        f"green: {self.states(self.green)}")
        self.assert_exit(self.rollout("finish"), 0)
        self.assertEqual(self.asg_group(self.blue)["DesiredCapacity"], 0)
        self.assertEqual(self.record(self.green), {}, "the rollout is over")
        self.assertEqual(self.history()[-1]["outcome"], "finished")

    # -- 7. no other version's digest ------------------------------------------------------
    def test_start_without_digest_drops_a_stale_one(self):
        self.asg.create_or_update_tags(Tags=[{
            "ResourceId": self.green, "ResourceType": "auto-scaling-group",
            "Key": "asg-agent:sha256", "Value": "b" * 64, "PropagateAtLaunch": True}])
        self.fake_agents()
        r = self.rollout("start", "--live", self.blue, "--idle", self.green, "--version",
                         "7.0.0", "--timeout", "60")
        self.assert_exit(r, 0)
        tags = self.tags(self.green)
        self.assertEqual(tags.get("asg-agent:version"), "7.0.0")
        self.assertNotIn("asg-agent:sha256", tags, "another version's digest left")
        ec2 = self.f.client("ec2")
        for i in self.asg_group(self.green)["Instances"]:
            d = ec2.describe_instances(InstanceIds=[i["InstanceId"]])
            itags = {t["Key"]: t["Value"] for t in
                     d["Reservations"][0]["Instances"][0].get("Tags", [])}
            self.assertNotIn("asg-agent:sha256", itags, f"{i['InstanceId']} booted with it")

    # -- 8. the rollout tag fits in 256 characters ------------------------------------------
    def test_start_refused_when_the_tag_would_be_too_long(self):
        src = self.asg_group(self.blue)
        lt = src["LaunchTemplate"]
        names = []
        # The longest name Auto Scaling allows (255) for the live group, 100 for the idle one.
        for color, desired, length in (("blue", 1, 255), ("green", 0, 100)):
            name = (f"{color}{self.n}-" + "x" * 255)[:length]
            self.asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"],
                                "Version": "$Latest"},
                MinSize=0, MaxSize=10, DesiredCapacity=desired,
                VPCZoneIdentifier=src["VPCZoneIdentifier"], TargetGroupARNs=[self.tg])
            self.assertEqual(self.asg_group(name)["AutoScalingGroupName"], name)
            names.append(name)
        self.blue, self.green = names  # for fake_agents() and tearDown
        self.fake_agents()
        r = self.rollout("start", "--live", self.blue, "--idle", self.green, "--version",
                         "2.0.0-" + "r" * 20, "--sha256", "a" * 64, "--timeout", "30")
        self.assert_exit(r, 2)
        self.assertIn("too long", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.mutations(), [], "requests that change a group")

    def test_start_that_cannot_record_leaves_no_history_entry(self):
        # The 51st tag of the idle group, say: the record is refused after the history entry.
        self.f.fault(target="aws", kind="status", service="autoscaling",
                     action="CreateOrUpdateTags", body=r"Key=asg-agent:rollout(&|$)", status=400,
                     code="LimitExceeded", message="Number of tags exceeds the limit of 50",
                     count=-1)
        self.fake_agents()
        for _ in range(2):  # a CI job's retry too
            r = self.start()
            self.assert_exit(r, 1)
            self.assertIn("Number of tags exceeds the limit of 50", r.stderr)
        self.assertEqual([k for k in self.tags(self.green) if k.startswith("asg-agent:history:")],
                         [], "a rollout that never began listed as running")
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)

    def test_start_with_half_its_record_written_keeps_its_entry_and_resumes(self):
        # The old group's copy refused: the new group's, the one read back, is written.
        self.f.fault(target="aws", kind="status", service="autoscaling",
                     action="CreateOrUpdateTags", status=400, code="LimitExceeded",
                     message="Number of tags exceeds the limit of 50", count=1,
                     body=rf"(?s)(?=.*ResourceId={self.blue}(&|$))"
                          r"(?=.*Key=asg-agent:rollout(&|$))")
        self.fake_agents()
        r = self.start()
        self.assert_exit(r, 1)
        self.assertEqual((self.record(self.blue), self.record().get("phase")), ({}, "scaling"))
        entries = [k for k in self.tags(self.green) if k.startswith("asg-agent:history:")]
        self.assertEqual(len(entries), 1, "the entry of a rollout that a rerun resumes")
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual([k for k in self.tags(self.green) if k.startswith("asg-agent:history:")],
                         entries)
        self.assertEqual(self.record(self.blue).get("phase"), "switched")

    # -- 9. no start into an alarm ----------------------------------------------------------
    def test_start_refused_while_an_alarm_fires(self):
        alarm = f"5xx{self.n}"
        cw = self.make_alarm(alarm)
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="already bad")
        r = self.rollout(*self.guarded("--alarm", alarm))
        self.assert_exit(r, 3)
        self.assertIn("ALARM", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(), {}, "no rollout recorded")
        self.assertEqual(self.mutations(), [], "requests that change a group")


if __name__ == "__main__":
    unittest.main()
