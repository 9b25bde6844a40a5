"""Pods that come and go every cycle on a real-cgroup node: the agent keeps going and never
reports a vanished pod with half its numbers."""

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from fixtures.realnode import Container, Pod, RealNode, why_not_runnable

pytestmark = pytest.mark.skipif(why_not_runnable() is not None, reason=str(why_not_runnable()))

CGROUP_FIGURES = ("cpu_usage_seconds_total", "memory_usage_bytes", "memory_working_set_bytes")
CHURN = 6.0  # seconds
CYCLES = 5  # samples


def test_agent_survives_pods_churning(tmp_path):
    node = RealNode(tmp_path)
    # The kubelet makes its kubepods levels before it runs any pod, the agent's too (the agent
    # looks for them when it starts, then every 6 of its samples).
    node.make_cgroup(f"/{node.prefix}/kubepods/besteffort", {})
    log = tmp_path / "agent.log"
    with log.open("wb") as errors:  # the agent writes to its own copy
        agent = subprocess.Popen(
            [sys.executable, "-m", "cloudmon", "agent", "--interval", "0.1", "--output", "-"]
            + ["--metadata", "none", "--node-name", "churn"],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(agent.stdout), daemon=True)
    reader.start()
    started: list[str] = []
    try:
        # The churn begins once the agent samples (its start may take seconds on a busy
        # machine) and lasts CHURN seconds and at least CYCLES of its samples.
        deadline = time.monotonic() + 60
        while not lines:
            assert agent.poll() is None, "the agent stopped before its first sample"
            assert time.monotonic() < deadline, "the agent never sampled"
            time.sleep(0.05)
        first = len(lines)
        living: list[tuple[Pod, int]] = []  # with the number of samples before it started
        until = time.monotonic() + CHURN
        while time.monotonic() < until or len(lines) - first < CYCLES:
            assert time.monotonic() < deadline + CHURN, f"{len(lines) - first} samples"
            pod = Pod(f"churn-{len(started)}", "churn", "besteffort", {}, [])
            pod.containers = [Container("sleeper", ["sleep", "60"])]
            node.start(pod)
            started.append(pod.uid)
            living.append((pod, len(lines)))
            # The oldest goes once the agent has begun a sample after it started, and ended
            # it: a slow agent still meets each pod, whichever moment of its sample it goes.
            while len(living) > 3 and len(lines) - living[0][1] >= 2:
                node.stop(living.pop(0)[0])
            time.sleep(0.03)
        assert agent.poll() is None, "the agent stopped while pods churned"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        reader.join(timeout=30)
        agent.stdout.close()
        node.close()
    assert agent.returncode == 0
    assert "Traceback" not in log.read_text()
    payloads = [json.loads(line) for line in lines]
    churned = [p for payload in payloads for p in payload["pods"] if p["uid"] in started]
    assert churned, "no churning pod was ever seen"
    for pod in churned:
        missing = [name for name in CGROUP_FIGURES if pod[name] is None]
        assert not missing, f"pod {pod['uid']} reported without {missing}"
