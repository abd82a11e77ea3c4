"""IMDSv2 as the agent meets it at boot: not up yet, 5xx, expired tokens, disabled."""
import os
import unittest

from agentlib import run, write
from fakecase import FakeAWSCase


class Imds(FakeAWSCase):
    prefix = "imds"
    config = "[aws]\nimds_timeout = 15\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance_id = cls.f.make_world(group="imds-blue", version="1.0.0").instance_id

    def call(self, env=None, conf=None):
        return self.cli("aws", "autoscaling", "DescribeAutoScalingInstances",
                        f"InstanceIds.member.1={self.instance_id}", env=env, conf=conf)

    def imds_requests(self):
        return [q for q in self.f.requests(target="imds")]

    def test_happy_path_uses_imds_region_and_role(self):
        r, _ = self.call()
        self.assert_exit(r, 0)
        self.assertIn(self.instance_id, r.stdout)
        paths = [q["path"] for q in self.imds_requests()]
        self.assertIn("/latest/api/token", paths)
        self.assertTrue(any(p.endswith("/placement/region") for p in paths), paths)
        self.assertTrue(any("/iam/security-credentials/asg-agent-instance" in p for p in paths))
        # One token serves every read: no token per request.
        self.assertEqual(sum(1 for q in self.imds_requests() if q["method"] == "PUT"), 1)

    def test_refused_for_5s_then_up(self):
        self.f.refuse_imds(5)
        r, took = self.call()
        self.assert_exit(r, 0)
        self.assertGreaterEqual(took, 4.0)
        self.assertLess(took, 12.0)

    def test_500_for_the_first_requests(self):
        self.f.fault("imds", kind="status", status=500, count=5)
        r, _ = self.call()
        self.assert_exit(r, 0)
        fired = [x["fired"] for x in self.f.faults()["imds"]]
        self.assertEqual(fired, [5])

    def test_token_refused_mid_run(self):
        # The first credentials read says 401: the agent gets a new token and goes on.
        self.f.fault("imds", kind="status", status=401, path="security-credentials", count=1)
        r, _ = self.call()
        self.assert_exit(r, 0)
        puts = [q for q in self.imds_requests() if q["method"] == "PUT"]
        self.assertEqual(len(puts), 2, [q["path"] for q in self.imds_requests()])

    def test_expired_tokens(self):
        self.f.fault("imds", kind="status", status=401, path="placement/region", count=1)
        self.f.expire_imds_tokens()
        r, _ = self.call()
        self.assert_exit(r, 0)

    def test_imds_disabled_403_fails_fast(self):
        self.f.set_imds(disabled=True)
        r, took = self.call()
        self.assert_exit(r, 1)
        self.assertIn("IMDS is disabled", r.stderr)
        self.assertLess(took, 10.0, "not retried until the 120 s imds_timeout")
        self.assertEqual(len(self.imds_requests()), 1, "403 must not be retried")

    def test_never_up_gives_up_at_the_timeout(self):
        conf = write(os.path.join(self.dir, "a.conf"), "[aws]\nimds_timeout = 2\n")
        r, took = self.call(env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"},
                            conf=conf)
        self.assert_exit(r, 1)
        self.assertIn("gave up after 2 s", r.stderr)
        self.assertGreaterEqual(took, 1.5)
        self.assertLess(took, 10, "gave up at imds_timeout = 2, not the default 120")

    def test_endpoint_from_config_and_environment_wins(self):
        env = self.f.agent_env()
        real = env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = ""  # empty counts as unset: the config decides
        good = write(os.path.join(self.dir, "good.conf"),
                     f"[aws]\nimds_endpoint = {real}\nimds_timeout = 2\n")
        dead = write(os.path.join(self.dir, "dead.conf"),
                     "[aws]\nimds_endpoint = http://127.0.0.1:9\nimds_timeout = 2\n")
        r = run(["-c", good, "aws", "ec2", "DescribeTags"], env=env, timeout=60)
        self.assert_exit(r, 0)
        self.assertTrue(self.imds_requests(), "the configured IMDS was asked")
        r = run(["-c", dead, "aws", "ec2", "DescribeTags"], env=env, timeout=60)
        self.assert_exit(r, 1)
        self.assertIn("127.0.0.1:9", r.stderr)
        r = run(["-c", dead, "aws", "ec2", "DescribeTags"],
                env=dict(env, AWS_EC2_METADATA_SERVICE_ENDPOINT=real), timeout=60)
        self.assert_exit(r, 0)

    def test_metadata_disabled_by_environment(self):
        r, took = self.call(env={"AWS_EC2_METADATA_DISABLED": "true"})
        self.assert_exit(r, 1)
        self.assertIn("AWS_EC2_METADATA_DISABLED", r.stderr)
        self.assertEqual(self.imds_requests(), [])

    def test_no_tokenless_fallback(self):
        # Token requests fail with 404 (as an IMDSv1-only endpoint would): never GET without one.
        self.f.fault("imds", kind="status", status=404, method="PUT")
        r, _ = self.call()
        self.assert_exit(r, 1)
        gets = [q for q in self.imds_requests() if q["method"] == "GET"]
        self.assertEqual(gets, [])


if __name__ == "__main__":
    unittest.main()
