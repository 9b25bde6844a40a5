"""The store's disk fills up: ingest answers 503 with Retry-After, reads go on, nothing is
half stored, the server says so once, an agent spools meanwhile, and ingest resumes once there
is space again with everything the agent spooled."""

import sqlite3
import subprocess
import sys
import time
import urllib.error

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import build
from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest
from fixtures.tmpfs import small_tmpfs

PODS = 100
BUCKET = 10


def _payload(node: str, timestamp: float) -> bytes:
    return node_payload(node, timestamp, pods=PODS, namespace="full")


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "store", "2m") as directory:
        yield directory


def _server(small_disk, tmp_path) -> ServerProcess:
    server = ServerProcess(small_disk, workers=1)
    server.log_path = tmp_path / "server.log"  # not on the full disk
    return server.start()


def _fill(url: str, now: float):
    """Payloads of new nodes until one is refused: the nodes stored, the samples of one,
    and the refusal (node, status, headers, answer)."""
    stored, samples = [], None
    for number in range(500):
        node = f"node-{number}"
        status, headers, answer = post_ingest(url, _payload(node, now))
        if status != 200:
            return stored, samples, (node, status, headers, answer)
        stored.append(node)
        samples = answer["samples"]
    pytest.fail("the disk never filled up")


def _grow(directory) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(directory)], check=True)


def test_disk_full_answers_503_keeps_reads_and_recovers(small_disk, tmp_path):
    server = _server(small_disk, tmp_path)
    try:
        now = time.time()
        stored, samples, (node, status, headers, answer) = _fill(server.url, now)
        assert status == 503, answer
        assert "disk is full" in answer["error"]
        assert str(small_disk) not in answer["error"]  # no server paths to clients
        assert int(headers["Retry-After"]) > 0
        assert stored, "nothing could be stored at all"
        refused = node

        assert get_json(server.url + "/healthz") == {"status": "ok"}
        nodes = {item["node"] for item in get_json(server.url + "/api/nodes")["items"]}
        assert nodes == set(stored)
        # Still full: refused again, and the server still answers.
        assert post_ingest(server.url, _payload(refused, now))[0] == 503
        assert server.process.poll() is None

        _grow(small_disk)
        status, _, answer = post_ingest(server.url, _payload(refused, now))
        assert status == 200, answer
        assert answer == {"payloads": 1, "samples": samples, "ignored_fields": []}
        nodes = {item["node"] for item in get_json(server.url + "/api/nodes")["items"]}
        assert nodes == {*stored, refused}
        pods = get_json(f"{server.url}/api/nodes/{refused}/pods")["items"]
        assert len(pods) == PODS
    finally:
        server.stop()
    with sqlite3.connect(small_disk / "cloudmon.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _agent_buckets(url: str, start: float, end: float) -> dict[int, float | None]:
    span = f"start={int(start)}&end={int(end)}&step={BUCKET}s&metrics=memory_used_bytes"
    try:
        series = get_json(f"{url}/api/nodes/spooler?{span}")["series"]
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        error.close()
        return {}  # nothing of the node stored yet
    return dict(zip(series["timestamps"], series["memory_used_bytes"], strict=True))


def test_an_agent_spools_while_the_disk_is_full_then_all_is_stored(small_disk, tmp_path):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    server = _server(small_disk, tmp_path)
    agent = None
    try:
        _fill(server.url, time.time())
        # Smaller payloads, such as the agent's, may still fit where a large one did not.
        for pods in (10, 1):
            for number in range(500):
                small = node_payload(
                    f"small-{pods}-{number}", time.time(), pods=pods, namespace="s"
                )
                status = post_ingest(server.url, small)[0]
                assert status in (200, 503)
                if status == 503:
                    break
        began = time.time()
        agent = subprocess.Popen(
            [sys.executable, "-m", "cloudmon", "agent", "--metadata", "none"]
            + ["--server", server.url, "--node-name", "spooler", "--interval", "0.5"]
            + ["--spool-dir", str(tmp_path / "spool"), "--proc-root", node.proc_root]
            + ["--cgroup-root", node.cgroup_root, "--rootfs", node.rootfs],
            stderr=subprocess.PIPE,
            text=True,
        )
        # Refused meanwhile: more agents' requests, and the checkpoint every second.
        for _ in range(5):
            assert post_ingest(server.url, _payload("other", time.time()))[0] == 503
        time.sleep(2 * BUCKET)
        assert not any(_agent_buckets(server.url, began - BUCKET, time.time()).values())
        assert len(list((tmp_path / "spool").iterdir())) > 2 * BUCKET / 0.5 / 2
        _grow(small_disk)
        grown = time.time()
        # The agent waits as the 503's Retry-After (30 s) told it, then sends its spool.
        wanted = range(int(began // BUCKET + 1) * BUCKET, int(grown), BUCKET)
        deadline = time.monotonic() + 60
        while True:
            stored = _agent_buckets(server.url, began - BUCKET, grown + BUCKET)
            missing = [bucket for bucket in wanted if stored.get(bucket) is None]
            if not missing:
                break
            assert time.monotonic() < deadline, f"spooled buckets never stored: {missing}"
            time.sleep(1)
    finally:
        if agent is not None:
            agent.terminate()
            _, agent_log = agent.communicate(timeout=30)
        server.stop()
    assert "answers HTTP 503 (storage: the disk is full" in agent_log, agent_log
    assert "reachable again" in agent_log and "dropped" not in agent_log, agent_log
    log = server.log_path.read_text()
    # Once per time the disk filled up: the large, then the smaller payloads that still fit
    # after, then the agent's; dozens of refused requests in all.
    episodes = log.count("ingest refused until there is space")
    assert 1 <= episodes <= 3, log
    assert log.count("ingest stores again") == episodes, log
    assert log.count("ingest refused until there is space") == episodes, log
    # The master's tasks (the checkpoint, keeping the size) log a failure at most once an
    # episode each, not at every round.
    assert log.count("failed: the disk is full") <= 2 * episodes, log
    assert "Traceback" not in log, log
