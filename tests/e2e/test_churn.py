"""Pods that come and go every cycle on a real-cgroup node: the agent keeps going and never
reports a vanished pod with half its numbers."""

import json
import signal
import subprocess
import sys
import time

import pytest
from fixtures.realnode import Container, Pod, RealNode, why_not_runnable

pytestmark = pytest.mark.skipif(why_not_runnable() is not None, reason=str(why_not_runnable()))

CGROUP_FIGURES = ("cpu_usage_seconds_total", "memory_usage_bytes", "memory_working_set_bytes")


def test_agent_survives_pods_churning(tmp_path):
    node = RealNode(tmp_path)
    agent = subprocess.Popen(
        [sys.executable, "-m", "cloudmon", "agent", "--interval", "0.1", "--output", "-"]
        + ["--metadata", "none", "--node-name", "churn"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started: list[str] = []
    try:
        living: list[Pod] = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            pod = Pod(f"churn-{len(started)}", "churn", "besteffort", {}, [])
            pod.containers = [Container("sleeper", ["sleep", "60"])]
            node.start(pod)
            started.append(pod.uid)
            living.append(pod)
            if len(living) > 3:
                node.stop(living.pop(0))
            time.sleep(0.03)
        assert agent.poll() is None, "the agent stopped while pods churned"
    finally:
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
        node.close()
    assert agent.returncode == 0
    assert b"Traceback" not in err
    payloads = [json.loads(line) for line in out.splitlines()]
    assert len(payloads) >= 5
    churned = [p for payload in payloads for p in payload["pods"] if p["uid"] in started]
    assert churned, "no churning pod was ever seen"
    for pod in churned:
        missing = [name for name in CGROUP_FIGURES if pod[name] is None]
        assert not missing, f"pod {pod['uid']} reported without {missing}"
