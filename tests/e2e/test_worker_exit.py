"""A gunicorn worker that leaves (a restart, a crash) does not take the server down: the
master starts another and every endpoint goes on answering."""

import os
import signal
import subprocess
import time
import urllib.request

from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest


def _workers(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_server_survives_a_worker_leaving(tmp_path):
    server = ServerProcess(tmp_path, workers=2).start()
    try:
        deadline = time.monotonic() + 20
        while len(workers := _workers(server.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        os.kill(workers[0], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while workers[0] in _workers(server.process.pid) or len(_workers(server.process.pid)) < 2:
            assert server.process.poll() is None, server.log_path.read_text()
            assert time.monotonic() < deadline, "no worker took the place of the one that left"
            time.sleep(0.1)
        for _ in range(4):  # whichever worker answers
            now = time.time()
            assert post_ingest(server.url, node_payload("n1", now, pods=1, namespace="a"))[0] == 200
            assert "cloudmon_ingested_payloads" in _metrics(server.url)
            assert get_json(server.url + "/api/nodes")["items"]
        assert server.process.poll() is None
    finally:
        server.stop()
    assert server.process.returncode == 0


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        return answer.read().decode()
