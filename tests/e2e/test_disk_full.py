"""The store's disk fills up: ingest answers 503 with Retry-After, reads go on, nothing is
half stored, and ingest resumes once there is space again."""

import sqlite3
import subprocess
import time

import pytest
from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest
from fixtures.tmpfs import small_tmpfs

PODS = 100


def _payload(node: str, timestamp: float) -> bytes:
    return node_payload(node, timestamp, pods=PODS, namespace="full")


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "store", "2m") as directory:
        yield directory


def test_disk_full_answers_503_keeps_reads_and_recovers(small_disk, tmp_path):
    server = ServerProcess(small_disk, workers=1)
    server.log_path = tmp_path / "server.log"
    server.start()
    try:
        stored, now = [], time.time()
        for number in range(500):
            node = f"node-{number}"
            status, headers, answer = post_ingest(server.url, _payload(node, now))
            if status != 200:
                break
            stored.append(node)
            samples = answer["samples"]
        else:
            pytest.fail("the disk never filled up")
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

        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
        status, _, answer = post_ingest(server.url, _payload(refused, now))
        assert status == 200, answer
        assert answer == {"payloads": 1, "samples": samples}
        nodes = {item["node"] for item in get_json(server.url + "/api/nodes")["items"]}
        assert nodes == {*stored, refused}
        pods = get_json(f"{server.url}/api/nodes/{refused}/pods")["items"]
        assert len(pods) == PODS
    finally:
        server.stop()
    with sqlite3.connect(small_disk / "cloudmon.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
