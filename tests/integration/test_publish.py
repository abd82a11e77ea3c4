"""`asg-agent publish`: an artifact, its chunk manifest and signatures to the fake S3 (moto,
signatures and IAM checked), with the CI role's own policy from packaging/aws."""
import hashlib
import json
import os
import subprocess
import unittest

from agentlib import AGENT, SRCDIR, write
from bootlib import make_artifact, sha256
from fakecase import FakeAWSCase

BUCKET = "releases"
CHUNK = 4 << 20
PART = 8 << 20


def manifest_of(data):
    """manifest.md's format, made independently of the agent."""
    lines = ["asg-agent-manifest 1", f"size {len(data)}", f"chunk-size {CHUNK}",
             f"sha256 {sha256(data)}"]
    lines += [f"chunk {sha256(data[i:i + CHUNK])}" for i in range(0, len(data), CHUNK)]
    return ("\n".join(lines) + "\n").encode()


def multipart_etag(data, part):
    """S3's ETag of a multipart object: MD5 of the parts' MD5s, then -N."""
    md5s = [hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)]
    return f'"{hashlib.md5(b"".join(md5s)).hexdigest()}-{len(md5s)}"'


class Publish(FakeAWSCase):
    prefix = "pub"
    config = "[aws]\napi_timeout = 20\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.f.client("s3").create_bucket(Bucket=BUCKET)
        cls.w1 = cls.f.make_world(group="pub-blue", version="0.0.1")
        cls.w2 = cls.f.make_world(group="pub-green", version="0.0.1")
        # The CI role's policy as shipped, its placeholders filled in.
        with open(os.path.join(SRCDIR, "packaging/aws/ci-rollout-policy.json")) as fh:
            policy = fh.read()
        for k, v in {"REGION": "us-east-1", "ACCOUNT_ID": cls.f.info["account_id"],
                     "GROUP_PREFIX": "pub-", "RELEASE_BUCKET": BUCKET,
                     "RELEASE_PREFIX": "app/"}.items():
            policy = policy.replace(k, v)
        # moto checks Auto Scaling actions against Resource "*" only, never a group's ARN.
        policy = policy.replace(
            "arn:aws:autoscaling:us-east-1:%s:autoScalingGroup:*:autoScalingGroupName/pub-*"
            % cls.f.info["account_id"], "*")
        iam = cls.f.client("iam")
        iam.create_user(UserName="ci")
        iam.put_user_policy(UserName="ci", PolicyName="ci", PolicyDocument=policy)
        cls.ci_key = iam.create_access_key(UserName="ci")["AccessKey"]

    def setUp(self):
        super().setUp()
        self.s3 = self.f.client("s3")

    def ci_env(self):
        return {"AWS_ACCESS_KEY_ID": self.ci_key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": self.ci_key["SecretAccessKey"],
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def publish(self, path, version, *args, to=None, timeout=180):
        return self.cli("publish", path, "--version", version, "--to",
                        to or f"s3://{BUCKET}/app/{{version}}.tar.gz", *args,
                        env=self.ci_env(), timeout=timeout)[0]

    def file(self, name, data):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as fh:
            fh.write(data)
        return p

    def get(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def s3_requests(self, action):
        return [q for q in self.f.requests(target="aws", service="s3")
                if q.get("action") == action]

    def verify_sig(self, pub, data, sig):
        d, s = self.file("v.bin", data), self.file("v.sig", sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", s, d],
                           capture_output=True, text=True)
        return r.returncode == 0

    def test_small_signed(self):
        art = make_artifact({"README": b"hello\n"})
        key, pub = self.keypair("release")
        r = self.publish(self.file("a.tar.gz", art), "1.0.0", "--sign", key)
        self.assert_exit(r, 0)
        man = manifest_of(art)
        self.assertEqual(r.stdout, f"manifest:{sha256(man)}\n")
        self.assertEqual(self.get("app/1.0.0.tar.gz"), art)
        self.assertEqual(self.get("app/1.0.0.tar.gz.manifest"), man)
        self.assertTrue(self.verify_sig(pub, art, self.get("app/1.0.0.tar.gz.sig")),
                        "{url}.sig verifies over the artifact")
        self.assertTrue(self.verify_sig(pub, man, self.get("app/1.0.0.tar.gz.manifest.sig")),
                        "{url}.manifest.sig verifies over the manifest")
        head = self.s3.head_object(Bucket=BUCKET, Key="app/1.0.0.tar.gz")
        self.assertEqual(head["Metadata"].get("sha256"), sha256(art))
        puts = [q["path"].split("?")[0] for q in self.s3_requests("PutObject")]
        self.assertEqual(puts, [f"/{BUCKET}/app/1.0.0.tar.gz" + s
                                for s in ("", ".manifest", ".sig", ".manifest.sig")],
                         "the artifact first, the manifest and signatures last")
        # What publish made, fetch takes: the digest and the signature.
        out = os.path.join(self.dir, "x")
        r = self.cli("fetch", f"s3://{BUCKET}/app/1.0.0.tar.gz", "--sha256", sha256(art),
                     "--signature", f"s3://{BUCKET}/app/1.0.0.tar.gz.sig",
                     "--public-key", pub, "-x", out)[0]
        self.assert_exit(r, 0)
        self.assertIn("digest-ok signature-ok", r.stdout)

    def test_published_tag_value_pins_fetch_through_the_manifest(self):
        # Publish's output is the tag value; fetch takes it and checks chunk by chunk.
        files = {f"f{i}": os.urandom(1 << 20) for i in range(12)}
        art = make_artifact(files)
        key, pub = self.keypair("release")
        r = self.publish(self.file("m.tar.gz", art), "7.7.0", "--sign", key)
        self.assert_exit(r, 0)
        pin = r.stdout.strip()
        self.assertTrue(pin.startswith("manifest:"), pin)
        out = os.path.join(self.dir, "m")
        r = self.cli("-v", "fetch", f"s3://{BUCKET}/app/7.7.0.tar.gz", "--sha256", pin, "-x", out)[0]
        self.assert_exit(r, 0)
        self.assertIn("digest-ok", r.stdout)
        for name, data in files.items():
            with open(os.path.join(out, name), "rb") as fh:
                self.assertEqual(sha256(fh.read()), sha256(data), name)
        gets = [q["path"] for q in self.s3_requests("GetObject")]
        self.assertTrue(any(p.endswith("/app/7.7.0.tar.gz.manifest") for p in gets),
                        f"the manifest was fetched: {gets}")
        # A pin of other bytes is refused before anything is unpacked.
        bad = "manifest:" + "0" * 64
        out2 = os.path.join(self.dir, "m2")
        r = self.cli("fetch", f"s3://{BUCKET}/app/7.7.0.tar.gz", "--sha256", bad, "-x", out2)[0]
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertFalse(os.path.exists(out2), "nothing unpacked under a wrong pin")

    def test_published_release_boots_an_instance(self):
        # The whole flow: CI publishes and tags the group; an instance boots the
        # release, verified chunk by chunk through the manifest the tag pins.
        w, art = self.world(version="6.6.0", upload=False, sha=False)
        r = self.publish(self.file("boot.tar.gz", art), "6.6.0", "--tag-group", self.group)
        self.assert_exit(r, 0)
        tags = {t["Key"]: t["Value"] for t in self.f.client("autoscaling").describe_tags(
            Filters=[{"Name": "auto-scaling-group", "Values": [self.group]}])["Tags"]}
        self.assertEqual(tags.get("asg-agent:launch-hook"), f"{self.group}-launch 300", tags)
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertEqual(st["version"], "6.6.0")
        self.assertEqual(st["sha256"], sha256(art), "the artifact that was published")
        self.assertTrue(self.s3_gets("app/6.6.0.tar.gz.manifest"), "the manifest was read")

    def test_same_bytes_again_pass_other_bytes_refused(self):
        art = make_artifact({"a": b"1\n"})
        first = self.publish(self.file("a.tar.gz", art), "2.0.0")
        self.assert_exit(first, 0)
        again = self.publish(self.file("a.tar.gz", art), "2.0.0")
        self.assert_exit(again, 0)
        self.assertEqual(again.stdout, first.stdout)
        self.assertEqual(len([q for q in self.s3_requests("PutObject")
                              if q["path"].endswith("2.0.0.tar.gz")]), 1,
                         "the same bytes are not uploaded again")
        other = make_artifact({"a": b"2\n"})
        r = self.publish(self.file("b.tar.gz", other), "2.0.0")
        self.assert_exit(r, 3)
        self.assertIn("already exists with other bytes", r.stderr)
        self.assertIn("versions are immutable", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.get("app/2.0.0.tar.gz"), art, "the published bytes stay")
        self.assertEqual(self.get("app/2.0.0.tar.gz.manifest"), manifest_of(art))

    def test_lost_answer_is_not_a_conflict(self):
        """moto stores the artifact but the answer is lost: the retry meets our own
        object (412 to If-None-Match), finds the same bytes and goes on."""
        art = make_artifact({"lost": b"1\n"})
        self.f.fault(target="aws", kind="status", status=500, code="InternalError",
                     shape="s3", service="s3", action="PutObject", path=r"9\.0\.0\.tar\.gz$",
                     forward=True, count=1)
        r = self.publish(self.file("l.tar.gz", art), "9.0.0")
        self.assert_exit(r, 0)
        self.assertEqual([x["fired"] for x in self.f.faults()["aws"]], [1])
        self.assertEqual([q["status"] for q in self.s3_requests("PutObject")
                          if q["path"].endswith("9.0.0.tar.gz")], [500, 412],
                         "the retry met the object its lost attempt wrote")
        self.assertEqual(self.get("app/9.0.0.tar.gz"), art)
        self.assertEqual(self.get("app/9.0.0.tar.gz.manifest"), manifest_of(art))

    def test_race_with_other_bytes_is_refused(self):
        """Another publisher writes the version between our check and our upload:
        If-None-Match keeps their object, and we refuse."""
        art, theirs = make_artifact({"race": b"ours\n"}), make_artifact({"race": b"theirs\n"})
        self.f.fault(target="aws", kind="delay", seconds=2, service="s3", action="PutObject",
                     path=r"10\.0\.0\.tar\.gz$", count=1)
        p = subprocess.Popen([AGENT, "-c", self.conf, "publish", self.file("r.tar.gz", art),
                              "--version", "10.0.0", "--to",
                              f"s3://{BUCKET}/app/{{version}}.tar.gz"],
                             env=self.agent_env(self.ci_env()), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        # (Not f.requests(): it waits for the delayed upload to finish.)
        self.assertTrue(self.wait_for(lambda: self.f.faults()["aws"][0]["fired"] == 1, 20,
                                      step=0.02), "publish reached its upload")
        self.s3.put_object(Bucket=BUCKET, Key="app/10.0.0.tar.gz", Body=theirs,
                           Metadata={"sha256": sha256(theirs)})
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3, f"--- stdout\n{out}\n--- stderr\n{err}")
        self.assertIn("already exists with other bytes", err)
        self.assertEqual(self.get("app/10.0.0.tar.gz"), theirs, "their object stays")

    def test_multipart_100mib(self):
        data = os.urandom(100 << 20)
        r = self.publish(self.file("big.tar.gz", data), "3.0.0")
        self.assert_exit(r, 0)
        self.assertEqual(len(self.s3_requests("CreateMultipartUpload")), 1)
        parts = self.s3_requests("UploadPart")
        self.assertEqual(len(parts), 13, "100 MiB in 8 MiB parts")
        self.assertEqual(len(self.s3_requests("CompleteMultipartUpload")), 1)
        head = self.s3.head_object(Bucket=BUCKET, Key="app/3.0.0.tar.gz")
        self.assertEqual(head["ETag"], multipart_etag(data, PART),
                         "the parts are the file's 8 MiB pieces, in order")
        self.assertEqual(head["ContentLength"], len(data))
        got = self.get("app/3.0.0.tar.gz")
        self.assertEqual(sha256(got), sha256(data), "the object is the file")
        man = self.get("app/3.0.0.tar.gz.manifest")
        self.assertEqual(man, manifest_of(data))
        self.assertEqual(man.count(b"\nchunk "), 25)
        self.assertEqual(r.stdout, f"manifest:{sha256(man)}\n")

    def test_faults_mid_upload_are_retried(self):
        data = os.urandom(20 << 20)
        self.f.fault(target="aws", kind="reset", service="s3", method="PUT",
                     path=r"partNumber=2&", count=1)
        self.f.fault(target="aws", kind="status", status=500, code="InternalError",
                     shape="s3", service="s3", method="PUT", path=r"partNumber=3&", count=1)
        self.f.fault(target="aws", kind="throttle", service="s3", method="POST",
                     path=r"uploadId=", count=1)
        r = self.publish(self.file("f.tar.gz", data), "4.0.0")
        self.assert_exit(r, 0)
        fired = [x["fired"] for x in self.f.faults()["aws"]]
        self.assertEqual(fired, [1, 1, 1], "the faults hit the upload")
        nums = sorted(q["path"].split("partNumber=")[1].split("&")[0]
                      for q in self.s3_requests("UploadPart"))
        self.assertEqual(nums, ["1", "2", "2", "3", "3"], "parts 2 and 3 were sent again")
        self.assertEqual(len(self.s3_requests("CompleteMultipartUpload")), 2,
                         "the throttled completion was sent again")
        head = self.s3.head_object(Bucket=BUCKET, Key="app/4.0.0.tar.gz")
        self.assertEqual(head["ETag"], multipart_etag(data, PART))
        self.assertEqual(sha256(self.get("app/4.0.0.tar.gz")), sha256(data))

    def test_failed_upload_is_aborted(self):
        data = os.urandom(9 << 20)
        self.f.fault(target="aws", kind="status", status=403, code="AccessDenied",
                     shape="s3", service="s3", method="PUT", path=r"partNumber=2&")
        r = self.publish(self.file("g.tar.gz", data), "5.0.0")
        self.assert_exit(r, 1)
        self.assertIn("AccessDenied", r.stderr)
        self.assertEqual(len(self.s3_requests("AbortMultipartUpload")), 1)
        ups = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        self.assertEqual([u["Key"] for u in ups if u["Key"] == "app/5.0.0.tar.gz"], [])
        self.assertEqual(self.s3_requests("PutObject"), [],
                         "no manifest for an artifact that is not there")

    def test_tag_groups(self):
        art = make_artifact({"t": b"t\n"})
        # A delay tagged when the group had a target group: it has none now.
        self.f.client("autoscaling").create_or_update_tags(Tags=[{
            "ResourceId": "pub-blue", "ResourceType": "auto-scaling-group",
            "Key": "asg-agent:deregistration-delay", "Value": "300", "PropagateAtLaunch": True}])
        r = self.publish(self.file("t.tar.gz", art), "6.0.0", "--tag-group", "pub-blue",
                         "--tag-group", "pub-green")
        self.assert_exit(r, 0)
        want = f"manifest:{sha256(manifest_of(art))}"
        self.assertEqual(r.stdout, want + "\n")
        tags = self.f.client("autoscaling").describe_tags(
            Filters=[{"Name": "auto-scaling-group", "Values": ["pub-blue", "pub-green"]}])
        got = {(t["ResourceId"], t["Key"]): t["Value"] for t in tags["Tags"]}
        for g in ("pub-blue", "pub-green"):
            self.assertEqual(got.get((g, "asg-agent:version")), "6.0.0", got)
            self.assertEqual(got.get((g, "asg-agent:sha256")), want, got)
            self.assertNotIn((g, "asg-agent:deregistration-delay"), got)

    def test_empty_file(self):
        r = self.publish(self.file("e.bin", b""), "8.0.0")
        self.assert_exit(r, 0)
        self.assertEqual(self.get("app/8.0.0.tar.gz"), b"")
        man = self.get("app/8.0.0.tar.gz.manifest")
        self.assertEqual(man, manifest_of(b""))
        self.assertNotIn(b"chunk ", man, "an empty artifact has no chunk lines")
        self.assertEqual(r.stdout, f"manifest:{sha256(man)}\n")

    def test_refusals(self):
        p = self.file("u.tar.gz", b"x")
        r = self.publish(p, "7.0.0", to="https://example.com/{version}.tar.gz")
        self.assert_exit(r, 1)
        self.assertIn("publish writes to s3:// URLs only", r.stderr)
        r = self.publish(self.dir, "7.0.0")
        self.assert_exit(r, 1)
        self.assertIn("not a regular file", r.stderr)
        r = self.cli("publish", p, "--version", "7.0.0")[0]
        self.assert_exit(r, 2)


if __name__ == "__main__":
    unittest.main()
