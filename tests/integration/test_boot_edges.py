"""`asg-agent run`: edges of the boot path (re-verification, failing APIs, hostile tags,
URL templates, what the app inherits), real binary, fake AWS with signature checks on."""
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
import unittest
import urllib.parse

from agentlib import run, write
from bootlib import APP_PY, free_ports, http_get, make_artifact, sha256, write_config
from fakecase import FakeAWSCase

# The test app, plus a prologue that records what it inherited before anything else opens.
SEEN_PY = r'''
import json, os
_fds = os.listdir("/proc/self/fd")
_links = {}
for _fd in _fds:
    try:
        _links[_fd] = os.readlink("/proc/self/fd/" + _fd)
    except OSError:
        _links[_fd] = None          # the directory listdir had open, closed since
with open("seen.json", "w") as _fh:
    json.dump({"fds": _fds, "links": _links, "env": dict(os.environ)}, _fh)
''' + APP_PY


class _ArtifactServer:
    """A plain HTTP server on loopback serving one body at one raw path; records every path."""

    def __init__(self, path, body):
        self.paths = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                if self.path == path:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class BootEdges(FakeAWSCase):
    prefix = "edge"

    # -- helpers ---------------------------------------------------------------------
    def marker(self, version, whole=False):
        """The release's marker: its first line (what it was verified with), or all of it."""
        with open(os.path.join(self.state, "releases", f".{version}.complete")) as fh:
            text = fh.read()
        return text if whole else text.split("\n")[0]

    # -- 1. an unverified release is never reused as verified ---------------------------
    def unverified_then_signed(self, signer):
        """Boot 1 installs 1.0.0 unverified; boot 2, same state dir, requires a signature.

        Boot 2 runs on a second instance (its own group, same version): the first
        instance's launch hook was completed by boot 1, and a pending hook makes the
        CONTINUE or ABANDON of boot 2 observable."""
        key, pub = self.keypair("good")
        art = make_artifact()
        w1, _ = self.world(art=art, sha=False)
        a = self.start("[artifact]\nallow_unverified = yes\nsha256_tag =\n")
        st = self.assert_serving(a, w1)
        self.assertIn("UNVERIFIED", st["verification"])
        self.assertEqual(self.marker("1.0.0"), "unverified")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(http_get(self.app_port, "/health")[0], None)

        sign_key = key if signer == "good" else self.keypair("evil")[0]
        self.f.put_s3("releases", "app/1.0.0.tar.gz.sig", self.sign(sign_key, art))
        w2, _ = self.world(art=art, sha=False, group=f"{self.group}b")
        self.f.clear_requests()
        b = self.start(f"[artifact]\npublic_key = {pub}\nsha256_tag =\nallow_unverified = no\n")
        return b, w2, art

    def test_unverified_release_downloaded_again_when_signature_required(self):
        b, w2, art = self.unverified_then_signed("good")
        st = self.assert_serving(b, w2)
        self.assertTrue(st["downloaded"], "an unverified release must not be reused")
        self.assertEqual(len(self.s3_gets("app/1.0.0.tar.gz")), 1, self.f.requests(service="s3"))
        self.assertEqual(len(self.s3_gets("app/1.0.0.tar.gz.sig")), 1)
        self.assertIn("signature", st["verification"])
        self.assertNotIn("UNVERIFIED", st["verification"])
        self.assertEqual(st["sha256"], sha256(art))
        self.assertEqual(self.marker("1.0.0"), sha256(art), "now installed as verified")
        self.assertEqual(os.readlink(os.path.join(self.state, "current")), "releases/1.0.0")

    def test_a_command_that_does_not_split_abandons_before_the_download(self):
        # It failed the boot only at the start, after the download; refused before the
        # instance knew its hook, it would leave the hook to its timeout (no ABANDON).
        w, _ = self.world()
        a = self.start('[app]\ncommand = sh -c "exec ./app\n')
        self.assert_failed(a, w, '[app] command: unterminated " quote')
        self.assertEqual(self.s3_gets(), [], "refused before anything was fetched")

    def test_a_url_template_typo_abandons_before_the_download(self):
        # Checked at the start of run, before the hook was known: no ABANDON, the
        # instance waited out the hook's timeout.
        w, _ = self.world()
        a = self.start("[artifact]\nurl = s3://releases/app/{verison}.tar.gz\n")
        self.assert_failed(a, w, "unknown variable {verison}")
        self.assertEqual(self.s3_gets(), [], "refused before anything was fetched")

    def test_a_state_file_this_binary_cannot_read(self):
        # A cut state.json (a full disk) or one from another version (a downgrade): the
        # boot dereferenced a NULL cause and crashed before its first write, so status
        # said "no state yet" (booting) for good.
        w, _ = self.world()
        os.makedirs(self.state, exist_ok=True)
        path = os.path.join(self.state, "state.json")
        with open(path, "w") as fh:
            fh.write('{"phase": "serving", "pid": 1')
        # Before the agent starts: its first write replaces the file at once.
        conf = write(os.path.join(self.dir, "status.conf"), f"[agent]\nstate_dir = {self.state}\n")
        r = self.cli("status", conf=conf)[0]
        a = self.start()
        self.assert_exit(r, 1)
        self.assertIn("cannot read the state", r.stderr)
        self.assertIn("state.json", r.stderr)
        self.assert_serving(a, w)
        self.assertIn("earlier state ignored", a.log_text())
        self.assertEqual(a.stop(), 0)

    def test_release_of_an_older_agent_fetched_again(self):
        """A release whose marker has no "modes 0755" line was unpacked by an agent
        that kept the archive's group/world-write bits, so a local user may have
        changed it: it is fetched and verified again, not reused."""
        art = make_artifact()
        w1, _ = self.world(art=art)
        a = self.start()
        self.assert_serving(a, w1)
        self.assertEqual(self.marker("1.0.0", whole=True), sha256(art) + "\nmodes 0755\n")
        self.assertEqual(a.stop(), 0)
        # What an older agent left: the digest alone, and a file anyone could write.
        with open(os.path.join(self.state, "releases", ".1.0.0.complete"), "w") as fh:
            fh.write(sha256(art) + "\n")
        app = os.path.join(self.state, "releases", "1.0.0", "app.py")
        with open(app, "a") as fh:
            fh.write("\n# changed by someone else\n")
        os.chmod(app, 0o666)

        w2, _ = self.world(art=art, group=f"{self.group}b", upload=False)
        self.f.clear_requests()
        b = self.start()
        st = self.assert_serving(b, w2)
        self.assertTrue(st["downloaded"], "a release of an older agent must not be reused")
        self.assertEqual(len(self.s3_gets("app/1.0.0.tar.gz")), 1, self.f.requests(service="s3"))
        self.assertIn("installed by an older agent", b.log_text())
        self.assertEqual(self.marker("1.0.0", whole=True), sha256(art) + "\nmodes 0755\n")
        with open(app) as fh:
            self.assertNotIn("changed by someone else", fh.read())
        self.assertEqual(oct(os.stat(app).st_mode & 0o022), oct(0), "no group/world write")

    def test_unverified_release_not_served_when_signature_bad(self):
        b, w2, _ = self.unverified_then_signed("evil")
        st = self.assert_failed(b, w2, "signature", fresh_state=False)
        self.assertEqual(len(self.s3_gets("app/1.0.0.tar.gz")), 1,
                         "the release is fetched again, not reused")
        self.assertIsNone(http_get(self.health_port, "/healthz")[0])
        self.assertNotIn("UNVERIFIED", st["verification"] or "")
        self.assertNotIn("already installed", b.log_text())
        self.assertEqual(self.marker("1.0.0"), "unverified",
                         "the failed download must not mark the old tree verified")

    # -- 2./3. tag APIs failing ---------------------------------------------------------
    def test_ec2_describe_tags_denied(self):
        w, _ = self.world()
        self.f.fault(kind="status", status=403, code="UnauthorizedOperation", service="ec2",
                     action="DescribeTags")
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertEqual(st["group"], self.group)
        self.assertIn("group tag", st["version_source"])
        denied = self.f.requests(target="aws", service="ec2", action="DescribeTags")
        self.assertTrue(denied, "the agent asked EC2 DescribeTags first")
        self.assertTrue(all(q["status"] == 403 for q in denied), denied)
        found = [q for q in self.f.requests(target="aws", service="autoscaling",
                                            action="DescribeAutoScalingInstances")
                 if q["status"] == 200]
        self.assertTrue(found, "the group came from DescribeAutoScalingInstances")

    def test_group_describe_tags_throttled(self):
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", action="DescribeTags",
                     for_seconds=4)
        t0 = time.monotonic()
        a = self.start("[aws]\napi_timeout = 2\n[version]\nwait = 20\nlaunch_copy = no\n")
        st = self.assert_serving(a, w)
        self.assertGreaterEqual(time.monotonic() - t0, 3.5, "the throttle lasted 4 s")
        calls = st["api_calls"].get("DescribeTags", {})
        self.assertGreater(calls.get("throttled", 0), 0, st["api_calls"])
        throttled = [q for q in self.f.requests(target="aws", service="autoscaling",
                                                action="DescribeTags") if q["status"] == 400]
        self.assertTrue(throttled, "the proxy answered Throttling")

    def test_describe_lifecycle_hooks_throttled_past_api_timeout(self):
        # In a big scale-out the shared Auto Scaling bucket can stay empty for
        # longer than one call's api_timeout: that is no reason to ABANDON.
        # Three throttled answers, not a time window: a slow start on a loaded machine
        # must not let the call through at its first try.
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", action="DescribeLifecycleHooks",
                     count=3)
        a = self.start("[aws]\napi_timeout = 1\n")
        st = self.assert_serving(a, w)
        self.assertIn("DescribeLifecycleHooks (will retry)", a.log_text())
        self.assertGreater(st["api_calls"]["DescribeLifecycleHooks"]["throttled"], 1, st["api_calls"])

    def test_abandon_throttled_past_api_timeout(self):
        # A bad release fails a whole fleet at once: the ABANDONs queue on the
        # shared Auto Scaling bucket, and each agent keeps asking.
        w, _ = self.world(sha="00" * 32)
        self.f.fault(kind="throttle", service="autoscaling", action="CompleteLifecycleAction",
                     for_seconds=4)
        t0 = time.time()
        a = self.start("[aws]\napi_timeout = 1\n")
        self.assert_failed(a, w, "sha256")
        self.assertGreaterEqual(self.lifecycle(w)[0]["time"], t0 + 3.5,
                                "ABANDON went through once the throttling ended")
        self.assertIn("lifecycle ABANDON", a.log_text())

    def test_deadline_abandon_throttled_once_is_asked_again(self):
        # The deadline stops the boot as a stop signal does, and every retry layer ended
        # at a stop: one throttled ABANDON and the instance waited out the hook's hour.
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", action="CompleteLifecycleAction",
                     count=1)
        a = self.start("[agent]\ndeadline = 10\n[app]\ncommand = sleep 100\n"
                       "health_url = http://127.0.0.1:9/health\nhealth_timeout = 60\n")
        self.assert_failed(a, w, "boot deadline of 10 s passed", fresh_state=False)
        self.assertEqual([q["status"] for q in self.f.requests(
            target="aws", action="CompleteLifecycleAction")], [400, 200])

    def test_deadline_during_a_throttled_hook_lookup_still_abandons(self):
        # The deadline cut DescribeLifecycleHooks short: ABANDON needs the hook's name.
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", action="DescribeLifecycleHooks",
                     for_seconds=13)
        a = self.start("[agent]\ndeadline = 10\n")
        self.assert_failed(a, w, "boot deadline of 10 s passed")

    # -- 3a. credentials gone after the identity step: every retry loop pauses -----------
    def creds_gone_after_identity(self, a, seconds):
        """Once a's identity step is done, IMDS answers 404 for the role's credentials
        for seconds. The credentials served expire at once, so every API call asks
        IMDS again; the first IMDS tags request is held 1.5 s so the 404 is in place
        before the first API call."""
        self.assertTrue(self.wait_for(lambda: (a.status_json() or {}).get("instance_id"),
                                      20, step=0.05), a.log_text())
        self.f.fault(target="imds", kind="status", status=404,
                     path="iam/security-credentials/", for_seconds=seconds)

    def retry_lines(self, a):
        return [l for l in a.log_text().splitlines() if "will retry" in l]

    def start_without_credentials(self, seconds, extra=""):
        self.f.rotate_credentials(expires_in=0)
        self.addCleanup(self.f.rotate_credentials, 3600)
        self.f.fault(target="imds", kind="delay", seconds=1.5, path="tags/instance$",
                     count=1)
        a = self.start(extra)
        self.creds_gone_after_identity(a, seconds)
        return a

    def test_no_credentials_while_finding_the_hook(self):
        # The group comes from IMDS tags, which need no credentials; every
        # DescribeLifecycleHooks then fails at once, and must not spin.
        w, _ = self.world(sha="00" * 32, instance_tags_in_imds=True)
        a = self.start_without_credentials(8)
        st = self.assert_failed(a, w, "sha256")
        lines = self.retry_lines(a)
        print(f"# {len(lines)} 'will retry' lines in 8 s without credentials", flush=True)
        self.assertTrue(any("DescribeLifecycleHooks (will retry)" in l for l in lines),
                        a.log_text())
        self.assertLess(len(lines), 30, f"{len(lines)} lines:\n" + "\n".join(lines[:50]))
        self.assertIsNotNone(st["error"])

    def test_no_credentials_while_finding_the_group_to_abandon(self):
        # No IMDS tags: the version tag never comes (no credentials to read it),
        # the boot fails closed and looks for the group to ABANDON, at a pace.
        w, _ = self.world()
        a = self.start_without_credentials(9, "[version]\nwait = 3\n")
        st = self.assert_failed(a, w, "did not appear within 3 s")
        lines = self.retry_lines(a)
        print(f"# {len(lines)} 'will retry' lines in 9 s without credentials", flush=True)
        self.assertTrue(any("DescribeAutoScalingInstances (will retry)" in l for l in lines),
                        a.log_text())
        self.assertLess(len(lines), 30, f"{len(lines)} lines:\n" + "\n".join(lines[:50]))
        self.assertIn("asg-agent:version", st["error"])

    # -- 3b. the group's tags as copied to the instance at launch (IMDS) --------------------
    def tag_calls(self):
        return {f"{q['service']}:{q['action']}" for q in self.f.requests(target="aws")
                if q.get("action") in ("DescribeTags", "DescribeAutoScalingInstances")}

    def test_launch_copy_in_imds_costs_no_tag_call(self):
        w, _ = self.world(instance_tags_in_imds=True)
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertEqual(st["version"], "1.0.0")
        self.assertIn("copied at launch", st["version_source"])
        self.assertEqual(st["group"], self.group, "the group name came from IMDS too")
        self.assertEqual(self.tag_calls(), set(), "no API quota spent on tags")

    def test_launch_copy_from_ec2_describe_tags(self):
        # No tags in IMDS: the copy comes with the EC2 call that finds the group.
        w, _ = self.world()
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertIn("copied at launch (EC2 DescribeTags)", st["version_source"])
        self.assertEqual(self.tag_calls(), {"ec2:DescribeTags"}, "no Auto Scaling quota spent")

    def test_launch_copy_not_yet_on_ec2(self):
        # EC2 shows the instance's copy late (as AWS may): the group's tag is read.
        w, _ = self.world()
        self.f.tag_delay("asg-agent:version", 30, scope="instance")
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertIn("group tag asg-agent:version", st["version_source"])
        self.assertIn("autoscaling:DescribeTags", self.tag_calls())

    def test_launch_copy_off(self):
        w, _ = self.world(instance_tags_in_imds=True)
        a = self.start("[version]\nlaunch_copy = no\n")
        st = self.assert_serving(a, w)
        self.assertIn("group tag asg-agent:version", st["version_source"])
        self.assertNotIn("launch", st["version_source"])
        self.assertEqual(self.tag_calls(), {"autoscaling:DescribeTags"})

    def test_launch_copy_without_digest_is_not_used(self):
        # The digest tag did not reach the instance: version and digest must come
        # from one place, so both are read from the group.
        w, _ = self.world(instance_tags_in_imds=True)
        self.f.client("ec2").delete_tags(Resources=[w.instance_id],
                                         Tags=[{"Key": "asg-agent:sha256"}])
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertIn("group tag", st["version_source"])
        self.assertNotIn("launch", st["version_source"])
        self.assertIn("autoscaling:DescribeTags", self.tag_calls())

    def test_launch_copy_not_trusted_after_an_earlier_boot(self):
        # Boot 1 runs 1.0.0 from the launch copy. Then the group moves to 2.0.0 (the
        # instance's copy stays 1.0.0, as on AWS) and the instance boots again: its
        # copy is stale now, so the group's own tag decides.
        w, _ = self.world(instance_tags_in_imds=True)
        a = self.start()
        self.assertIn("copied at launch", self.assert_serving(a, w)["version_source"])
        self.assertEqual(a.stop(), 0)
        art2 = make_artifact({"v2": b"2.0.0\n"})
        self.f.put_s3("releases", "app/2.0.0.tar.gz", art2)
        self.f.client("autoscaling").create_or_update_tags(Tags=[
            {"ResourceId": self.group, "ResourceType": "auto-scaling-group", "Key": k,
             "Value": v, "PropagateAtLaunch": True}
            for k, v in (("asg-agent:version", "2.0.0"), ("asg-agent:sha256", sha256(art2)))])
        copy = {t["Key"]: t["Value"] for t in self.f.client("ec2").describe_tags(
            Filters=[{"Name": "resource-id", "Values": [w.instance_id]}])["Tags"]}
        self.assertEqual(copy.get("asg-agent:version"), "1.0.0", "the instance copy is stale")
        self.f.clear_requests()
        b = self.start()
        self.assertEqual(b.wait_status(timeout=60), 0, b.log_text())
        st = b.status_json()
        self.assertEqual(st["version"], "2.0.0", b.log_text())
        self.assertIn("group tag asg-agent:version", st["version_source"])
        self.assertIn("autoscaling:DescribeTags", self.tag_calls())

    def test_max_rate_spaces_the_agents_requests(self):
        # [aws] max_rate = 1: a bucket of 1 refilled once a second for the API requests;
        # S3 transfers are not under it (test_verified_fetch checks that side).
        w, _ = self.world()
        a = self.start("[aws]\nmax_rate = 1\n")
        self.assert_serving(a, w)
        starts = [q["start"] for q in self.f.requests(target="aws") if q.get("service") != "s3"]
        self.assertGreaterEqual(len(starts), 3, self.f.requests(target="aws"))
        # Stamped by the proxy, whose own scheduling can move one stamp by a time slice:
        # each gap well above nothing, and the whole span a second per request.
        gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
        self.assertGreaterEqual(min(gaps), 0.7, gaps)
        self.assertGreaterEqual(starts[-1] - starts[0], len(gaps) - 0.2, gaps)

    # -- 3c. [version] source = instance | imds: the instance's own tag, never the group's --
    def instance_release(self, w, version="2.0.0"):
        """Tag the instance itself (not its group) with another release."""
        art = make_artifact({"v": f"{version}\n".encode()})
        self.f.put_s3("releases", f"app/{version}.tar.gz", art)
        self.f.client("ec2").create_tags(Resources=[w.instance_id], Tags=[
            {"Key": "asg-agent:version", "Value": version},
            {"Key": "asg-agent:sha256", "Value": sha256(art)}])
        return art

    def test_source_instance_reads_the_instance_tag(self):
        w, _ = self.world()
        art = self.instance_release(w)
        a = self.start("[version]\nsource = instance\n")
        st = self.assert_serving(a, w)
        self.assertEqual((st["version"], st["sha256"]), ("2.0.0", sha256(art)))
        self.assertEqual(st["version_source"], "instance tag asg-agent:version (EC2 DescribeTags)")
        self.assertEqual(self.tag_calls(), {"ec2:DescribeTags"}, "the group's tag is not read")
        self.assertIn("2.0.0, from instance tag", a.status().stdout)

    def test_source_imds_reads_the_instance_tag_from_imds(self):
        w, _ = self.world(instance_tags_in_imds=True)
        art = self.instance_release(w)
        a = self.start("[version]\nsource = imds\n")
        st = self.assert_serving(a, w)
        self.assertEqual((st["version"], st["sha256"]), ("2.0.0", sha256(art)))
        self.assertEqual(st["version_source"], "instance tag asg-agent:version (IMDS)")
        self.assertEqual(self.tag_calls(), set(), "no tag API is asked")

    def test_source_imds_without_the_group_name_in_imds(self):
        # If IMDS tags lack aws:autoscaling:groupName, the group (for CONTINUE) is asked for.
        w, _ = self.world(instance_tags_in_imds=True)
        self.f.tag_delay("aws:autoscaling:groupName", -1, scope="instance")
        a = self.start("[version]\nsource = imds\n")
        st = self.assert_serving(a, w)
        self.assertEqual(st["group"], self.group)
        self.assertEqual(self.tag_calls(), {"autoscaling:DescribeAutoScalingInstances"})

    def test_source_imds_without_tags_in_imds_fails_closed(self):
        # The version must not come from anywhere else; the hook still gets ABANDON.
        w, _ = self.world()
        a = self.start("[version]\nsource = imds\n")
        st = self.assert_failed(a, w, "InstanceMetadataTags is off")
        self.assertIsNone(st["version"])
        self.assertEqual(self.s3_gets(), [])

    def test_source_instance_never_falls_back_to_the_group(self):
        # The group has a version, the instance's copy was removed: fail closed.
        w, _ = self.world()
        self.f.client("ec2").delete_tags(Resources=[w.instance_id],
                                         Tags=[{"Key": "asg-agent:version"}])
        a = self.start("[version]\nsource = instance\nwait = 3\n")
        st = self.assert_failed(a, w, "asg-agent:version")
        self.assertIsNone(st["version"])
        self.assertNotIn("autoscaling:DescribeTags", self.tag_calls())
        self.assertEqual(self.s3_gets(), [])

    # -- 4. CompleteLifecycleAction failing ------------------------------------------------
    def test_complete_lifecycle_action_failing(self):
        w, _ = self.world()
        self.f.fault(kind="status", status=500, code="InternalFailure",
                     action="CompleteLifecycleAction", count=3)
        a = self.start("[aws]\napi_timeout = 1\n")
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "serving")
        self.assertEqual(http_get(self.health_port, "/healthz"), (200, "ok\n"))
        self.assertTrue(self.wait_for(lambda: self.lifecycle(w), 20),
                        f"no successful completion: {self.f.lifecycle()}\n{a.log_text()}")
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"])
        failed = [q for q in self.f.requests(target="aws", action="CompleteLifecycleAction")
                  if q["status"] == 500]
        self.assertEqual(len(failed), 3, "all three failures were seen by the agent")
        self.assertEqual(self.f.instance_state(w.instance_id), "InService")
        self.assertTrue(self.wait_for(lambda: "CONTINUE sent" in
                                      (a.status_json()["lifecycle"] or ""), 5),
                        a.status_json()["lifecycle"])
        self.assertIsNone(a.status_json()["error"])

    def test_status_while_continue_is_throttled(self):
        # A fleet's CONTINUEs queue on the shared Auto Scaling bucket: status says
        # the app is healthy and the CONTINUE is on its way, not "waiting for health".
        # Throttled until status has been seen, however long the boot took to get there.
        w, _ = self.world()
        self.f.fault(kind="throttle", service="autoscaling", action="CompleteLifecycleAction")
        a = self.start()
        self.assertTrue(self.wait_for(lambda: "sending CONTINUE" in
                                      ((a.status_json() or {}).get("lifecycle") or ""), 30),
                        a.log_text())
        st = a.status_json()
        self.assertEqual(st["health"], "healthy")
        self.assertIn("sending CONTINUE for launch hook", a.status().stdout)
        self.f.clear_faults()
        st = self.assert_serving(a, w)
        self.assertIn("CONTINUE sent", st["lifecycle"])
        self.assertGreater(st["api_calls"]["CompleteLifecycleAction"]["throttled"], 0)

    # -- 5. the sha256 tag late, or never ---------------------------------------------------
    def test_sha256_tag_after_3s(self):
        w, art = self.world()
        self.f.tag_delay("asg-agent:sha256", 3)
        t0 = time.monotonic()
        a = self.start()
        st = self.assert_serving(a, w)
        self.assertGreaterEqual(time.monotonic() - t0, 2.5, "waited for the digest")
        self.assertEqual(st["sha256"], sha256(art))
        self.assertIn("sha256 tag", st["verification"])
        self.assertNotIn("UNVERIFIED", st["verification"])
        step = next(s for s in st["timeline"] if s["step"] == "version-tag")
        self.assertGreater(step["polls"], 1)

    def test_sha256_tag_never_appears(self):
        w, _ = self.world()
        self.f.tag_delay("asg-agent:sha256", -1)
        t0 = time.monotonic()
        a = self.start("[version]\nwait = 3\n")
        st = self.assert_failed(a, w, "asg-agent:sha256")
        self.assertLess(time.monotonic() - t0, 15)
        self.assertIn("no asg-agent:sha256 tag", st["error"])
        self.assertEqual(self.s3_gets(), [], "nothing is downloaded without a digest")

    # -- 6. hostile version tags -----------------------------------------------------------
    def hostile_version(self, version):
        # The artifact is never fetched; the digest only makes the tags complete.
        w = self.f.make_world(group=self.group, version=version, sha256=sha256(b"x"))
        a = self.start()
        st = self.assert_failed(a, w, "unusable version")
        self.assertIsNone(st["version"])
        self.assertNotIn("\n", st["error"])
        # Nothing outside the state dir: only what the test itself put in self.dir.
        self.assertEqual(sorted(os.listdir(self.dir)), ["agent0.conf", "agent0.log", "state"])
        self.assertFalse(os.path.exists(os.path.join(self.state, "releases", version)))
        releases = os.path.join(self.state, "releases")
        self.assertEqual(os.listdir(releases) if os.path.isdir(releases) else [], [])
        self.assertEqual(self.s3_gets(), [])
        human = a.status().stdout
        lines = [ln for ln in human.splitlines() if "unusable version" in ln]
        self.assertEqual(len(lines), 1, human)
        return lines[0], human

    def test_version_with_dotdot(self):
        line, _ = self.hostile_version("../../etc")
        self.assertIn("../../etc", line)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "etc")))

    def test_version_with_newline(self):
        line, human = self.hostile_version("1.0\nEVIL")
        # The whole value stays on the error line, its newline escaped.
        self.assertIn("EVIL", line, human)
        self.assertFalse(any(ln.startswith("EVIL") for ln in human.splitlines()), human)
        self.assertRegex(line, r"1\.0\\[0-9]*012[^\n]*EVIL")

    # -- 7. URL template values are percent-encoded --------------------------------------------
    def test_url_template_encodes_group(self):
        # moto 5.2.1 accepts a group name with a space and a '+'.
        group = f"{self.group} a+b"
        art = make_artifact()
        w = self.f.make_world(group=group, version="1.0.0", sha256=sha256(art))
        want = (f"/us-east-1/{urllib.parse.quote(group, safe='')}/{w.instance_id}/1.0.0.tar.gz")
        self.assertIn("%20", want)
        self.assertIn("%2B", want)
        srv = _ArtifactServer(want, art)
        self.addCleanup(srv.close)
        a = self.start(f"[artifact]\nurl = http://127.0.0.1:{srv.port}/{{region}}/{{group}}/"
                       "{instance_id}/{version}.tar.gz\n")
        st = self.assert_serving(a, w)
        self.assertEqual(srv.paths, [want])
        self.assertEqual(st["group"], group)
        self.assertIn("sha256 tag", st["verification"])
        self.assertEqual(self.s3_gets(), [])

    # -- 9. what the command app inherits ------------------------------------------------------
    def test_app_inherits_no_sockets_or_secrets(self):
        art = make_artifact({"app.py": SEEN_PY.encode()})
        w, _ = self.world(art=art)
        creds = self.f.imds_credentials()
        env = self.f.agent_env()
        env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                   AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                   AWS_SESSION_TOKEN=creds["Token"], AWS_REGION="us-east-1")
        a = self.start(env=env)
        st = self.assert_serving(a, w)
        imds = next(s for s in st["timeline"] if s["step"] == "imds")
        self.assertIn("credentials from environment", imds["detail"])
        with open(os.path.join(self.state, "current", "seen.json")) as fh:
            seen = json.load(fh)
        extra = sorted(set(seen["fds"]) - {"0", "1", "2"}, key=int)
        self.assertLessEqual(len(extra), 1, seen["links"])
        for fd in extra:     # only the directory listdir itself had open
            self.assertIsNone(seen["links"][fd], seen["links"])
        for fd in ("0", "1", "2"):
            self.assertFalse((seen["links"].get(fd) or "").startswith("socket:"), seen["links"])
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.assertNotIn(k, seen["env"])
        for v in seen["env"].values():
            self.assertNotIn(creds["SecretAccessKey"], v)
            self.assertNotIn(creds["Token"], v)
        self.assertEqual(seen["env"].get("ASG_AGENT_VERSION"), "1.0.0")
        self.assertEqual(seen["env"].get("ASG_AGENT_INSTANCE_ID"), w.instance_id)

    # -- 10. the debug log: every attempt, throttle, back-off, token and resume ------------------
    def test_debug_log_follows_attempts_throttles_tokens_and_resumes(self):
        # 2 MiB gzip cannot shrink, cut after half: far more than the agent's stream
        # buffers (256 KiB), so the cut comes after bytes delivered and the resume is a Range.
        art = make_artifact({"blob.bin": os.urandom(2 << 20)})
        w, _ = self.world(art=art)
        self.f.fault(kind="throttle", service="autoscaling", count=2)
        self.f.fault(kind="truncate", service="s3", action="GetObject", count=1)
        a = self.start()    # the test config logs at debug
        self.assert_serving(a, w)
        log = a.log_text()
        # Each AWS attempt, the two throttling answers and the success of the same call.
        m = re.search(r"debug: aws: autoscaling (\w+) attempt 1: HTTP 400 Throttling: "
                      r"throttled, slowdown now \d+x\n", log)
        self.assertIsNotNone(m, log)
        call = m.group(1)
        self.assertRegex(log, rf"debug: aws: autoscaling {call} attempt 2: HTTP 400 Throttling: "
                         r"throttled, slowdown now \d+x\n")
        self.assertRegex(log, rf"debug: aws: autoscaling {call} attempt 3: HTTP 200\n")
        # Adaptive pacing holds the bucket after each of them (retry_mode = adaptive).
        holds = re.findall(rf"debug: aws: autoscaling {call}: holding (\d+\.\d\d) s "
                           r"\(learned rate [0-9.e+-]+/s\)\n", log)
        self.assertEqual(len(holds), 2, log)
        # The IMDS session token (its TTL, not itself) and the role's credentials.
        self.assertRegex(log, r"debug: imds: session token fetched \(first request\): "
                         r"TTL 21600 s, refreshed in \d+ s\n")
        self.assertRegex(log, r"debug: creds: role [\w+=,.@-]+ credentials fetched \(fetch 1\): "
                         r"expire \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in \d+ s\n")
        # The download: start, the cut, the Range resume, and the verified end.
        url = "s3://releases/app/1.0.0.tar.gz"
        self.assertIn(f"debug: artifact: download of {url} starts (sha256 pinned, "
                      "no signature)\n", log)
        self.assertRegex(log, rf"debug: aws: s3 GetObject {url} attempt 1: HTTP 200\n")
        m = re.search(rf"debug: artifact: {url}: resume 1 of 5 from byte (\d+) of (\d+) "
                      r"in 0\.25 s: [^\n]+\n", log)
        self.assertIsNotNone(m, log)
        cut, total = int(m.group(1)), int(m.group(2))
        self.assertEqual(total, len(art))
        self.assertLess(cut, total)
        self.assertRegex(log, rf"debug: aws: s3 GetObject {url} from byte {cut} attempt 1: "
                         r"HTTP 206\n")
        self.assertIn(f"debug: artifact: {url} resumed at byte {cut} of {total}\n", log)
        self.assertIn(f"debug: artifact: {url} done: {len(art)} bytes, 1 resume(s), "
                      f"sha256 {sha256(art)} (digest ok), signature not checked\n", log)
        # And nothing that signs or authenticates a request.
        creds = self.f.imds_credentials()
        for secret in (creds["SecretAccessKey"], creds["Token"], "Authorization",
                       "Signature=", "X-Amz-Security-Token", "metadata-token:"):
            self.assertNotIn(secret, log)


class CheckConfig(unittest.TestCase):
    # -- 8. check-config ------------------------------------------------------------------------
    def test_relative_state_dir(self):
        d = tempfile.mkdtemp(prefix="asg-edge-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = write_config(os.path.join(d, "agent.conf"), "relative/path",
                            *free_ports(2), "[artifact]\nsha256_tag = asg-agent:sha256\n")
        with open(conf) as fh:
            text = fh.read()
        line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("state_dir"))
        r = run(["check-config"], config=conf)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{conf}:{line}: state_dir: must be an absolute path", r.stdout + r.stderr)
        # The rest of that config is fine: it is the only problem reported.
        ok = write(os.path.join(d, "ok.conf"),
                   text.replace("relative/path", os.path.join(d, "state")))
        r = run(["check-config"], config=ok)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(os.path.join(os.getcwd(), "relative")))


if __name__ == "__main__":
    unittest.main()
