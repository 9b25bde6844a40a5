"""The store's disk fills up: ingest answers 503 with Retry-After, reads go on, nothing is
half stored, and ingest resumes once there is space again."""

import gzip
import json
import os
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from fixtures.servers import ServerProcess, get_json

PODS = 100


def _payload(node: str, timestamp: float) -> bytes:
    pods = [
        {
            "uid": f"{node}-pod-{i}",
            "name": f"{node}-pod-{i}",
            "namespace": "full",
            "node": node,
            "containers": [],
            "memory_working_set_bytes": i,
        }
        for i in range(PODS)
    ]
    body = {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": 2},
        "node_metrics": {"memory_used_bytes": 1},
        "pods": pods,
    }
    return gzip.compress(json.dumps(body).encode())


def _post(url: str, body: bytes) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url + "/api/ingest",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    directory = tmp_path / "store"
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def test_disk_full_answers_503_keeps_reads_and_recovers(small_disk, tmp_path):
    server = ServerProcess(small_disk, workers=1)
    server.log_path = tmp_path / "server.log"
    server.start()
    try:
        stored, now = [], time.time()
        for number in range(500):
            node = f"node-{number}"
            status, headers, answer = _post(server.url, _payload(node, now))
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
        assert _post(server.url, _payload(refused, now))[0] == 503
        assert server.process.poll() is None

        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
        status, _, answer = _post(server.url, _payload(refused, now))
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
