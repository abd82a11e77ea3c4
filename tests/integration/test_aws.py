"""`asg-agent aws` and `fetch`: signed Query calls and S3 reads against moto with signature
and IAM checks on, through faults one classifier of AWS errors must handle."""
import calendar
import hashlib
import os
import time
import unittest

from agentlib import write
from fakecase import FakeAWSCase


class Aws(FakeAWSCase):
    prefix = "aws"
    config = "[aws]\napi_timeout = 20\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance_id = cls.f.make_world(group="aws-blue", version="2.0.0").instance_id

    def aws(self, *args, env=None, conf=None):
        return self.cli("aws", *args, env=env, conf=conf)

    def api_requests(self, action=None):
        return self.f.requests(target="aws", action=action)

    def test_describe_instances_of_group(self):
        r, _ = self.aws("autoscaling", "DescribeAutoScalingInstances",
                        f"InstanceIds.member.1={self.instance_id}")
        self.assert_exit(r, 0)
        self.assertIn("<AutoScalingGroupName>aws-blue</AutoScalingGroupName>", r.stdout)
        self.assertIn("Pending:Wait", r.stdout)

    def test_ec2_describe_tags_with_filters(self):
        r, _ = self.aws("ec2", "DescribeTags", "Filter.1.Name=resource-id",
                        f"Filter.1.Value.1={self.instance_id}", "Filter.2.Name=key",
                        "Filter.2.Value.1=asg-agent:version")
        self.assert_exit(r, 0)
        self.assertIn("<value>2.0.0</value>", r.stdout)
        self.assertNotIn("aws:autoscaling:groupName", r.stdout)

    def test_values_with_reserved_characters_are_signed_right(self):
        r, _ = self.aws("autoscaling", "DescribeTags", "Filters.member.1.Name=key",
                        "Filters.member.1.Values.member.1=a b/c+d=e&f~ü")
        self.assert_exit(r, 0)

    def test_aws_error_is_code_and_message(self):
        r, _ = self.aws("autoscaling", "RecordLifecycleActionHeartbeat",
                        "AutoScalingGroupName=aws-blue", "LifecycleHookName=nope",
                        "InstanceId=i-00000000000000000")
        self.assert_exit(r, 1)
        self.assertRegex(r.stderr, r"^ValidationError: ")
        self.assertEqual(r.stdout, "")

    def test_iam_denies_what_the_role_may_not_do(self):
        r, _ = self.aws("ec2", "TerminateInstances", f"InstanceId.1={self.instance_id}")
        self.assert_exit(r, 1)
        self.assertRegex(r.stderr, r"^(AccessDenied|UnauthorizedOperation|AccessDeniedException):")
        self.assertTrue(self.f.ec2_instance_running(self.instance_id))

    def test_throttled_twice_then_success(self):
        self.f.fault("aws", kind="throttle", service="autoscaling", count=2)
        r, _ = self.aws("autoscaling", "DescribeLifecycleHooks", "AutoScalingGroupName=aws-blue")
        self.assert_exit(r, 0)
        self.assertIn("aws-blue-launch", r.stdout)
        self.assertEqual(len(self.api_requests("DescribeLifecycleHooks")), 3)

    def test_5xx_and_resets_are_retried(self):
        self.f.fault("aws", kind="status", status=503, service="ec2", count=1)
        self.f.fault("aws", kind="reset", service="ec2", count=1)
        r, _ = self.aws("ec2", "DescribeTags")
        self.assert_exit(r, 0)

    def test_throttling_forever_gives_up_at_api_timeout(self):
        conf = write(os.path.join(self.dir, "a.conf"), "[aws]\napi_timeout = 2\n")
        self.f.fault("aws", kind="throttle", service="ec2")
        r, took = self.aws("ec2", "DescribeTags", conf=conf)
        self.assert_exit(r, 1)
        self.assertIn("RequestLimitExceeded", r.stderr)
        self.assertLess(took, 10, "gave up, not retrying until the default api_timeout of 60 s")

    def test_wrong_secret_fails_fast(self):
        creds = self.f.imds_credentials()
        env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": "not-the-secret",
               "AWS_SESSION_TOKEN": creds["Token"]}
        for svc, action, code in (("ec2", "DescribeTags", "AuthFailure"),
                                  ("autoscaling", "DescribeAutoScalingGroups",
                                   "SignatureDoesNotMatch")):
            self.f.clear_requests()
            r, took = self.aws(svc, action, env=env)
            self.assert_exit(r, 1)
            self.assertTrue(r.stderr.startswith(code + ":"), r.stderr)
            self.assertLess(took, 10, "not retried until the 60 s api_timeout")
            self.assertEqual(len(self.api_requests(action)), 1, "auth errors are not retried")

    def test_environment_credentials_without_imds(self):
        admin = self.f.admin_credentials
        env = {"AWS_ACCESS_KEY_ID": admin["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"],
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}
        r, _ = self.aws("elbv2", "DescribeLoadBalancers", env=env)
        self.assert_exit(r, 0)
        self.assertEqual(self.f.requests(target="imds"), [])

    def assert_endpoint_variable(self, var, service, action, other, other_action):
        """var sends service's calls to a dead port (1 s to fail), not other's."""
        conf = write(os.path.join(self.dir, f"{service}.conf"), "[aws]\napi_timeout = 1\n")
        r, _ = self.aws(service, action, conf=conf, env={var: "http://127.0.0.1:9"})
        self.assert_exit(r, 1)
        self.assertIn("127.0.0.1:9", r.stderr)
        r, _ = self.aws(other, other_action, env={var: "http://127.0.0.1:9"})
        self.assert_exit(r, 0)

    def test_per_service_endpoint_wins(self):
        self.assert_endpoint_variable("AWS_ENDPOINT_URL_AUTO_SCALING", "autoscaling",
                                      "DescribeAutoScalingGroups", "ec2", "DescribeTags")

    def test_classic_elb_is_its_own_api_version_and_endpoint(self):
        name = f"clb{self.n}"
        self.f.client("elb").create_load_balancer(
            LoadBalancerName=name, AvailabilityZones=["us-east-1a"], Listeners=[
                {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}])
        r, _ = self.aws("elb", "DescribeLoadBalancerAttributes", f"LoadBalancerName={name}")
        self.assert_exit(r, 0)
        self.assertIn("<ConnectionDraining>", r.stdout)
        # The same host as elbv2, the variable of the SDKs' "Elastic Load Balancing".
        self.assert_endpoint_variable("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING", "elb",
                                      "DescribeLoadBalancers", "elbv2", "DescribeLoadBalancers")

    def test_clock_skew_is_corrected_from_the_date_header(self):
        self.f.fault("aws", kind="date_skew", seconds=3600, count=1)
        self.f.fault("aws", kind="status", status=403, code="RequestTimeTooSkewed",
                     message="The difference between the request time and the current "
                     "time is too large.", service="autoscaling", count=1)
        r, _ = self.aws("autoscaling", "DescribeAutoScalingGroups")
        self.assert_exit(r, 0)
        self.assertEqual(len(self.api_requests("DescribeAutoScalingGroups")), 2)

    # S3 GetObject through `fetch -v`: the same classifier as the Query calls.
    BUCKET = "aws-blue-bakes"

    def s3_fetch(self, key):
        """Store an object, fetch it with -v; (result, whether the copy matches)."""
        data = os.urandom(64 * 1024)
        self.f.put_s3(self.BUCKET, key, data)
        out = os.path.join(self.dir, "obj")
        r, _ = self.cli("-v", "fetch", f"s3://{self.BUCKET}/{key}", "--sha256",
                        hashlib.sha256(data).hexdigest(), "-o", out)
        same = False
        if os.path.exists(out):
            with open(out, "rb") as fh:
                same = fh.read() == data
        return r, same

    def get_objects(self, key):
        return [q for q in self.f.requests(target="aws", service="s3", action="GetObject")
                if q["path"].endswith("/" + key)]

    def credential_fetches(self):
        role = "/latest/meta-data/iam/security-credentials/asg-agent-instance"
        return [q for q in self.f.requests(target="imds") if q.get("path") == role]

    def test_s3_clock_skew_is_corrected_from_the_date_header(self):
        # S3's RequestTimeTooSkewed: 403, the server's time in Date and in the body.
        self.f.fault("aws", kind="date_skew", seconds=3600, service="s3", count=1)
        self.f.fault("aws", kind="status", code="RequestTimeTooSkewed", service="s3",
                     action="GetObject", count=1)
        r, same = self.s3_fetch("skew/app.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(same, "the fetched copy differs from the object")
        self.assertRegex(r.stderr, r"s3 GetObject s3://aws-blue-bakes/skew/app.bin: clock off "
                         r"by (3599|3600|3601) s: signing with the server's time")
        gets = self.get_objects("skew/app.bin")
        self.assertEqual(len(gets), 2, gets)
        signed = [calendar.timegm(time.strptime(q["amz_date"], "%Y%m%dT%H%M%SZ")) for q in gets]
        ahead = signed[1] - signed[0]
        self.assertTrue(3590 <= ahead <= 3610,
                        f"the retry was signed {ahead} s after the first, want about 3600")

    def expired_token_is_refreshed(self, code):
        self.f.fault("aws", kind="status", code=code, service="s3", action="GetObject", count=1)
        key = f"expired/{code}.bin"
        r, same = self.s3_fetch(key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(same, "the fetched copy differs from the object")
        self.assertIn(f"credentials expired ({code}): refreshing them, retrying at once",
                      r.stderr)
        self.assertEqual(len(self.get_objects(key)), 2)
        self.assertEqual(len(self.credential_fetches()), 2,
                         "want the role's credentials fetched again after the error")
        # S3 echoes the session token in this error body: it must go nowhere.
        self.assertNotIn(self.f.imds_credentials()["Token"], r.stdout + r.stderr)

    def test_s3_expired_token_refreshes_credentials(self):
        self.expired_token_is_refreshed("ExpiredToken")

    def test_s3_token_refresh_required_refreshes_credentials(self):
        self.expired_token_is_refreshed("TokenRefreshRequired")

    def test_s3_second_expired_token_in_one_call_is_final(self):
        self.f.fault("aws", kind="status", code="ExpiredToken", service="s3",
                     action="GetObject", count=2)
        t0 = time.monotonic()
        r, same = self.s3_fetch("expired/twice.bin")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(same)
        self.assertIn("ExpiredToken", r.stderr)
        self.assertEqual(len(self.get_objects("expired/twice.bin")), 2,
                         "one refresh per call, then the answer is final")
        self.assertLess(took, 15, "a final answer is not retried until the 60 s api_timeout")
        self.assertNotIn(self.f.imds_credentials()["Token"], r.stdout + r.stderr)

    def test_secrets_never_printed(self):
        creds = self.f.imds_credentials()
        r, _ = self.aws("ec2", "DescribeTags")
        for secret in (creds["SecretAccessKey"], creds["Token"]):
            self.assertNotIn(secret, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
