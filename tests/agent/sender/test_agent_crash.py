"""kill -9 of an agent with a spool on disk: after a restart it sends what it had spooled,
in order, and no sample twice."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fixtures.cases import CASES
from fixtures.nodebuilder import build
from sender_support import IngestServer


def _spooled(spool: Path) -> list[float]:
    items = sorted(spool.glob("*.json"))
    return [json.loads(p.read_bytes())["timestamp"] for p in items]


def _agent(node, spool: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudmon", "agent", "--interval", "0.2", "--metadata", "none"]
        + ["--server", f"http://127.0.0.1:{port}", "--spool-dir", str(spool)]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs],
        stderr=subprocess.DEVNULL,
    )


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_spool_survives_kill_9_and_is_sent_once(tmp_path, unused_port):
    node = build(CASES["v2-cgroupfs-containerd"](), tmp_path / "node")
    spool = tmp_path / "spool"
    agent = _agent(node, spool, unused_port)  # nothing listens there yet
    try:
        _wait(lambda: spool.is_dir() and len(_spooled(spool)) >= 10)
    finally:
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait()
    before_crash = _spooled(spool)

    server = IngestServer()
    server.port = unused_port
    with server:
        agent = _agent(node, spool, unused_port)
        try:
            _wait(lambda: len(server.accepted) >= len(before_crash) + 3)
        finally:
            agent.terminate()
            agent.wait()
    received = server.timestamps()
    assert received[: len(before_crash)] == before_crash
    assert received == sorted(received)
    assert len(set(received)) == len(received), "a sample was sent twice"
    assert _spooled(spool) == []
