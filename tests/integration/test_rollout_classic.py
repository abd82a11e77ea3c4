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
        self.assert_unchanged()

    def assert_unchanged(self):
        self.assertEqual(self.asg_group(self.green)["DesiredCapacity"], 0)
        self.assertEqual(self.record(self.green), {}, "no rollout recorded")
        self.assertEqual(self.record(self.blue), {}, "no rollout recorded")
        self.assertEqual(self.mutations(), [], "requests that change a group")

    def test_a_role_that_may_not_read_instance_health_stops_before_a_change(self):
        # A CI role on the policy from before Classic Load Balancers counted.
        self.fake_agents()
        self.f.fault(target="aws", kind="status", service="elasticloadbalancing",
                     action="DescribeInstanceHealth", status=403, code="AccessDenied",
                     message="not authorized to perform: DescribeInstanceHealth")
        r = self.start()
        self.assert_exit(r, 1)
        self.assertIn("DescribeInstanceHealth", r.stderr)
        self.assertIn("not starting", r.stderr)
        self.assert_unchanged()

    def test_behind_a_target_group_too_the_longest_delay_is_tagged(self):
        self.watch_serving()
        self.fake_agents()
        elbv2 = self.f.client("elbv2")
        tg = elbv2.create_target_group(
            Name=f"both{self.n}", Protocol="HTTP", Port=8080, TargetType="instance",
            VpcId=self.f.client("ec2").describe_subnets(
                SubnetIds=[self.world.subnet_id])["Subnets"][0]["VpcId"],
        )["TargetGroups"][0]["TargetGroupArn"]
        for g in (self.blue, self.green):
            self.asg.attach_load_balancer_target_groups(AutoScalingGroupName=g,
                                                        TargetGroupARNs=[tg])
        elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "90"}])
        self.draining(True, 42)
        r = self.start()
        self.assert_exit(r, 0)
        self.assertEqual(self.states(self.green), ["InService", "InService"])
        self.assertEqual(self.tags(self.green).get("asg-agent:deregistration-delay"), "90",
                         self.tags(self.green))
        health = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        self.assertEqual(sorted(t["Target"]["Id"] for t in health
                                if t["TargetHealth"]["State"] == "healthy"),
                         sorted(i["InstanceId"] for i in self.asg_group(self.green)["Instances"]))
        self.assert_always_served()


if __name__ == "__main__":
    unittest.main()
