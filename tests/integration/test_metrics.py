"""The Prometheus page at [health] metrics_path, scraped during a boot, a drain and a
failure, each scrape checked by `promtool check metrics` and read back. Real binary, fake
AWS with signature checks on."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from bootlib import http_get, make_artifact
from fakecase import FakeAWSCase
from test_life import APP

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): value} of a text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def key(name, labels):
    """The key of parse()'s dict for a metric name and its labels (a dict)."""
    return (name, tuple(sorted(labels.items())))


@unittest.skipUnless(shutil.which("promtool"), "promtool not installed (Debian: prometheus)")
class Metrics(FakeAWSCase):
    prefix = "met"
    stop_timeout = 15
    CHECKS = "[app]\nhealth_interval = 1\nunhealthy_after = 2\nreplace_unhealthy = no\n"

    def boot(self, extra="", wait=True):
        """The test app (its health fails while the file FAIL exists) booted; (world, agent)."""
        w, _ = self.world(art=make_artifact({"app.py": APP.encode()}))
        a = self.start(self.CHECKS + extra)
        if wait:
            self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        return w, a

    def scrape(self):
        """The page, checked by promtool; returns it parsed."""
        code, text = http_get(self.health_port, "/metrics")
        self.assertEqual(code, 200, text)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"promtool check metrics:\n{r.stdout}{r.stderr}"
                         f"\n--- page\n{text}")
        return parse(text)

    def scrape_until(self, name, least, timeout=5, **labels):
        """The page once its metric name{labels} is at least least: a tick re-renders it
        about once a second, later on a loaded machine. The last page seen if never."""
        deadline = time.time() + timeout
        while True:
            m = self.scrape()
            v = m.get(key(name, labels))
            if (v is not None and v >= least) or time.time() > deadline:
                return m
            time.sleep(0.1)

    def value(self, m, name, **labels):
        k = key(name, labels)
        self.assertIn(k, m, f"{k} not on the page: {sorted(m)}")
        return m[k]

    def test_during_boot_and_serving(self):
        # Hidden until the page has been seen during the step, on a loaded machine too.
        self.f.tag_delay("asg-agent:version", -1)
        w, a = self.boot(wait=False)
        self.assertTrue(self.wait_for(lambda: http_get(self.health_port, "/metrics")[0] == 200
                                      and a.status_json() is not None
                                      and a.status_json()["phase"] == "waiting-for-tag", 20))
        # A tick renders the page again while the step runs.
        m = self.scrape_until("asg_agent_boot_step_seconds", 0.6, step="version-tag")
        self.f.tag_delay("asg-agent:version", 0)
        self.assertEqual(self.value(m, "asg_agent_phase", phase="waiting-for-tag"), 1)
        self.assertEqual(self.value(m, "asg_agent_phase", phase="serving"), 0)
        self.assertEqual(self.value(m, "asg_agent_health_endpoint_healthy"), 0)
        self.assertGreater(self.value(m, "asg_agent_boot_step_seconds", step="version-tag"),
                           0.5, "the running step's seconds so far")
        self.assertEqual(a.wait_status(timeout=60), 0, a.log_text())
        # The milestones before the agent are read just after serving begins.
        self.assertTrue(self.wait_for(lambda: "instance_launch" in http_get(
            self.health_port, "/metrics")[1], 10), a.log_text())
        m = self.scrape()
        st = a.status_json()
        self.assertEqual(self.value(m, "asg_agent_phase", phase="serving"), 1)
        self.assertEqual(self.value(m, "asg_agent_health_endpoint_healthy"), 1)
        self.assertEqual(self.value(
            m, "asg_agent_info", version="1.0.0", instance=w.instance_id, group=self.group,
            region=st["region"], agent_version=subprocess.run(
                [a.cmd[0], "version"], capture_output=True, text=True
            ).stdout.split()[1]), 1)
        for ms in ("agent_start", "serving", "continue_sent", "kernel_start",
                   "instance_launch"):
            self.assertAlmostEqual(self.value(m, "asg_agent_milestone_timestamp_seconds",
                                              milestone=ms), st["milestones"][ms],
                                   delta=0.001)
        self.assertAlmostEqual(
            self.value(m, "asg_agent_milestone_seconds", milestone="serving"),
            st["milestones"]["serving"] - st["milestones"]["instance_launch"], delta=0.001)
        self.assertEqual(self.value(m, "asg_agent_aws_api_calls_total",
                                    action="CompleteLifecycleAction"), 1)
        self.assertEqual(self.value(m, "asg_agent_aws_api_throttled_total",
                                    action="CompleteLifecycleAction"), 0)
        for step in ("imds", "version-tag", "fetch", "install", "start", "health"):
            want = next(s["seconds"] for s in st["timeline"] if s["step"] == step)
            self.assertAlmostEqual(self.value(m, "asg_agent_boot_step_seconds", step=step),
                                   want, delta=0.001, msg=step)
        self.assertEqual(self.value(m, "asg_agent_lb_healthy_threshold"), 5)
        self.assertAlmostEqual(self.value(m, "asg_agent_imds_clock_offset_seconds"),
                               st["imds_clock_offset"], delta=0.001)

    def test_during_drain(self):
        w, a = self.boot("[lifecycle]\ndrain = 4\n")
        a.proc.send_signal(signal.SIGTERM)
        self.assertTrue(self.wait_for(lambda: a.status_json()["phase"] == "draining", 10))
        m = self.scrape_until("asg_agent_boot_step_seconds", 0.6, step="drain")
        self.assertEqual(self.value(m, "asg_agent_phase", phase="draining"), 1)
        self.assertEqual(self.value(m, "asg_agent_health_endpoint_healthy"), 0)
        left = self.value(m, "asg_agent_drain_remaining_seconds")
        self.assertTrue(0 < left < 4, f"drain seconds left {left}, want between 0 and 4")
        self.assertGreater(self.value(m, "asg_agent_boot_step_seconds", step="drain"), 0.5)
        self.assertEqual(a.wait_exit(20), 0, a.log_text())

    def test_during_failure(self):
        w, a = self.boot()
        open(os.path.join(self.state, "current", "FAIL"), "w").close()
        self.assertTrue(self.wait_for(
            lambda: http_get(self.health_port, "/healthz")[0] == 503, 15))
        m = self.scrape_until("asg_agent_app_probes_failing", 2)
        self.assertEqual(self.value(m, "asg_agent_health_endpoint_healthy"), 0)
        self.assertEqual(self.value(m, "asg_agent_phase", phase="serving"), 1)
        self.assertGreaterEqual(self.value(m, "asg_agent_app_probe_failures_total"), 2)
        self.assertGreaterEqual(self.value(m, "asg_agent_app_probes_failing"), 2)
        self.assertGreaterEqual(self.value(m, "asg_agent_app_probes_total"),
                                self.value(m, "asg_agent_app_probe_failures_total"))
        self.assertGreater(self.value(m, "asg_agent_health_endpoint_requests_total"), 0)

    def test_off(self):
        w, a = self.boot("[health]\nmetrics_path =\n")
        self.assertEqual(http_get(self.health_port, "/metrics")[0], 404)
        self.assertEqual(http_get(self.health_port, "/healthz"), (200, "ok\n"))


if __name__ == "__main__":
    unittest.main()
