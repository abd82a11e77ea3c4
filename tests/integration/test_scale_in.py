"""The scale-in: drain, heartbeats, the terminate hook through the load balancer's
deregistration delay (apart from test_life.py, so that both run side by side)."""
import time
import unittest

from bootlib import http_get
from test_life import LifeCase, LoadBalancer


class ScaleIn(LifeCase):
    def scale_in(self):
        """The group scaled to 0, as a scale-in does; returns when it was asked."""
        t0 = time.time()
        self.f.client("autoscaling").set_desired_capacity(AutoScalingGroupName=self.group,
                                                         DesiredCapacity=0)
        return t0

    def ends(self, w, hook):
        """How the fake saw hook's action for w's instance end: completed or timed out."""
        return [(e["kind"], e.get("result")) for e in self.f.lifecycle()
                if e.get("instance_id") == w.instance_id and e.get("hook") == hook
                and e.get("kind") in ("timeout", "complete")]

    def test_scale_in_drains_without_dropping_requests(self):
        w, a = self.boot("[lifecycle]\ndrain = 2\n", terminate_hook=True)
        lb = LoadBalancer(self.health_port, self.app_port)
        try:
            self.wait_or_fail(lambda: lb.ok >= 10, what="traffic through the load balancer")
            self.f.client("autoscaling").set_desired_capacity(
                AutoScalingGroupName=self.group, DesiredCapacity=0)
            self.assertEqual(a.wait_exit(40), 0, a.log_text())
        finally:
            lb.close()
        self.assertEqual(lb.failures, [], "no request sent to the target may fail")
        self.assertGreater(lb.ok, 10)
        self.assertIsNotNone(lb.first_503, "the endpoint turned 503 before the app stopped")
        # The app served until it was stopped, at least drain seconds after the 503.
        st = a.status_json()
        self.assertEqual(st["phase"], "stopped")
        self.assertEqual(st["target_state"], "Terminated")
        drain = next(s for s in st["timeline"] if s["step"] == "drain")
        self.assertGreaterEqual(drain["seconds"], 2.0)
        self.assertGreaterEqual(drain["start"] + 2.0, lb.first_503 - 1.0)
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"])
        self.assertEqual(http_get(self.app_port, "/health")[0], None, "app stopped")
        self.wait_or_fail(lambda: not self.f.ec2_instance_running(w.instance_id),
                      what="the instance to terminate")

    def test_long_drain_sends_heartbeats(self):
        w, a = self.boot("[lifecycle]\ndrain = 6\nheartbeat = 5\n", terminate_hook=True)
        self.scale_in()
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "draining", 20,
                          what="the drain to start")
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 503)
        self.assertEqual(http_get(self.app_port, "/health")[0], 200, "app runs while draining")
        self.assertIn("s left before the app is stopped", a.status().stdout)
        self.assertEqual(a.wait_exit(40), 0, a.log_text())
        beats = self.lifecycle(w, "heartbeat", f"{self.group}-terminate")
        self.assertGreaterEqual(len(beats), 2, self.f.lifecycle())
        self.assertEqual(len(self.lifecycle(w, "complete", f"{self.group}-terminate")), 1)

    def test_terminate_action_registered_after_a_minute_is_completed(self):
        """The agent gave up on the terminate action 60 s after the drain, so with a
        deregistration delay over a minute (AWS's default is 300 s) every scale-in
        waited out the hook's timeout (review, session 6)."""
        w, a = self.boot("[lifecycle]\ndrain = 2\n", terminate_hook=True,
                         heartbeat_timeout=300)
        self.not_pending_for(w, 66)
        t0 = self.scale_in()
        self.wait_or_fail(lambda: "waiting for its action" in
                          (a.status_json() or {}).get("lifecycle", ""), timeout=30,
                          what="status to say the agent waits for the terminate action")
        self.assertEqual(a.wait_exit(120), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"],
                         f"exited after {time.time() - t0:.0f} s: {a.status_json()['lifecycle']}")
        self.assertGreaterEqual(done[0]["time"], t0 + 66)
        # The wait is heartbeats now, then one CONTINUE: pauses doubling up to 30 s make
        # about 9 calls in 66 s, where 1-2 s pauses made 60.
        calls = [q for q in self.f.requests(target="aws")
                 if q.get("action") in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")]
        self.assertLess(len(calls), 20, "the agent asks less and less often")

    def test_a_told_deregistration_delay_is_waited_out_before_asking(self):
        """The group's tag asg-agent:deregistration-delay (rollout writes it) says when
        AWS registers the terminate action at the latest: after one ask at the drain's
        end (a target without connections is let go at once), the agent asks again at
        the hook's pace (a third of its timeout), then closely from just before the
        delay's end; not every 30 s through it (about 14 calls an instance at the
        default 300 s, more than the account's Auto Scaling bucket refills at a
        scale-in of a few hundred). The hook named by tag: "no action" before the
        delay's end is no reason to ask DescribeLifecycleHooks for a rename."""
        self.told_delay_waited_out(300)

    def test_a_told_delay_is_waited_out_with_a_short_hook_timeout_too(self):
        """The same with a hook timeout of 90 s: the drain's first heartbeat (at once, for
        a hook this short) meets no action either, which is no reason to ask for a
        rename."""
        self.told_delay_waited_out(90, early=2)

    def told_delay_waited_out(self, timeout, early=1):
        w, a = self.boot("[lifecycle]\ndrain = 2\npoll = 1\n", terminate_hook=True,
                         heartbeat_timeout=timeout,
                         tags={"asg-agent:deregistration-delay": "20",
                               "asg-agent:terminate-hook": f"{self.group}-terminate {timeout}"})
        self.not_pending_for(w, 20)
        self.f.clear_requests()     # the boot's CONTINUE
        t0 = self.scale_in()
        self.wait_or_fail(lambda: "expected by" in
                          (a.status_json() or {}).get("lifecycle", ""), timeout=15,
                          what="status to say when the action is expected")
        self.assertRegex(a.status_json()["lifecycle"], r"waiting for its action, expected by "
                         r"\d\d:\d\d:\d\d UTC \(the load balancers' deregistration delay, 20 s, "
                         r"from tag asg-agent:deregistration-delay\); the app serves")
        self.assertEqual(http_get(self.app_port, "/health")[0], 200, "the app serves meanwhile")
        self.assertEqual(a.wait_exit(90), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())
        self.assertGreaterEqual(done[0]["time"], t0 + 20)
        aws = self.f.requests(target="aws")
        calls = [q for q in aws
                 if q.get("action") in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")]
        sent = [round(q["time"] - q["duration"] - t0, 2) for q in calls]
        # One ask after the drain (2-3 s); the next from 2 s before the delay's end as
        # the agent saw it (a poll late at most: 18-19 s), pauses doubling from 1 s, then
        # the CONTINUE. Asked every 30 s at most, the drain's end to 16 s took 4.
        self.assertEqual(len([x for x in sent if x < 17.5]), early, f"calls sent at {sent} s")
        self.assertLessEqual(len(calls), 7, f"calls sent at {sent} s after the scale-in")
        self.assertEqual([q for q in aws if q.get("action") == "DescribeLifecycleHooks"], [],
                         f"calls sent at {sent} s after the scale-in")

    def test_an_early_action_is_found_within_the_hooks_timeout(self):
        """The tag is the longest the action can take: a target the load balancer lets
        go at once (no connection left), or a delay lowered since the instance's launch,
        gives it sooner. Asked for once a third of the hook's timeout, it is found and
        completed before it times out, even when the tag's delay is longer than that."""
        self.early_action_found("", 120)

    def test_an_early_action_is_found_with_the_hook_named_in_the_configuration(self):
        """packaging/aws names the hooks in the configuration: the hook's timeout, which
        the boot's DescribeLifecycleHooks read, still paces the asks. Paced by the delay
        alone (a quarter of 240 s), the action timed out at 30 s, the app still up."""
        self.early_action_found(f"terminate_hook = {self.group}-terminate\n", 240)

    def early_action_found(self, extra, delay):
        """A 30 s terminate hook whose action comes 6 s after the scale-in, the tag telling
        a delay of delay s: CONTINUE within the hook's timeout."""
        w, a = self.boot(f"[lifecycle]\ndrain = 2\npoll = 1\n{extra}", terminate_hook=True,
                         heartbeat_timeout=30,
                         tags={"asg-agent:deregistration-delay": str(delay)})
        self.not_pending_for(w, 6)
        t0 = self.scale_in()
        self.assertEqual(a.wait_exit(60), 0, a.log_text())
        hook = f"{self.group}-terminate"
        self.assertEqual(self.ends(w, hook), [("complete", "CONTINUE")], self.f.lifecycle())
        self.assertLess(time.time() - t0, 30, "found within a third of the timeout or so")

    def test_unreadable_hooks_at_scale_in_are_not_called_none(self):
        """The launch hook named in the configuration, no hook tags: the scale-in asks
        DescribeLifecycleHooks, and a role that may not must not read as a group
        without a terminate hook (the hook then waits out its timeout)."""
        w, a = self.boot(f"[lifecycle]\ndrain = 1\nlaunch_hook = {self.group}-launch\n",
                         terminate_hook=True)
        self.f.fault(kind="status", status=403, code="AccessDenied",
                     message="not authorized to perform: autoscaling:DescribeLifecycleHooks",
                     action="DescribeLifecycleHooks")
        self.scale_in()
        self.assertEqual(a.wait_exit(60), 0, a.log_text())
        self.assertIn("terminate hook not known: the group's lifecycle hooks could not be read",
                      a.status_json()["lifecycle"])

    def test_standby_then_terminated_does_not_wait_for_a_delay(self):
        """A parked instance (rollout finish terminates the old group's Standby
        instances) left the load balancer when it entered Standby: its terminate action
        comes at once, whatever the tag says."""
        w, a = self.boot("[lifecycle]\ndrain = 2\npoll = 1\n", terminate_hook=True,
                         heartbeat_timeout=30,
                         tags={"asg-agent:deregistration-delay": "60"})
        asg = self.f.client("autoscaling")
        asg.enter_standby(AutoScalingGroupName=self.group, InstanceIds=[w.instance_id],
                          ShouldDecrementDesiredCapacity=True)
        self.wait_or_fail(lambda: (a.status_json() or {}).get("target_state") == "Standby",
                          what="the agent to see Standby")
        t0 = time.time()
        asg.terminate_instance_in_auto_scaling_group(InstanceId=w.instance_id,
                                                     ShouldDecrementDesiredCapacity=True)
        self.assertEqual(a.wait_exit(40), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())
        self.assertLess(done[0]["time"] - t0, 15, "no wait for a deregistration delay")
        self.assertNotIn("expected by", a.log_text())

    def test_terminate_action_completed_after_a_minute_without_heartbeats(self):
        """A role without autoscaling:RecordLifecycleActionHeartbeat: the wait for the
        action cannot be made with heartbeats, so the app stops after the drain and the
        CONTINUE itself is asked for through the deregistration delay, not for a minute."""
        w, a = self.boot("[lifecycle]\ndrain = 2\n", terminate_hook=True,
                         heartbeat_timeout=300)
        self.f.fault(kind="status", status=400, code="AccessDenied",
                     message="not authorized to perform: autoscaling:RecordLifecycleActionHeartbeat",
                     action="RecordLifecycleActionHeartbeat")
        self.not_pending_for(w, 100)
        t0 = self.scale_in()
        self.wait_or_fail(lambda: http_get(self.app_port, "/health")[0] is None, timeout=30,
                          what="the app stopped after the drain")
        self.assertEqual(a.wait_exit(150), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"],
                         f"exited after {time.time() - t0:.0f} s: {a.status_json()['lifecycle']}")
        # A minute's budget, its last pause up to 30 s, would have ended by 95 s.
        self.assertGreaterEqual(done[0]["time"], t0 + 100)

    def test_app_serves_through_the_load_balancers_deregistration_delay(self):
        """AWS registers the terminate action once the load balancer has drained the
        instance (the target group's deregistration delay): the agent stopped the app
        `drain` seconds after the 503, cutting the requests the load balancer was
        still letting finish; it now keeps the app until the action exists."""
        w, a = self.boot("[lifecycle]\ndrain = 2\n", terminate_hook=True,
                         heartbeat_timeout=300)
        self.not_pending_for(w, 10)
        t0 = self.scale_in()
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                          what="503 once the scale-in begins")
        self.wait_or_fail(lambda: "the app serves the load balancer's last requests" in
                          (a.status_json() or {}).get("lifecycle", ""), timeout=15,
                          what="status to say the app serves while the action is missing")
        time.sleep(max(0.0, t0 + 6 - time.time()))
        self.assertEqual(http_get(self.app_port, "/health")[0], 200,
                         "the app still serves 4 s after the drain, the action not there yet")
        self.assertEqual(a.wait_exit(90), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())
        self.assertGreaterEqual(done[0]["time"], t0 + 10)
        self.assertIsNone(http_get(self.app_port, "/health")[0], "the app stopped at the end")
        beats = self.lifecycle(w, "heartbeat", f"{self.group}-terminate")
        self.assertEqual(len(beats), 1, "one heartbeat answered, then the app stopped")
        self.assertLessEqual(beats[0]["time"], done[0]["time"])

    def test_heartbeats_go_on_until_the_terminate_action_exists(self):
        """The first heartbeat of a drain comes before AWS registers the action; the
        agent took that answer as final and a drain longer than the hook's timeout
        was cut by the hook's DefaultResult while the app still served."""
        w, a = self.boot("[lifecycle]\ndrain = 35\nheartbeat = 10\n", terminate_hook=True)
        self.not_pending_for(w, 5)
        self.scale_in()
        self.assertEqual(a.wait_exit(90), 0, a.log_text())
        hook = f"{self.group}-terminate"
        self.assertEqual(self.ends(w, hook), [("complete", "CONTINUE")], self.f.lifecycle())
        self.assertGreaterEqual(len(self.lifecycle(w, "heartbeat", hook)), 2)

    def test_scale_in_while_auto_scaling_is_throttled(self):
        # A fleet-wide scale-in empties the shared Auto Scaling bucket for longer
        # than one call's api_timeout: the hook is still found and completed.
        w, a = self.boot("[aws]\napi_timeout = 1\n[lifecycle]\ndrain = 1\n",
                         terminate_hook=True)
        self.f.fault(kind="throttle", service="autoscaling", for_seconds=6)
        t0 = self.scale_in()
        self.assertEqual(a.wait_exit(60), 0, a.log_text())
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())
        self.assertGreaterEqual(done[0]["time"], t0 + 5, "completed after the throttling ended")
        self.assertIn("(will retry)", a.log_text())
        self.assertIn("CONTINUE sent for terminate hook", a.status_json()["lifecycle"])


if __name__ == "__main__":
    unittest.main()
