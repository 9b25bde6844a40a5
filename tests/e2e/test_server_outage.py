"""The server goes away while agents keep sampling, then comes back: everything taken during
the outage is stored, with no gap; past the spool's bound the oldest are dropped, counted and
logged once. `make soak` runs it with a 5-minute outage at a 1 s interval."""

import os
import subprocess
import sys
import time

from fixtures.cases import CASES
from fixtures.nodebuilder import build
from fixtures.servers import ServerProcess, get_json

OUTAGE = float(os.environ.get("CLOUDMON_OUTAGE_SECONDS", "25"))
INTERVAL = float(os.environ.get("CLOUDMON_OUTAGE_INTERVAL", "0.5"))
BUCKET = 10


def _agent(node, url: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudmon", "agent", "--metadata", "none", "--server", url]
        + ["--node-name", "outage", "--proc-root", node.proc_root]
        + ["--cgroup-root", node.cgroup_root, "--rootfs", node.rootfs, *options],
        stderr=subprocess.PIPE,
        text=True,
    )


def _buckets(url: str, start: float, end: float) -> dict[float, float | None]:
    span = f"start={int(start)}&end={int(end)}&step={BUCKET}s&metrics=memory_used_bytes"
    series = get_json(f"{url}/api/nodes/outage?{span}")["series"]
    return dict(zip(series["timestamps"], series["memory_used_bytes"], strict=True))


def test_samples_taken_during_an_outage_are_all_stored(tmp_path):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    server = ServerProcess(tmp_path).start()
    agent = _agent(node, server.url, "--interval", str(INTERVAL))
    try:
        time.sleep(3 * INTERVAL + 1)
        began = time.time()
        server.stop()
        time.sleep(OUTAGE)
        server.start()
        ended = time.time()
        # The agent backs off at most 60 s between attempts.
        deadline = time.monotonic() + 90
        wanted = [b for b in range(int(began // BUCKET) * BUCKET, int(ended), BUCKET)]
        while True:
            stored = _buckets(server.url, began - BUCKET, ended)
            missing = [b for b in wanted if stored.get(b) is None]
            if not missing:
                break
            assert time.monotonic() < deadline, f"buckets never stored: {missing}"
            time.sleep(1)
    finally:
        agent.terminate()
        _, log = agent.communicate(timeout=30)
        server.stop()
    assert "unreachable" in log and "reachable again" in log
    assert "dropped" not in log


def test_past_the_spool_bound_the_oldest_are_dropped_and_logged_once(tmp_path):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    server = ServerProcess(tmp_path).start()
    agent = _agent(node, server.url, "--interval", "0.2", "--spool-limit", "10")
    try:
        time.sleep(1)
        server.stop()
        time.sleep(6)  # about 30 samples for a spool of 10
        server.start()
        # A bucket that begins after the outage: only samples sent since can fill it.
        bucket = (int(time.time()) // BUCKET + 1) * BUCKET
        deadline = time.monotonic() + 90
        while _buckets(server.url, bucket - BUCKET, bucket + BUCKET).get(bucket) is None:
            assert time.monotonic() < deadline, "the agent did not send again"
            time.sleep(0.5)
    finally:
        agent.terminate()
        _, log = agent.communicate(timeout=30)
        server.stop()
    assert log.count("is full") == 1, log
    dropped = [line for line in log.splitlines() if "oldest payloads while full" in line]
    assert len(dropped) == 1, log
    assert int(dropped[0].split("dropped ")[1].split()[0]) >= 10
