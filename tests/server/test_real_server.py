"""The real server process (gunicorn on a loopback port, a SQLite file) over real HTTP."""

import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from server_payloads import payload, pod

TOKEN = "e2e-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(params=[False, True], ids=["gunicorn", "dev"])
def server(request, tmp_path):
    with running_server(tmp_path, dev=request.param) as base:
        yield base


@contextlib.contextmanager
def running_server(tmp_path, dev: bool):
    port = free_port()
    (tmp_path / "token").write_text(TOKEN + "\n")
    command = [sys.executable, "-m", "cloudmon", "server", "--port", str(port)]
    command += ["--storage", f"sqlite:///{tmp_path}/c.db", "--token-file", f"{tmp_path}/token"]
    command += ["--dev"] if dev else ["--workers", "2"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if request_ok(base + "/readyz"):
                break
        except OSError:
            pass
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield base
    except BaseException:
        print(log_path.read_text(errors="replace")[-20_000:])  # shown with the failure
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    assert code in (0, -signal.SIGTERM)
    assert TOKEN not in log_path.read_text()


def request_ok(url) -> bool:
    return request(url)[0] == 200


def test_ingest_and_query_over_http(server):
    now = time.time()
    body = gzip.compress(
        json.dumps(
            [
                payload(
                    "n1",
                    now - 10,
                    [pod("uid-a", "a", "shop", "web", cpu_cores=0.25)],
                    cpu_cores=1.0,
                ),
                payload(
                    "n1", now, [pod("uid-a", "a", "shop", "web", cpu_cores=0.75)], cpu_cores=2.0
                ),
            ]
        ).encode()
    )
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, answer = request(server + "/api/ingest", body, headers)
    assert status == 401
    headers["Authorization"] = f"Bearer {TOKEN}"
    status, answer = request(server + "/api/ingest", body, headers)
    assert (status, answer["payloads"]) == (200, 2)
    status, node = request(server + "/api/nodes/n1?window=1m&metrics=cpu_cores")
    assert status == 200
    assert node["metrics"] == {"cpu_cores": 2.0}
    assert [v for v in node["series"]["cpu_cores"] if v is not None] == [1.0, 2.0]
    status, web = request(server + "/api/deployments/shop/web")
    assert web["metrics"]["cpu_cores"] == 0.75
    assert request(server + "/api/nodes/ghost")[0] == 404


def test_the_real_agent_reports_this_machine(tmp_path):
    with running_server(tmp_path, dev=False) as base:
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudmon",
                "agent",
                "--server",
                base,
                "--interval",
                "1",
                "--node-name",
                "e2e-node",
                "--metadata",
                "none",
                "--token-file",
                str(tmp_path / "token"),
            ],
            stderr=subprocess.DEVNULL,
        )
        started = time.time()
        deadline = started + 30
        node = None
        while time.time() < deadline:
            time.sleep(0.5)
            status, node = request(base + "/api/nodes/e2e-node?window=1m")
            if status == 200 and node["metrics"]["cpu_cores"] is not None:
                break
        time.sleep(1.5)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        status, node = request(base + f"/api/nodes/e2e-node?start={int(started) - 10}")
    assert status == 200, node
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert node["metrics"]["memory_total_bytes"] == int(meminfo["MemTotal"].split()[0]) * 1024
    assert node["info"]["cpu_count"] == os.cpu_count()
    # /proc/stat counts in ticks of 1/USER_HZ s: over the agent's 1 s interval a busy machine
    # can read up to two ticks per CPU over its CPUs.
    ticks = 2 * os.cpu_count() / os.sysconf("SC_CLK_TCK")
    assert 0 <= node["metrics"]["cpu_cores"] <= os.cpu_count() + ticks
    points = [v for v in node["series"]["memory_used_bytes"] if v is not None]
    elapsed_buckets = (time.time() - started) // 10 + 2
    assert 1 <= len(points) <= elapsed_buckets
    assert node["series"]["timestamps"][-1] >= node["timestamp"]


def test_metrics_count_what_every_worker_ingested(tmp_path):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    with running_server(tmp_path, dev=False) as base:
        for i in range(6):
            body = json.dumps(payload(f"n{i}", time.time(), [])).encode()
            assert request(base + "/api/ingest", body, headers)[0] == 200
        assert request(base + "/api/ingest", b"[", headers)[0] == 400
        texts = []
        for _ in range(4):
            with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
                texts.append(answer.read())
    for text in texts:
        lines = text.decode().splitlines()
        assert "cloudmon_ingested_payloads_total 6.0" in lines
        assert 'cloudmon_rejected_requests_total{endpoint="/api/ingest",status="400"} 1.0' in lines
        assert "cloudmon_ingest_seconds_count 6.0" in lines
    if not shutil.which("promtool"):
        pytest.skip("promtool is missing (apt-get install prometheus): /metrics not linted by it")
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=texts[0], capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
