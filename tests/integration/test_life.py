"""The running life: scale-in drain, standby, warm pools, continuous health, restarts."""
import os
import signal
import threading
import time
import unittest

from bootlib import AGENT, Agent, free_ports, http_get, make_artifact, sha256, write_config
from fakecase import FakeAWSCase

# An app with a slow path (to have requests in flight) and a switch to fail its
# health check: the file FAIL in its release directory; with the file ONCE there,
# only its first health answer is 200; with SLOW, each health answer takes 2.5 s.
APP = r'''
import http.server, os, sys, threading, time
port = int(sys.argv[1])
parent = os.getppid()
started = time.time()
answered = []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        if self.path == "/health" and os.path.exists("SLOW"):
            time.sleep(2.5)
        bad = self.path == "/health" and (os.path.exists("FAIL") or
                                          (os.path.exists("ONCE") and len(answered) > 0))
        if self.path == "/health":
            answered.append(1)
        body = f"{os.getpid()} {started}\n".encode()
        self.send_response(500 if bad else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
def watchdog():
    while os.getppid() == parent or os.environ.get("ASG_TEST_ORPHAN_OK"):
        time.sleep(0.2)
    os._exit(0)
threading.Thread(target=watchdog, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''


class LoadBalancer:
    """A stand-in for an ALB target group: health checks every 0.2 s (healthy after 2
    answers of 200, out after 1 failure), and a client that sends requests through it
    only while the target is in. Every request it sent must succeed."""

    def __init__(self, health_port, app_port):
        self.health_port, self.app_port = health_port, app_port
        self.healthy = False
        self.first_503 = None
        self.sent = self.ok = 0
        self.failures = []
        self.last_ok = None
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._check, daemon=True),
                        threading.Thread(target=self._client, daemon=True),
                        threading.Thread(target=self._client, daemon=True)]
        for t in self.threads:
            t.start()

    def _check(self):
        good = 0
        while not self.stop.is_set():
            code, _ = http_get(self.health_port, "/healthz", timeout=1)
            if code == 200:
                good += 1
                if good >= 2:
                    self.healthy = True
            else:
                good = 0
                if self.healthy and self.first_503 is None:
                    self.first_503 = time.time()
                self.healthy = False
            time.sleep(0.2)

    def _client(self):
        while not self.stop.is_set():
            if not self.healthy:
                time.sleep(0.05)
                continue
            self.sent += 1
            code, body = http_get(self.app_port, "/slow", timeout=5)
            if code == 200:
                self.ok += 1
                self.last_ok = time.time()
            else:
                self.failures.append((time.time(), code, body))

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def process_alive(pid):
    """pid runs (a zombie left to an init that does not reap is not running)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


class LifeCase(FakeAWSCase):
    """The running life's set-up: an app that serves, a group, the helpers; test_scale_in.py
    reuses it."""
    prefix = "life"
    stop_timeout = 15
    # Fast app health checks, so that the tests wait seconds.
    APP_CHECKS = "[app]\nhealth_interval = 1\nunhealthy_after = 2\nunhealthy_grace = 3\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.art = make_artifact({"app.py": APP.encode()})
        cls.f.put_s3("releases", "app/1.0.0.tar.gz", cls.art)

    def boot(self, extra="", terminate_hook=False, wait=True, env=None, heartbeat_timeout=30,
             **kw):
        self.app_port, self.health_port = free_ports(2)
        w = self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art),
                              terminate_hook=terminate_hook,
                              heartbeat_timeout=heartbeat_timeout, **kw)
        a = self.start(extra, env=env)
        if wait:
            self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        return w, a

    def start(self, extra="", env=None):
        """An agent on this test's ports as they are (boot chooses them)."""
        return super().start(self.APP_CHECKS + extra, env=env, new_ports=False)

    def wait_or_fail(self, pred, timeout=20, what="condition"):
        if not self.wait_for(pred, timeout):
            self.fail(f"timed out waiting for {what}")

    def not_pending_for(self, w, seconds):
        """What AWS answers until the load balancer's deregistration delay is over
        (300 s by default): the terminate action does not exist yet."""
        self.f.fault(kind="status", status=400, code="ValidationError",
                     message=f"No active Lifecycle Action found with instance ID "
                             f"{w.instance_id}",
                     action=["CompleteLifecycleAction", "RecordLifecycleActionHeartbeat"],
                     for_seconds=seconds)


class Life(LifeCase):
    def test_standby_and_back(self):
        w, a = self.boot()
        pid = http_get(self.app_port, "/")[1].split()[0]
        asg = self.f.client("autoscaling")
        asg.enter_standby(AutoScalingGroupName=self.group, InstanceIds=[w.instance_id],
                          ShouldDecrementDesiredCapacity=True)
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                      what="503 in standby")
        self.assertEqual(a.status_json()["target_state"], "Standby")
        self.assertEqual(a.status_json()["phase"], "serving")
        self.assertEqual(http_get(self.app_port, "/")[1].split()[0], pid, "app kept running")
        asg.exit_standby(AutoScalingGroupName=self.group, InstanceIds=[w.instance_id])
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 200,
                      what="200 back in service")
        self.assertEqual(http_get(self.app_port, "/")[1].split()[0], pid)

    def test_warm_pool_then_in_service_without_download(self):
        self.app_port, self.health_port = free_ports(2)
        w = self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art),
                              heartbeat_timeout=30)
        self.f.set_imds(lifecycle_state="Warmed:Running")
        a = self.start()
        self.assertTrue(a.wait_started())
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "warmed",
                      what="the warmed phase")
        self.assertEqual(a.status().returncode, 4)
        self.assertEqual([e["result"] for e in self.lifecycle(w, "complete")], ["CONTINUE"])
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 503, "warm: not serving")
        self.assertEqual(http_get(self.app_port, "/health")[0], None, "warm: app not started")
        gets = len([q for q in self.f.requests(target="aws", service="s3")
                    if q.get("action") == "GetObject"])
        self.assertEqual(gets, 1)
        self.f.clear_requests()
        self.f.set_imds(lifecycle_state=None)   # leaves the pool: target InService
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 200, timeout=30,
                      what="serving after the warm pool")
        # The endpoint turns 200 first; the state says serving once CONTINUE is sent.
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "serving",
                          timeout=10, what="the serving phase in the state")
        st = a.status_json()
        self.assertFalse(st["downloaded"])
        self.assertEqual([q for q in self.f.requests(target="aws", service="s3")
                          if q.get("action") == "GetObject"], [], "no second download")

    def test_a_failed_boot_out_of_the_warm_pool_asks_the_hooks_for_its_abandon(self):
        """Leaving the pool, a boot that fails at its first call (the group's tags
        refused) ABANDONs the launch action of its second launch, with the hooks
        asked afresh: the pool's answer may be days old."""
        self.app_port, self.health_port = free_ports(2)
        w = self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art),
                              heartbeat_timeout=30)
        self.f.set_imds(lifecycle_state="Warmed:Running")
        a = self.start()
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "warmed",
                          what="the warmed phase")
        self.assertEqual([e["result"] for e in self.lifecycle(w, "complete")], ["CONTINUE"])
        self.f.fault("aws", kind="status", code="AccessDenied", status=403, service="autoscaling",
                     action="DescribeTags", count=1)
        self.f.clear_requests()
        self.f.set_imds(lifecycle_state=None)   # leaves the pool: target InService
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "failed", timeout=30,
                          what="the failed phase after the refused DescribeTags")
        actions = [q.get("action") for q in self.f.requests(target="aws", service="autoscaling")]
        self.assertEqual(actions[:1], ["DescribeTags"], f"Auto Scaling calls after the pool: {actions}")
        self.assertIn("DescribeLifecycleHooks", actions, f"Auto Scaling calls after the pool: {actions}")
        self.assertIn("CompleteLifecycleAction", actions, f"Auto Scaling calls after the pool: {actions}")
        self.assertLess(actions.index("DescribeLifecycleHooks"), actions.index("CompleteLifecycleAction"),
                        f"the hooks asked before the completion: {actions}")
        # The fake has no action pending for a second launch out of the pool: it
        # refuses the completion, and records what was asked.
        results = [(e.get("hook"), e.get("result")) for e in self.f.lifecycle()
                   if e.get("instance_id") == w.instance_id and e.get("kind") == "complete"]
        self.assertEqual(results, [(w.hook, "CONTINUE"), (w.hook, "ABANDON")],
                         "the warm launch's CONTINUE, then the failed boot's ABANDON")

    def test_scale_in_into_the_warm_pool_drains_then_boots_again(self):
        """A scale-in with ReuseOnScaleIn sends the instance back to the warm pool
        (target Warmed:*): the agent ignored it and went on serving with 200; it
        drains as for a termination, waits in the pool, and boots again (its
        installed release, the tags read again) when the instance leaves it."""
        w, a = self.boot("[lifecycle]\ndrain = 2\n")
        pid = http_get(self.app_port, "/")[1].split()[0]
        self.f.set_imds(lifecycle_state="Warmed:Running")
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                          what="503 once the instance goes back to the pool")
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "warmed",
                          timeout=30, what="the warmed phase after the drain")
        self.assertIsNone(http_get(self.app_port, "/health")[0], "the app was stopped")
        st = a.status_json()
        self.assertEqual(st["target_state"], "Warmed:Running")
        self.f.clear_requests()
        self.f.set_imds(lifecycle_state=None)   # leaves the pool: target InService
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 200,
                          timeout=30, what="serving again after the pool")
        self.assertNotEqual(http_get(self.app_port, "/")[1].split()[0], pid,
                            "a new app, started by the second boot")
        self.assertEqual([q for q in self.f.requests(target="aws", service="s3")
                          if q.get("action") == "GetObject"], [], "no second download")
        self.assertIsNone(a.proc.poll(), "the agent runs on")

    def test_terminated_from_the_warm_pool_completes_the_terminate_hook(self):
        """An instance shrunk out of a running warm pool (target Warmed:Terminated)
        waits in Warmed:Terminating:Wait for its terminate hook: the agent took the
        target for one more warm state and waited on, so every such termination
        waited out the hook's timeout. Nothing serves there: no drain."""
        self.app_port, self.health_port = free_ports(2)
        w = self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art),
                              terminate_hook=True, heartbeat_timeout=300)
        self.f.set_imds(lifecycle_state="Warmed:Running")
        a = self.start("[lifecycle]\ndrain = 60\n")
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "warmed",
                          what="the warmed phase")
        self.f.set_imds(lifecycle_state="Warmed:Terminated")
        t0 = time.time()
        self.f.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=w.instance_id, ShouldDecrementDesiredCapacity=True)
        self.assertEqual(a.wait_exit(30), 0, a.log_text())
        took = time.time() - t0
        done = self.lifecycle(w, "complete", f"{self.group}-terminate")
        self.assertEqual([e["result"] for e in done], ["CONTINUE"], self.f.lifecycle())
        self.assertLess(took, 20, "no 60 s drain for an instance that never served")
        st = a.status_json()
        self.assertEqual((st["phase"], st["target_state"]), ("stopped", "Warmed:Terminated"))
        self.assertIn("CONTINUE sent for terminate hook", st["lifecycle"])
        self.assertIsNone(http_get(self.app_port, "/health")[0], "no app was started")

    def test_app_turns_unhealthy_then_replaced(self):
        w, a = self.boot()
        open(os.path.join(self.state, "current", "FAIL"), "w").close()
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                      what="503 after failed probes")
        # The endpoint turns 503 just before the state file is saved.
        self.wait_for(lambda: ((a.status_json() or {}).get("app_health") or {}).get(
            "failing", 0) >= 2, 5)
        st = a.status_json()
        self.assertGreaterEqual(st["app_health"]["failing"], 2, st["app_health"])
        self.wait_or_fail(lambda: self.f.requests(target="aws", action="SetInstanceHealth"),
                      timeout=15, what="SetInstanceHealth after the grace")
        health = self.f.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[w.instance_id])["AutoScalingInstances"]
        if health:
            self.assertEqual(health[0]["HealthStatus"].upper(), "UNHEALTHY")

    def test_one_healthy_answer_ends_the_boot_and_serving_watches_on(self):
        # No confirming second probe (it cost a quarter of a real boot, bench/realboot):
        # an app that fails right after its first healthy answer is caught while serving.
        art = make_artifact({"app.py": APP.encode(), "ONCE": b""})
        self.f.put_s3("releases", "app/1.0.1.tar.gz", art)
        self.app_port, self.health_port = free_ports(2)
        w = self.f.make_world(group=self.group, version="1.0.1", sha256=sha256(art),
                              heartbeat_timeout=30)
        a = self.start("[app]\nhealth_timeout = 5\n")
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "serving")
        self.assertEqual([e["result"] for e in self.lifecycle(w)], ["CONTINUE"])
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                          what="503 once the app fails its probes")
        self.assertIn("app unhealthy after 2 failed probes", a.log_text())

    def test_app_recovers_within_grace(self):
        w, a = self.boot("[app]\nunhealthy_grace = 30\n")
        fail = os.path.join(self.state, "current", "FAIL")
        open(fail, "w").close()
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                      what="503 after failed probes")
        os.unlink(fail)
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 200,
                      what="200 after recovery")
        self.assertEqual(self.f.requests(target="aws", action="SetInstanceHealth"), [])
        # The endpoint turns 200 just before the state file is saved.
        self.wait_or_fail(lambda: (a.status_json() or {}).get("app_health", {}).get("failing")
                          == 0, timeout=10, what="the recovery in the state")
        st = a.status_json()
        self.assertGreater(st["app_health"]["failures"], 0)
        self.assertIn("app checks", a.status().stdout)

    def test_refused_continue_is_asked_less_and_less_often(self):
        """A role without autoscaling:CompleteLifecycleAction (an IAM mistake across the
        fleet): the CONTINUE is asked again at growing pauses, not every 5 s for good
        (each ask takes from the account's Auto Scaling quota), and goes out once the
        role may."""
        self.f.fault(kind="status", status=403, code="AccessDenied",
                     message="not authorized to perform: autoscaling:CompleteLifecycleAction",
                     action="CompleteLifecycleAction")
        w, a = self.boot(heartbeat_timeout=300)
        self.assertIn("CONTINUE for launch hook", a.status_json()["lifecycle"])
        self.assertIn("REFUSED by AWS: AccessDenied", a.status_json()["lifecycle"])
        self.f.clear_requests()
        time.sleep(25)
        asks = self.f.requests(target="aws", action="CompleteLifecycleAction")
        # 5 s, then 10 and 20 s apart: 2 in 25 s (every 5 s: 5).
        self.assertLessEqual(len(asks), 3, [round(q["time"], 1) for q in asks])
        self.assertGreaterEqual(len(asks), 1, "asked again at all")
        self.f.clear_faults()
        self.wait_or_fail(lambda: [e["result"] for e in self.lifecycle(w)] == ["CONTINUE"],
                          timeout=45, what="the CONTINUE once the role may")

    def test_refused_continue_in_the_warm_pool_is_asked_less_and_less_often(self):
        # An instance can wait in a warm pool for days: every poll (2 s by default) for
        # good was the same quota drain as serving's every 5 s.
        self.f.fault(kind="status", status=403, code="AccessDenied",
                     message="not authorized to perform: autoscaling:CompleteLifecycleAction",
                     action="CompleteLifecycleAction")
        self.app_port, self.health_port = free_ports(2)
        self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art),
                          heartbeat_timeout=300)
        self.f.set_imds(lifecycle_state="Warmed:Running")
        self.addCleanup(self.f.set_imds, lifecycle_state=None)
        a = self.start()
        self.wait_or_fail(lambda: (a.status_json() or {}).get("phase") == "warmed",
                          what="the warmed phase")
        self.f.clear_requests()
        time.sleep(20)
        asks = self.f.requests(target="aws", action="CompleteLifecycleAction")
        # Its poll is 1 s here: 1, 2, 4 and 8 s apart, 4 in 20 s (every poll: 20).
        self.assertLessEqual(len(asks), 5, [round(q["time"], 1) for q in asks])
        self.assertIn("REFUSED by AWS", a.status_json()["lifecycle"])

    def test_a_failing_api_does_not_blind_the_health_checks(self):
        """The serving loop asks AWS itself (a failed CONTINUE again, SetInstanceHealth,
        CloudWatch): each call retries briefly there, so that the app's probes and the
        target state go on. With [aws] api_timeout = 20 a CONTINUE answered 500 held
        the loop for 20 s at a time, the endpoint saying 200 for a dead app."""
        self.f.fault(kind="status", status=500, code="InternalFailure", message="test",
                     action="CompleteLifecycleAction", for_seconds=90)
        w, a = self.boot("[aws]\napi_timeout = 20\n", heartbeat_timeout=300)
        # The serving loop's first CONTINUE retry comes 5 s in: fail the app while it runs.
        time.sleep(6.5)
        t0 = time.time()
        open(os.path.join(self.state, "current", "FAIL"), "w").close()
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                          timeout=30, what="503 after failed probes")
        self.assertLess(time.time() - t0, 12, "probes held up by the API's retries")

    def test_sigterm_drains_without_lifecycle_call(self):
        w, a = self.boot("[lifecycle]\ndrain = 2\n", terminate_hook=True)
        self.f.clear_requests()
        a.proc.send_signal(signal.SIGTERM)
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                      what="503 on SIGTERM")
        self.assertEqual(http_get(self.app_port, "/health")[0], 200, "app runs while draining")
        self.assertEqual(a.wait_exit(20), 0, a.log_text())
        self.assertEqual(a.status_json()["phase"], "stopped")
        self.assertEqual(http_get(self.app_port, "/health")[0], None)
        self.assertEqual(self.f.requests(target="aws", action="CompleteLifecycleAction"), [],
                         "no terminate action was pending")

    def test_sigterm_answers_503_before_asking_imds(self):
        """On SIGTERM the agent asked IMDS whether the instance was terminating
        before it turned the endpoint 503: a slow IMDS kept the load balancer
        sending for that long to an instance on its way down."""
        w, a = self.boot("[lifecycle]\ndrain = 2\npoll = 60\n")
        serving = next(s["start"] for s in a.status_json()["timeline"] if s["step"] == "serving")

        def polled():
            return any("target-lifecycle-state" in q.get("path", "") and q["start"] >= serving
                       for q in self.f.requests(target="imds"))
        # The serving loop's first read of the target state, the last for 60 s.
        self.assertTrue(self.wait_for(polled, 10), "the serving loop's first read")
        # Held for less than the agent's 3 s IMDS timeout: the read gets its answer.
        self.f.fault("imds", kind="delay", seconds=2.5, path="target-lifecycle-state", count=1)

        def held():
            q = self.f.control("GET", "/imds/inflight")["requests"]
            return any("target-lifecycle-state" in e["path"] for e in q)
        a.proc.send_signal(signal.SIGTERM)
        self.assertTrue(self.wait_for(held, 10), "the stop path's read of the target state")
        # Once the read is under way the endpoint must already say 503.
        code = http_get(self.health_port, "/healthz")[0]
        self.assertTrue(held(), "the read still held after the health check")
        self.assertEqual(code, 503, "the endpoint while IMDS holds the read")
        self.assertEqual(a.wait_exit(30), 0, a.log_text())

    def test_agent_killed_then_restarted_keeps_the_app(self):
        # The test app normally exits with its agent; here it must outlive it, as real apps do.
        w, a = self.boot(env={"ASG_TEST_ORPHAN_OK": "1"})
        before = http_get(self.app_port, "/")[1]
        a.proc.kill()
        a.proc.wait()
        self.assertEqual(http_get(self.app_port, "/")[1], before, "app survives the agent")
        self.f.clear_requests()
        b = self.start()
        self.assertEqual(b.wait_status(timeout=60), 0, b.log_text())
        self.assertEqual(http_get(self.app_port, "/")[1], before, "same app process")
        st = b.status_json()
        self.assertIn("kept running", st["app"])
        self.assertEqual([q for q in self.f.requests(target="aws", service="s3")
                          if q.get("action") == "GetObject"], [])
        self.assertEqual(len(self.lifecycle(w, "complete")), 1, "completed once")
        self.assertEqual(http_get(self.health_port, "/healthz"), (200, "ok\n"))
        # The adopted app is stopped on the way out like our own.
        self.assertEqual(b.stop(), 0)
        self.assertEqual(http_get(self.app_port, "/")[0], None)

    # -- the app's whole process group ends with it ----------------------------------------
    def boot_with_worker(self, worker):
        """Boot an app whose shell starts worker in the background (in the app's process
        group), then execs the app; returns (world, agent, worker pid)."""
        self.app_port, self.health_port = free_ports(2)
        pidfile = os.path.join(self.dir, "worker.pid")
        cmd = (f"sh -c '{worker} & echo $! > {pidfile}; "
               f"exec python3 app.py {self.app_port}'")
        w = self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art))
        a = self.start(f"[app]\ncommand = {cmd}\nstop_timeout = 3\n")
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        with open(pidfile) as fh:
            pid = int(fh.read())
        self.addCleanup(lambda: process_alive(pid) and os.kill(pid, signal.SIGKILL))
        self.assertTrue(process_alive(pid), "the worker runs")
        return w, a, pid

    def test_stop_ends_a_worker_that_ignores_sigterm(self):
        # The group was sent SIGTERM and only its leader waited for: a worker that ignores
        # it outlived the agent, holding the port and the old release (a warm pool's next
        # boot met it).
        w, a, pid = self.boot_with_worker('sh -c "trap \\"\\" TERM; exec sleep 300"')
        self.assertEqual(a.stop(), 0, a.log_text())
        self.assertFalse(process_alive(pid), "SIGKILLed at stop_timeout")
        self.assertIn("process group", a.log_text())

    def test_stop_ends_the_workers_of_a_crashed_app(self):
        # An app found dead was not signalled at all at stop: its workers lived on.
        w, a, pid = self.boot_with_worker("sleep 300")
        os.kill(int(http_get(self.app_port, "/")[1].split()[0]), signal.SIGKILL)
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503, 20,
                          "503 after the app died")
        self.assertTrue(process_alive(pid), "the worker outlives its leader")
        a.stop()
        self.assertFalse(process_alive(pid), "the group's SIGTERM ends it")

    def test_a_second_run_on_the_same_state_dir_is_refused(self):
        # `asg-agent run` by hand on a serving box took over state.json (status then told
        # its failure: the health port in use) while the real agent served on.
        w, a = self.boot()
        b = self.start()
        self.assertEqual(b.wait_exit(20), 1, b.log_text())
        self.assertIn(f"another asg-agent run uses {self.state}", b.log_text())
        st = a.status_json()
        self.assertEqual((st["pid"], st["phase"]), (a.proc.pid, "serving"))
        self.assertEqual(a.status().returncode, 0)
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 200)
        self.assertEqual(a.stop(), 0)

    def test_agent_restarted_after_a_republish_restarts_the_app(self):
        # The version's bytes were republished (its digest tag changed) while the agent
        # was down: the boot fetched them again and swapped them under the old app,
        # then kept that app running, reporting the new digest for the old bytes.
        w, a = self.boot(env={"ASG_TEST_ORPHAN_OK": "1"})
        before = http_get(self.app_port, "/")[1]
        a.proc.kill()
        a.proc.wait()
        art2 = make_artifact({"app.py": APP.encode(), "REPUBLISHED": b"2\n"})
        self.f.put_s3("releases", "app/1.0.0.tar.gz", art2)
        self.addCleanup(self.f.put_s3, "releases", "app/1.0.0.tar.gz", self.art)
        tag = {"Key": "asg-agent:sha256", "Value": sha256(art2)}
        self.f.client("ec2").create_tags(Resources=[w.instance_id], Tags=[tag])
        self.f.client("autoscaling").create_or_update_tags(Tags=[dict(
            tag, ResourceId=self.group, ResourceType="auto-scaling-group",
            PropagateAtLaunch=True)])
        b = self.start()
        self.assertEqual(b.wait_status(timeout=60), 0, b.log_text())
        st = b.status_json()
        self.assertTrue(st["downloaded"], "the republished bytes were fetched")
        self.assertEqual(st["sha256"], sha256(art2))
        self.assertNotEqual(http_get(self.app_port, "/")[1], before,
                            "the app was restarted on the new bytes")
        self.assertNotIn("kept running", st["app"])
        self.assertEqual(b.stop(), 0)

    def test_probe_timeout_lets_a_slow_health_check_boot_and_serve(self):
        """Every probe waited at most 2 s, fixed: an app whose health check takes
        longer (a database round trip under load) could never boot, and a slow
        spell while serving took it out of the load balancer. `[app]
        probe_timeout` sets the wait, and a reload applies it."""
        art = make_artifact({"app.py": APP.encode(), "SLOW": b""})
        self.f.put_s3("releases", "app/1.0.2.tar.gz", art)
        self.app_port, self.health_port = free_ports(2)
        self.f.make_world(group=self.group, version="1.0.2", sha256=sha256(art),
                          heartbeat_timeout=300)
        # Once serving a probe waits at most health_interval: 5 here, not APP_CHECKS' 1.
        # 4 s for a 2.5 s answer: a loaded machine's slower app still fits.
        a = FakeAWSCase.start(self, "[app]\nhealth_interval = 5\nunhealthy_after = 2\n"
                              "unhealthy_grace = 3\nprobe_timeout = 4\nhealth_timeout = 40\n",
                              new_ports=False)
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        time.sleep(13)  # two probes while serving, 2.5 s each, one every 5 s
        self.assertNotIn("app health probe failed", a.log_text())
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 200)
        with open(a.config) as fh:
            text = fh.read()
        with open(a.config, "w") as fh:
            fh.write(text.replace("probe_timeout = 4", "probe_timeout = 1"))
        a.proc.send_signal(signal.SIGHUP)
        self.wait_or_fail(lambda: http_get(self.health_port, "/healthz")[0] == 503,
                          what="503 once each probe may take 1 s")
        self.assertIn("applied [app] probe_timeout", a.log_text())

    def test_sighup_keeps_the_command_lines_verbose(self):
        """-v outlives a reload: the file says info, the flag said debug. The
        reload took the file's level, and the debug lines an operator started
        the agent for stopped at the first SIGHUP."""
        self.app_port, self.health_port = free_ports(2)
        self.f.make_world(group=self.group, version="1.0.0", sha256=sha256(self.art))
        conf = write_config(os.path.join(self.dir, "verbose.conf"), self.state, self.app_port,
                            self.health_port, self.APP_CHECKS)
        with open(conf) as fh:
            text = fh.read()
        self.assertIn("log_level = debug", text)
        with open(conf, "w") as fh:
            fh.write(text.replace("log_level = debug", "log_level = info"))
        a = Agent(conf, self.agent_env(None), os.path.join(self.dir, "verbose.log"), cmd=[AGENT, "-v"])
        self.agents.append(a)
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        refused = "token refused (401)"

        def debug_after(mark):
            # The next IMDS poll (every second) meets a refused token: a debug line.
            self.f.expire_imds_tokens()
            self.wait_or_fail(lambda: refused in a.log_text()[mark:], timeout=15,
                              what=f"the debug line '{refused}' after byte {mark} of the log")

        debug_after(0)
        mark = len(a.log_text())
        a.proc.send_signal(signal.SIGHUP)
        self.wait_or_fail(lambda: "reload: nothing changed" in a.log_text()[mark:],
                          what="the reload's 'nothing changed'")
        debug_after(len(a.log_text()))

    def test_sighup_reloads_what_it_can(self):
        w, a = self.boot()
        with open(a.config) as fh:
            text = fh.read()
        text = text.replace("health_interval = 1", "health_interval = 2")
        text = text.replace(f"state_dir = {self.state}", f"state_dir = {self.state}-x")
        with open(a.config, "w") as fh:
            fh.write(text)
        a.proc.send_signal(signal.SIGHUP)
        self.wait_or_fail(lambda: "reload:" in a.log_text(), what="the reload log")
        time.sleep(0.3)
        log = a.log_text()
        self.assertIn("applied [app] health_interval", log)
        self.assertIn("not applied until the agent restarts: [agent] state_dir", log)
        self.assertEqual(http_get(self.health_port, "/healthz")[0], 200, "still serving")


if __name__ == "__main__":
    unittest.main()
