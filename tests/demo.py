#!/usr/bin/env python3
"""make demo: boot asg-agent against the local fake AWS and print `asg-agent status`.

A fake world (moto with signature checks on, an IMDSv2 fake, an S3 bucket with a
release) is built on loopback; the real binary boots through it: IMDS, the
group's version tag, the S3 artifact verified by its sha256 tag, the app
started and healthy, the launch lifecycle hook completed with CONTINUE.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "lib"), os.path.join(HERE, "fakeaws")]

from bootlib import Agent, free_ports, http_get, make_artifact, sha256, write_config  # noqa: E402
from harness import FakeAWS  # noqa: E402


def main():
    work = tempfile.mkdtemp(prefix="asg-demo-")
    version = "1.4.2"
    art = make_artifact()
    print(f"demo: fake AWS starting (moto with SigV4 + IAM checks, IMDSv2 fake) in {work}")
    with FakeAWS(auth=True) as f:
        f.put_s3("releases", f"app/{version}.tar.gz", art)
        world = f.make_world(group="web-blue", version=version, sha256=sha256(art))
        print(f"demo: group {world.group}, instance {world.instance_id} in "
              f"{f.instance_state(world.instance_id)}, artifact s3://releases/app/{version}.tar.gz")
        app_port, health_port = free_ports(2)
        cfg = write_config(os.path.join(work, "agent.conf"), os.path.join(work, "state"),
                           app_port, health_port, "[agent]\nlog_level = info\n")
        agent = Agent(cfg, f.agent_env(), os.path.join(work, "agent.log"))
        code = agent.wait_status(timeout=90)
        code_h, body = http_get(health_port, "/healthz")
        print(f"demo: ELB health endpoint answers {code_h} {body.strip()}; "
              f"instance now {f.instance_state(world.instance_id)}; lifecycle calls: "
              f"{[(c.get('result'), c.get('hook')) for c in f.lifecycle() if c.get('kind', 'complete') == 'complete']}")
        print("\ndemo: agent log:")
        print(agent.log_text(), end="")
        print("\n$ asg-agent status")
        print(agent.status().stdout, end="")
        agent.stop()
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
