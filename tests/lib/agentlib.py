"""Helpers the integration tests share: where the binary is, running it, temp dirs."""
import os
import shutil
import subprocess
import tempfile

AGENT = os.environ.get("ASG_AGENT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "asg-agent"))
SRCDIR = os.environ.get("ASG_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def clean_env(extra=None):
    """The environment for the agent: no AWS_* from the caller, no IMDS by accident."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("JOURNAL_STREAM", None)
    # Never let a test reach the real metadata address: point IMDS at a closed port.
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9"
    if extra:
        env.update(extra)
    return env


def run(args, env=None, timeout=60, config=None, input=None):
    """Run asg-agent; returns CompletedProcess with text stdout/stderr."""
    cmd = [AGENT]
    if config is not None:
        cmd += ["-c", config]
    cmd += list(args)
    return subprocess.run(cmd, env=clean_env(env), capture_output=True, text=True,
                          timeout=timeout, input=input)


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="asg-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path

