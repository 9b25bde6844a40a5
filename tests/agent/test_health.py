"""`cloudmon agent --health-file` touches it every cycle; `cloudmon health` says whether the
agent completed a cycle recently (the DaemonSet's liveness probe and the image's HEALTHCHECK)."""

import os
import subprocess
import sys
import time

from click.testing import CliRunner
from fixtures.cases import CASES
from fixtures.nodebuilder import build

from cloudmon.cli import main


def _health(path, max_age="60"):
    return CliRunner().invoke(main, ["health", "--health-file", str(path), "--max-age", max_age])


def test_health_follows_the_agents_cycles(tmp_path, unused_port):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    health_file = tmp_path / "healthy"
    assert _health(health_file).exit_code == 1  # never ran
    agent = subprocess.Popen(
        [sys.executable, "-m", "cloudmon", "agent", "--interval", "0.2", "--metadata", "none"]
        + ["--server", f"http://127.0.0.1:{unused_port}", "--health-file", str(health_file)]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not health_file.exists():
            assert time.monotonic() < deadline, "the agent never touched its health file"
            time.sleep(0.1)
        # Healthy though the server is down: collecting is what the agent must keep doing.
        assert _health(health_file).exit_code == 0
    finally:
        agent.terminate()
        agent.wait()
    stale = time.time() - 120
    os.utime(health_file, (stale, stale))
    result = _health(health_file)
    assert result.exit_code == 1
    assert "no completed cycle" in result.output
