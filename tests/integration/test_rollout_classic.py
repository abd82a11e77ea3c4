"""`asg-agent rollout` for two groups behind a Classic Load Balancer instead of a target group."""
import unittest

from test_rollout import RolloutCase


class RolloutClassic(RolloutCase):
    classic = True

    def draining(self, enabled, timeout=300):
        self.f.client("elb").modify_load_balancer_attributes(
            LoadBalancerName=self.lb,
            LoadBalancerAttributes={"ConnectionDraining": {"Enabled": enabled, "Timeout": timeout}})

    def test_start_waits_for_in_service_and_tags_the_draining_timeout(self):
        self.watch_serving()
        self.fake_agents()
        self.draining(True, 42)
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assertEqual(self.states(self.blue), ["Standby", "Standby"])
        # The new instances serve behind the balancer, the old ones were let go.
        self.assertEqual(self.serving(), 2)
        # Its instances told how long a scale-in's terminate action takes to exist.
        self.assertEqual(self.tags(self.green).get("asg-agent:deregistration-delay"), "42",
                         self.tags(self.green))
        self.assert_always_served()

    def test_draining_off_is_tagged_as_no_delay(self):
        self.fake_agents()
        self.draining(False)
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual(self.tags(self.green).get("asg-agent:deregistration-delay"), "0",
                         self.tags(self.green))

    def test_new_instance_out_of_service_in_bake_rolls_back(self):
        r, stopped = self.stopped_in_bake()
        self.assertIn(f"{stopped} is OutOfService", r.stderr)

    def test_start_refused_when_idle_is_not_behind_the_balancer(self):
        self.fake_agents()
        self.asg.detach_load_balancers(AutoScalingGroupName=self.green,
                                       LoadBalancerNames=[self.lb])
        self.assertEqual(self.asg_group(self.green)["LoadBalancerNames"], [])
        r = self.start()
        self.assert_exit(r, 3)
        self.assertIn("not behind the same Classic Load Balancers (1 and 0)", r.stderr)
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(self.green), {}, "no rollout recorded")


if __name__ == "__main__":
    unittest.main()
