"""A server with --retention-size below its volume's size, fed past that size several
times: the store's files stay within it, ingest answers 200 throughout, the newest samples
are all there and the oldest are gone, and the server says so once per episode."""

import gzip
import itertools
import json
import random
import sqlite3
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from fixtures.servers import ServerProcess, get_json, post_ingest
from fixtures.tmpfs import small_tmpfs

from cloudmon.metrics import Scope, metrics_for
from cloudmon.storage.model import INTEGER_COLUMNS
from cloudmon.storage.sqlite import sealed

MIB = 1 << 20
VOLUME = "64m"
SIZE = 40 * MIB
NODES = 2
PODS = 28  # of 35 figures and a container of 19: about the bytes of 50 when they had 17 and 13
BATCH = 6  # consecutive samples of a node in one request, as a draining spool sends them
# Seven and a half hours of 10 s samples, about 16 MiB an hour of rows and rollups: past
# SIZE three times; an hour of 1 min rollups (not deleted before their hour is rolled up)
# takes 7 MiB of it.
BUCKETS = 2700
BUCKET = 10
HOURS = "SELECT DISTINCT bucket FROM node_rollup WHERE res = 3600"
POD_METRICS = [m.name for m in metrics_for(Scope.POD)]
CONTAINER_METRICS = [m.name for m in metrics_for(Scope.CONTAINER)]


def _sample(rng: random.Random, node: str, timestamp: float) -> dict:
    def figures(names):
        values = {name: rng.random() * 1e6 for name in names}
        return {n: int(v) if n in INTEGER_COLUMNS else v for n, v in values.items()}

    return {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": 2},
        "node_metrics": {"memory_used_bytes": rng.randrange(1 << 30)},
        "pods": [
            {
                "uid": f"{node}-pod-{i}",
                "name": f"{node}-pod-{i}",
                "namespace": f"ns-{i % 5}",
                "node": node,
                **figures(POD_METRICS),
                "containers": [
                    {"id": f"{node}-c-{i}", "name": "app", **figures(CONTAINER_METRICS)}
                ],
            }
            for i in range(PODS)
        ],
    }


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith("cloudmon_storage")
    }


@pytest.fixture
def volume(tmp_path):
    with small_tmpfs(tmp_path / "volume", VOLUME) as directory:
        yield directory


@pytest.mark.timeout(900)
def test_the_store_stays_within_its_size_and_keeps_ingesting(volume, tmp_path):
    database = volume / "cloudmon.db"
    server = ServerProcess(volume, workers=2)
    server.log_path = tmp_path / "server.log"
    server.run_server(
        storage=f"sqlite:///{database}", workers=2, retention_size=SIZE, upkeep_every=2
    )
    server.start()
    # Hours that ended hours ago: late, as spools send them, and rolled up as they come.
    first = (int(time.time()) - 23 * 3600) // 3600 * 3600
    largest, curve, done = [0], [], threading.Event()

    def watch():
        began = time.monotonic()
        while not done.wait(0.2):
            size = sum(p.stat().st_size for p in (database, volume / "cloudmon.db-wal"))
            largest[0] = max(largest[0], size)
            curve.append((time.monotonic() - began, size))

    def send(node: str) -> list[int]:
        rng = random.Random(node)
        statuses = []
        for start in range(0, BUCKETS, BATCH):
            batch = [_sample(rng, node, first + (start + k) * BUCKET + 1) for k in range(BATCH)]
            status, _, answer = post_ingest(server.url, gzip.compress(json.dumps(batch).encode()))
            statuses.append(status)
            assert status == 200, answer
        return statuses

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        began = time.monotonic()
        with ThreadPoolExecutor(NODES) as pool:
            statuses = [s for part in pool.map(send, [f"n{i}" for i in range(NODES)]) for s in part]
        took = time.monotonic() - began
        time.sleep(5)  # the last rollups and checks
        figures = _metrics(server.url)
        newest = first + (BUCKETS - 1) * BUCKET
        # Every minute was rolled up (all lie hours back), so the raw samples of all went
        # first: the newest minutes are answered from their 1 min rollups, all there.
        span = f"start={newest - 590}&end={newest}&step=60s&metrics=memory_used_bytes"
        recent = get_json(f"{server.url}/api/nodes/n0?{span}")["series"]["memory_used_bytes"]
    finally:
        done.set()
        watcher.join()
        server.stop()
    log = server.log_path.read_text()
    print(
        f"\nretention size: {NODES} nodes x {PODS} pods, {BUCKETS} buckets sent in {took:.0f} s;"
        f" file+WAL at most {largest[0] / MIB:.1f} MiB of {SIZE / MIB:.0f} MiB; curve (s, MiB): "
        + ", ".join(f"({t:.0f}, {s / MIB:.1f})" for t, s in curve[::25])
        + f"; /metrics: {figures}"
    )
    assert set(statuses) == {200}
    assert largest[0] <= SIZE
    assert figures["cloudmon_storage_size_deleted_rows_total"] > 0
    assert figures["cloudmon_storage_retention_size_bytes"] == SIZE
    assert 'cloudmon_storage_tier_bytes{tier="raw"}' in figures
    assert None not in recent  # the newest minutes are all there
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # what the store holds, in its head tables or sealed
        oldest, _ = sealed.held(conn, "node_sample", BUCKET)
        oldest_minute, _ = sealed.held(conn, "node_rollup", 60)
        hours = {bucket for (bucket,) in conn.execute(HOURS)}
        hours |= {b for _, b in sealed.sealed_rows(conn, "node_rollup", 3600, 0, newest)}
    # The oldest went: raw samples first, all of them where the upkeep rolled every minute up
    # before the store reached its size again; then the oldest minutes.
    assert oldest is None or oldest > first + 3600
    assert oldest_minute is not None and oldest_minute > first
    assert len(hours) == -(-BUCKETS * BUCKET // 3600)  # the coarsest, smallest tier: all there
    # Said once per episode: when it starts, then when it ends, never twice in a row.
    said = [
        "start" if "deleting the oldest data" in line else "end"
        for line in log.splitlines()
        if "deleting the oldest data" in line or "within its --retention-size" in line
    ]
    assert said[0] == "start" and len(said) > 2, log
    assert all(a != b for a, b in itertools.pairwise(said)), log
    assert "Traceback" not in log, log
