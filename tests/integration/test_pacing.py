"""Adaptive pacing of throttled AWS buckets ([aws] retry_mode, agent/pace.c) and the calls a
boot no longer sends: what the fleet's shared Auto Scaling quota sees of one agent."""
import re
import time

from bootlib import http_get
from fakecase import FakeAWSCase


class Pacing(FakeAWSCase):
    prefix = "pace"

    def scale_in(self, a, w):
        """Scale the group to 0: the agent drains, CONTINUEs its terminate hook and exits 0."""
        self.f.client("autoscaling").set_desired_capacity(AutoScalingGroupName=self.group,
                                                         DesiredCapacity=0)
        self.assertEqual(a.wait_exit(40), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())

    def autoscaling(self, action=None):
        return self.f.requests(target="aws", service="autoscaling", action=action)

    def test_throttling_holds_the_bucket_and_status_shows_what_was_learned(self):
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", count=3)
        a = self.start()
        self.assert_serving(a, w)
        reqs = self.autoscaling()
        throttled = [r for r in reqs if r.get("status") == 400]
        self.assertEqual(len(throttled), 3, reqs)
        # No request of the bucket leaves during a hold: at least PACE_FIRST x PACE_FLOOR
        # (1.4 s) passes between a throttling answer and the bucket's next request (less
        # the proxy's own scheduling, which stamps the answer after sending it).
        for r in throttled:
            after = [q for q in reqs if q["seq"] > r["seq"]]
            self.assertTrue(after, reqs)
            gap = (after[0]["time"] - after[0]["duration"]) - r["time"]
            self.assertGreaterEqual(gap, 1.2, f"{r['action']} then {after[0]['action']}: "
                                    f"{gap:.3f} s apart")
        st = a.status_json()
        pace = st["api_pacing"].get("autoscaling")
        self.assertIsNotNone(pace, st["api_pacing"])
        self.assertEqual(pace["throttles"], 3, pace)
        self.assertGreaterEqual(pace["held"], 2.8, pace)
        # Successes grow the rate back along the CUBIC curve: a few seconds after the
        # last throttling answer the bucket is free again (rate 0), else a learned rate.
        self.assertTrue(pace["rate"] == 0 or 0.1 <= pace["rate"] < 20, pace)
        text = a.status().stdout
        self.assertRegex(text, r"AWS API pacing \(throttled or held buckets\):\n  autoscaling +3 "
                         r"throttling answers, held calls back \d+\.\d s, "
                         r"(learned rate [\d.]+/s|free again)\n")
        code, page = http_get(self.health_port, "/metrics")
        self.assertEqual(code, 200)
        m = re.search(r'\nasg_agent_aws_held_seconds_total\{service="autoscaling"\} ([\d.]+)\n',
                      page)
        self.assertIsNotNone(m, page)
        self.assertGreaterEqual(float(m.group(1)), 2.8, page)
        self.assertRegex(page, r'asg_agent_aws_pacing_rate\{service="autoscaling"\} [\d.]+\n')

    def test_standard_mode_backs_off_per_call(self):
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", count=2)
        a = self.start("[aws]\nretry_mode = standard\n")
        self.assert_serving(a, w)
        log = a.log_text()
        self.assertEqual(len(re.findall(r"debug: retry: back-off \d+\.\d\d s before retry \d "
                                        r"\(throttled\)\n", log)), 2, log)
        self.assertNotIn(": holding ", log)
        st = a.status_json()
        self.assertEqual(st["api_pacing"], {}, "standard mode learns nothing")
        self.assertNotIn("AWS API pacing", a.status().stdout)

    def test_an_unthrottled_boot_shows_no_pacing(self):
        w, _ = self.world()
        a = self.start()
        self.assert_serving(a, w)
        self.assertEqual(a.status_json()["api_pacing"], {})
        self.assertNotIn("AWS API pacing", a.status().stdout)

    def test_scale_in_uses_the_hooks_the_boot_read(self):
        # One DescribeLifecycleHooks per boot answers for both hooks: the scale-in that
        # follows does not ask again.
        w, _ = self.world(terminate_hook=True)
        a = self.start("[lifecycle]\ndrain = 1\n")
        self.assert_serving(a, w)
        self.scale_in(a, w)
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1,
                         [r["action"] for r in self.autoscaling()])
        self.assertRegex(a.log_text(), r"terminate hook \S+-terminate: from the hooks read "
                         r"\d+ s ago")

    def test_no_heartbeat_needed_while_continue_is_queued(self):
        # CONTINUE throttled for a while (each try gives up after api_timeout = 1 s and
        # the running loop asks again): the heartbeats due meanwhile buy nothing, so one
        # is skipped, never two in a row, and the hook still gets one in time.
        w, _ = self.world(heartbeat_timeout=30)
        self.f.fault(kind="throttle", service="autoscaling", action="CompleteLifecycleAction",
                     for_seconds=16)
        a = self.start("[aws]\napi_timeout = 1\n[lifecycle]\nheartbeat = 5\n")
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        self.assertTrue(self.wait_for(lambda: self.lifecycle(w), 60), self.f.lifecycle())
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"])
        log = a.log_text()
        beats = re.findall(r"lifecycle heartbeat (sent for hook|for \S+ skipped: a result is "
                           r"queued)", log)
        self.assertIn("sent for hook", beats[:1], log)       # the short hook's first, at once
        skipped = [i for i, b in enumerate(beats) if b != "sent for hook"]
        self.assertTrue(skipped, log)
        for i in skipped:
            self.assertNotEqual(beats[i - 1:i], [beats[i]], f"two skipped in a row: {beats}")
        self.assertGreaterEqual(len(self.lifecycle(w, "heartbeat")), 2, self.f.lifecycle())

    def announced(self, value, extra="[aws]\nautoscaling_burst = 0\nautoscaling_rate = 2\n"):
        """A boot whose group announced a scale-out (rollout's tag asg-agent:scale-out),
        the launch hook named by tag: CONTINUE is its only Auto Scaling call."""
        w, _ = self.world(tags={"asg-agent:launch-hook": f"{self.group}-launch 300",
                                "asg-agent:scale-out": value})
        t0 = time.time()
        a = self.start(extra)
        self.assert_serving(a, w)
        return a, t0

    def test_an_announced_scale_out_spreads_the_first_call(self):
        # 12 instances, a bucket of 0 refilled at 2 a second: each instance's CONTINUE
        # takes its turn somewhere in the 6 s the bucket needs for all of them.
        a, t0 = self.announced(f"12 {int(time.time())}")
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"^12 instances announced \d+ s before; first "
                         r"Auto Scaling call spread over 6\.0 s$")
        pace = st["api_pacing"].get("autoscaling")
        self.assertIsNotNone(pace, st["api_pacing"])
        self.assertEqual(pace["throttles"], 0, pace)
        self.assertGreater(pace["held"], 0, pace)
        self.assertLessEqual(pace["held"], 6.2, pace)
        reqs = self.autoscaling()
        self.assertEqual([r["action"] for r in reqs], ["CompleteLifecycleAction"], reqs)
        # The wait sits between serving and the CONTINUE (the boot's own work took no
        # credit: a burst of 0 gives none).
        m = st["milestones"]
        gap = m["continue_sent"] - m["serving"]
        self.assertGreaterEqual(gap, pace["held"] - 0.05, f"serving to CONTINUE {gap:.2f} s, "
                                f"held {pace['held']:.2f} s")
        self.assertLess(gap, pace["held"] + 1.0, f"serving to CONTINUE {gap:.2f} s, "
                        f"held {pace['held']:.2f} s")
        self.assertIn("scale-out of 12 instances: first Auto Scaling call spread over 6.0 s",
                      a.log_text())
        text = a.status().stdout
        self.assertRegex(text, r"\n  scale-out +12 instances announced")
        self.assertRegex(text, r"\n  autoscaling +0 throttling answers, held calls back "
                         r"\d+\.\d s, free again\n")

    def test_an_announced_scale_out_spreads_describe_lifecycle_hooks(self):
        # No hook named: two Auto Scaling calls a boot, so 6 instances need 6 s of a
        # bucket refilled at 2 a second, and the first, DescribeLifecycleHooks, waits
        # its turn from the boot's start.
        w, _ = self.world(tags={"asg-agent:scale-out": f"6 {int(time.time())}"})
        a = self.start("[aws]\nautoscaling_burst = 0\nautoscaling_rate = 2\n")
        self.assert_serving(a, w)
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"^6 instances announced \d+ s before; first "
                         r"Auto Scaling call spread over 6\.0 s$")
        held = st["api_pacing"]["autoscaling"]["held"]
        self.assertGreater(held, 0, st["api_pacing"])
        reqs = self.autoscaling()
        self.assertEqual([r["action"] for r in reqs],
                         ["DescribeLifecycleHooks", "CompleteLifecycleAction"], reqs)
        sent = reqs[0]["time"] - reqs[0]["duration"]
        start = st["milestones"]["agent_start"]
        self.assertGreaterEqual(sent - start, held - 0.05, f"DescribeLifecycleHooks sent "
                                f"{sent - start:.2f} s after the agent's start, held {held:.2f} s")

    def test_a_burst_serves_a_share_of_the_fleet_at_the_start(self):
        # A bucket of 4 refilled at 2 a second: 12 instances need 4 s of it, and half the
        # burst (2 calls, a sixth of the fleet) goes at the spread's start; the other half
        # is the credit for the boots' own work. Status says how the turns were drawn.
        a, _ = self.announced(f"12 {int(time.time())}",
                              "[aws]\nautoscaling_burst = 4\nautoscaling_rate = 2\n")
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"^12 instances announced \d+ s before; first "
                         r"Auto Scaling call spread over 4\.0 s, 17 % of the fleet at its start$")
        held = st["api_pacing"].get("autoscaling", {}).get("held", 0)
        self.assertLessEqual(held, 4.2, st["api_pacing"])
        reqs = self.autoscaling()
        self.assertEqual([r["action"] for r in reqs], ["CompleteLifecycleAction"], reqs)
        self.assertRegex(a.status().stdout, r"\n  scale-out +12 instances announced .* 17 % of "
                         r"the fleet at its start\n")

    def test_a_front_share_under_one_percent_keeps_its_digits(self):
        # 1,000 instances and a burst of 4: its half is 0.2 % of the fleet, not "0 %".
        a, _ = self.announced(f"1000 {int(time.time())}",
                              "[agent]\ndeadline = 10\n[aws]\nautoscaling_burst = 4\n"
                              "autoscaling_rate = 2\n")
        self.assertRegex(a.status_json().get("scale_out") or "",
                         r"spread over 5\.0 s, 0\.2 % of the fleet at its start$")

    def test_a_turn_is_at_most_half_the_boot_deadline(self):
        # 100 instances at 1 a second need 100 s; a boot allowed 10 s waits at most 5.
        a, _ = self.announced(f"100 {int(time.time())}",
                              "[agent]\ndeadline = 10\n[aws]\nautoscaling_burst = 0\n"
                              "autoscaling_rate = 1\n")
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"spread over 5\.0 s$")
        held = st["api_pacing"].get("autoscaling", {}).get("held", 0)
        self.assertLessEqual(held, 5.2, st["api_pacing"])

    def test_a_turn_is_at_most_half_a_tagged_hooks_timeout(self):
        # The hook's tag says it times out after 30 s: the turn leaves it half.
        w, _ = self.world(heartbeat_timeout=30, tags={
            "asg-agent:launch-hook": f"{self.group}-launch 30",
            "asg-agent:scale-out": f"100 {int(time.time())}"})
        a = self.start("[aws]\nautoscaling_burst = 0\nautoscaling_rate = 1\n")
        self.assert_serving(a, w)
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"spread over 15\.0 s$")
        held = st["api_pacing"].get("autoscaling", {}).get("held", 0)
        self.assertLessEqual(held, 15.2, st["api_pacing"])
        # A hook this short gets a heartbeat as soon as it is known, before the download:
        # the heartbeat waits for the turn in the ticks, so the boot goes on to serving and
        # the turn is waited for between serving and the CONTINUE (queued by then, so the
        # heartbeat due at the turn is skipped), not inside a heartbeat holding the boot.
        reqs = self.autoscaling()
        actions = [r["action"] for r in reqs]
        if actions == ["RecordLifecycleActionHeartbeat", "CompleteLifecycleAction"]:
            # The draw put the turn inside the boot's own fraction of a second (a few in a
            # hundred under load): the heartbeat due went then, with the boot still running,
            # and the CONTINUE, its turn past, was not held at all.
            self.assertLess(held, 0.05, f"turn taken by the heartbeat, yet the CONTINUE "
                            f"was held {held:.2f} s: {st['api_pacing']}")
            return
        self.assertEqual(actions, ["CompleteLifecycleAction"], reqs)
        m = st["milestones"]
        gap = m["continue_sent"] - m["serving"]
        self.assertGreaterEqual(gap, held - 0.05, f"serving to CONTINUE {gap:.2f} s, "
                                f"held {held:.2f} s")

    def test_a_warm_pool_instance_takes_its_turn_once(self):
        # Launched into the warm pool by an announced scale-out: the warm-up's CONTINUE
        # takes its turn. Leaving the pool within the announcement's 10 minutes, the
        # second boot's CONTINUE does not wait again, and status no longer claims a spread.
        self.world(tags={"asg-agent:launch-hook": f"{self.group}-launch 300",
                         "asg-agent:scale-out": f"12 {int(time.time())}"})
        self.f.set_imds(lifecycle_state="Warmed:Running")
        a = self.start("[aws]\nautoscaling_burst = 0\nautoscaling_rate = 2\n")
        self.assertTrue(self.wait_for(lambda: (a.status_json() or {}).get("phase") == "warmed",
                                      30), a.log_text())
        st = a.status_json()
        self.assertRegex(st.get("scale_out") or "", r"spread over 6\.0 s$")
        held = st["api_pacing"]["autoscaling"]["held"]
        self.assertGreater(held, 0, st["api_pacing"])
        self.f.set_imds(lifecycle_state=None)   # leaves the pool: target InService
        self.assertTrue(self.wait_for(lambda: "serving 1.0.0" in a.log_text(), 30),
                        a.log_text())
        st = a.status_json()
        self.assertIsNone(st.get("scale_out"), st)
        self.assertAlmostEqual(st["api_pacing"]["autoscaling"]["held"], held, delta=0.01,
                               msg=st["api_pacing"])
        log = a.log_text()
        self.assertEqual(log.count("to this instance's turn in the announced scale-out"), 1, log)

    def test_an_old_announcement_spreads_nothing(self):
        # Announced 11 minutes ago: a later scale-out (a scaling policy's) launched this one.
        a, _ = self.announced(f"12 {int(time.time()) - 660}")
        st = a.status_json()
        self.assertIsNone(st.get("scale_out"), st)
        self.assertEqual(st["api_pacing"], {})
        self.assertNotIn("spread over", a.log_text())

    def test_an_unreadable_announcement_is_logged_and_ignored(self):
        a, _ = self.announced("twelve now")
        st = a.status_json()
        self.assertIsNone(st.get("scale_out"), st)
        self.assertEqual(st["api_pacing"], {})
        self.assertIn("tag asg-agent:scale-out = 'twelve now' is not 'COUNT UNIXTIME': ignored",
                      a.log_text())

    def test_standard_mode_does_not_spread(self):
        a, _ = self.announced(f"12 {int(time.time())}",
                              "[aws]\nautoscaling_burst = 0\nautoscaling_rate = 2\n"
                              "retry_mode = standard\n")
        st = a.status_json()
        self.assertIsNone(st.get("scale_out"), st)
        self.assertEqual(st["api_pacing"], {})

    def hook_tags(self, launch, terminate):
        return {"asg-agent:launch-hook": launch, "asg-agent:terminate-hook": terminate}

    def test_hooks_named_by_tags_need_no_describe(self):
        # The hooks' tags (what rollout start and publish --tag-group write), copied to the
        # instance at launch: a boot and the scale-in after it make no DescribeLifecycleHooks.
        w, _ = self.world(terminate_hook=True, tags=self.hook_tags(
            f"{self.group}-launch 300", f"{self.group}-terminate 300"))
        a = self.start("[lifecycle]\ndrain = 1\n")
        self.assert_serving(a, w)
        self.assertEqual(self.lifecycle(w)[0]["hook"], f"{self.group}-launch")
        self.scale_in(a, w)
        self.assertEqual(self.autoscaling("DescribeLifecycleHooks"), [],
                         [r["action"] for r in self.autoscaling()])
        self.assertRegex(a.log_text(), r"launch hook \S+-launch: from tag asg-agent:launch-hook")

    def test_stale_hook_tags_fall_back_to_describe(self):
        # Tags older than a rename of both hooks (read from IMDS here): the CONTINUE finds
        # no action under the old name, one DescribeLifecycleHooks gives the new names, and
        # that answer also serves the scale-in.
        w, _ = self.world(terminate_hook=True, instance_tags_in_imds=True,
                          tags=self.hook_tags("old-launch 300", "old-terminate 300"))
        a = self.start("[lifecycle]\ndrain = 1\n")
        self.assert_serving(a, w)
        self.assertEqual(self.lifecycle(w)[0]["hook"], f"{self.group}-launch")
        self.assertIn(f"launch hook old-launch, named by tag asg-agent:launch-hook, is not the "
                      f"group's: it is {self.group}-launch", a.log_text())
        self.scale_in(a, w)
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1,
                         [r["action"] for r in self.autoscaling()])
        completes = [r.get("status") for r in self.autoscaling("CompleteLifecycleAction")]
        self.assertEqual(completes, [400, 200, 200], "old name refused, then both hooks")

    def test_stale_launch_tag_found_by_the_first_heartbeat(self):
        # A short hook gets a heartbeat at once; under the tag's old name it finds no
        # action, so that heartbeat, not the CONTINUE, asks DescribeLifecycleHooks, and
        # the heartbeats and the CONTINUE go to the hook's real name.
        w, _ = self.world(heartbeat_timeout=60, tags=self.hook_tags("old-launch 60",
                                                                     "old-terminate 60"))
        a = self.start()
        self.assert_serving(a, w)
        self.assertIn(f"launch hook old-launch, named by tag asg-agent:launch-hook, is not the "
                      f"group's: it is {self.group}-launch", a.log_text())
        beats = [r.get("status") for r in self.autoscaling("RecordLifecycleActionHeartbeat")]
        self.assertEqual(beats[:1], [400], "the first heartbeat, under the old name")
        self.assertEqual([r.get("status") for r in self.autoscaling("CompleteLifecycleAction")],
                         [200], "the CONTINUE went to the real name at once")
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1)

    def test_stale_terminate_tag_falls_back_at_scale_in(self):
        # The launch tag is right, the terminate tag older than a rename: the boot asks
        # nothing; the scale-in's CONTINUE is refused under the old name, one
        # DescribeLifecycleHooks finds the real one, which gets the CONTINUE.
        w, _ = self.world(terminate_hook=True, tags=self.hook_tags(
            f"{self.group}-launch 300", "old-terminate 300"))
        a = self.start("[lifecycle]\ndrain = 1\n")
        self.assert_serving(a, w)
        self.assertEqual(self.autoscaling("DescribeLifecycleHooks"), [])
        self.scale_in(a, w)
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1)
        # The wait for the action (the load balancer's drain) meets the old name first.
        beats = [r.get("status") for r in self.autoscaling("RecordLifecycleActionHeartbeat")]
        self.assertEqual(beats, [400, 200], "old terminate name, real one")
        completes = [r.get("status") for r in self.autoscaling("CompleteLifecycleAction")]
        self.assertEqual(completes, [200, 200], "launch, the real terminate hook")

    def scale_in_with_deleted_terminate_hook(self, tag, drain):
        """The group lost its terminate hook but kept the tag: one refused heartbeat, one
        DescribeLifecycleHooks that finds no terminate hook, and the agent is done at once
        rather than asking for an action that never comes."""
        w, _ = self.world(tags=self.hook_tags(f"{self.group}-launch 300", tag))
        a = self.start(f"[lifecycle]\ndrain = {drain}\n")
        self.assert_serving(a, w)
        self.f.client("autoscaling").set_desired_capacity(AutoScalingGroupName=self.group,
                                                         DesiredCapacity=0)
        self.assertEqual(a.wait_exit(30), 0, a.log_text())
        self.assertEqual(a.status_json()["lifecycle"], "no terminate hook on the group")
        self.assertEqual([r.get("status") for r in
                          self.autoscaling("RecordLifecycleActionHeartbeat")], [400])
        self.assertEqual([r.get("status") for r in self.autoscaling("CompleteLifecycleAction")],
                         [200], "the launch hook's alone")
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1)

    def test_tag_of_a_deleted_terminate_hook(self):
        # The heartbeat that meets it is the wait for the action, after the drain.
        self.scale_in_with_deleted_terminate_hook("gone 300", 1)

    def test_tag_of_a_deleted_terminate_hook_found_during_the_drain(self):
        # A short timeout in the tag: the drain's first heartbeat meets the missing hook. The
        # agent beat on for a hook it knew was gone, then waited an hour with the app serving.
        self.scale_in_with_deleted_terminate_hook("gone 60", 3)

    def test_unreadable_hook_tag_is_ignored(self):
        w, _ = self.world(tags={"asg-agent:launch-hook": "launch;reboot 300"})
        a = self.start()
        self.assert_serving(a, w)
        self.assertIn("tag asg-agent:launch-hook = 'launch;reboot 300' is not 'NAME TIMEOUT': "
                      "asking DescribeLifecycleHooks", a.log_text())
        self.assertEqual(len(self.autoscaling("DescribeLifecycleHooks")), 1)
