"""Soak: 200 simulated nodes of 50 pods each every 10 s (real HTTP, separate processes) and
readers of every GET endpoint, against `cloudmon server` on a SQLite file with a short raw
retention: no error, the server's memory flat after warm-up, ingest latency's p99, and raw
samples kept no longer than retention allows. CLOUDMON_SOAK_SECONDS sets its length
(`make soak`: 600 s); the figures are printed and written to soak-figures.txt."""

import gzip
import http.client
import importlib.util
import json
import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
from fixtures.servers import ServerProcess, get_json

from cloudmon.storage.sqlite.upkeep import ROLLUP_GRACE

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "server.py"
_spec = importlib.util.spec_from_file_location("bench_server", _BENCH)
bench = sys.modules.setdefault("bench_server", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench)

SECONDS = float(os.environ.get("CLOUDMON_SOAK_SECONDS", "30"))
NODES, PODS, INTERVAL, BUCKET = 200, 50, 10.0, 10
NAMESPACES = NODES * PODS // 500
SENDERS, READERS = 4, 2
RAW_RETENTION = 60  # seconds
UPKEEP_EVERY = 10  # seconds
# Raw buckets are deleted once past retention and rolled up into their minute, which is
# rolled up ROLLUP_GRACE after it ends, at the next upkeep.
RAW_BUCKETS_ALLOWED = (RAW_RETENTION + ROLLUP_GRACE + 60 + UPKEEP_EVERY) // BUCKET + 1
SAMPLE_EVERY = 5.0  # seconds between readings of the server's memory and store


def _send(args) -> tuple[list[float], list[str]]:
    """Each of its nodes' payloads every INTERVAL s, spread over the interval: latencies and
    errors."""
    url, first, count, until = args
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    random.seed(first)
    templates = {
        n: orjson.dumps(bench.node_body(n, 0.0, PODS, NAMESPACES))
        for n in range(first, first + count)
    }
    latencies, errors = [], []
    start = time.time()
    cycle = 0
    while True:
        for index, (node, template) in enumerate(templates.items()):
            due = start + cycle * INTERVAL + index * INTERVAL / count
            if due >= until:
                return latencies, errors
            time.sleep(max(0.0, due - time.time()))
            body = gzip.compress(template.replace(b'"timestamp":0.0', b'"timestamp":%.3f' % due))
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            asked = time.monotonic()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                connection.request("POST", "/api/ingest", body, headers)
                answer = connection.getresponse()
                text = answer.read()
                if answer.status != 200:
                    errors.append(f"node-{node}: {answer.status} {text[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                errors.append(f"node-{node}: {error!r}")
            finally:
                connection.close()
            latencies.append(time.monotonic() - asked)
        cycle += 1


def _read(args) -> tuple[int, list[str]]:
    """GETs of `paths` in turn until `until`: how many, and the errors."""
    url, paths, until = args
    done, errors = 0, []
    while time.time() < until:
        for path in paths:
            try:
                with urllib.request.urlopen(url + path, timeout=30) as answer:
                    json.loads(answer.read())
            except Exception as error:  # every failure is a finding
                errors.append(f"{path}: {error!r}")
            done += 1
        time.sleep(0.2)
    return done, errors


def _paths(url: str) -> list[str]:
    """Every GET endpoint of the API, its names filled in, latest and over a window."""
    pod = get_json(url + "/api/pods")["items"][0]
    names = {
        "node": pod["node"],
        "namespace": pod["namespace"],
        "pod": pod["name"],
        "name": pod["deployment"],
        "kind": pod["workload_kind"],
        "container": "container-0",  # each simulated pod's one container (bench/server.py)
    }
    paths = []
    for path, methods in get_json(url + "/openapi.json")["paths"].items():
        if not path.startswith("/api/") or "get" not in methods:
            continue
        filled = path.format(**names)
        paths += [filled, filled + "?window=5m"]
    return paths


def _pss_bytes(pid: int) -> int:
    """Proportional memory of a process and its children (gunicorn's workers): pages they
    share (forked from the master) count once."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    total = 0
    for process in pids:
        for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def _raw_buckets(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(DISTINCT bucket) FROM node_sample").fetchone()[0]


@pytest.mark.timeout(SECONDS + 300)
def test_soak(tmp_path):
    server = ServerProcess(tmp_path)
    database = tmp_path / "cloudmon.db"
    server.run_server(
        storage=f"sqlite:///{database}",
        workers=3,
        threads=4,
        retention={10: RAW_RETENTION},
        upkeep_every=UPKEEP_EVERY,
    )
    server.start()
    try:
        began = time.time()
        until = began + SECONDS
        per = NODES // SENDERS
        with multiprocessing.Pool(SENDERS + READERS) as pool:
            senders = pool.map_async(
                _send, [(server.url, n * per, per, until) for n in range(SENDERS)]
            )
            time.sleep(INTERVAL + 1)  # every node has reported once
            paths = _paths(server.url)
            readers = pool.map_async(_read, [(server.url, paths, until) for _ in range(READERS)])
            curve = []  # (seconds, server PSS, file bytes, raw buckets)
            while time.time() < until:
                curve.append(
                    (
                        time.time() - began,
                        _pss_bytes(server.process.pid),
                        database.stat().st_size + Path(f"{database}-wal").stat().st_size,
                        _raw_buckets(database),
                    )
                )
                time.sleep(SAMPLE_EVERY)
            sent = senders.get(timeout=120)
            read = readers.get(timeout=120)
    finally:
        server.stop()
    latencies = sorted(latency for part, _ in sent for latency in part)
    errors = [error for _, part in sent for error in part] + [e for _, p in read for e in p]
    warm = [point for point in curve if point[0] >= min(60.0, SECONDS / 3)]
    # The highest reading of the first and of the last third after warm-up: the readers'
    # answers make memory swing by hundreds of MiB from one reading to the next.
    third = max(1, len(warm) // 3)
    start_pss = max(point[1] for point in warm[:third])
    end_pss = max(point[1] for point in warm[-third:])
    mib = 1 << 20
    figures = [
        f"soak: {SECONDS:.0f} s, {NODES} nodes x {PODS} pods every {INTERVAL:.0f} s,"
        f" {len(latencies)} payloads, {sum(n for n, _ in read)} reads of {len(paths)} URLs,"
        f" {len(errors)} errors (shared 2-core machine)",
        f"ingest latency: p50 {1000 * latencies[len(latencies) // 2]:.1f} ms,"
        f" p99 {1000 * statistics.quantiles(latencies, n=100)[98]:.1f} ms,"
        f" max {1000 * latencies[-1]:.1f} ms",
        f"server PSS (master + workers) after warm-up, highest of the first and last third:"
        f" {start_pss / mib:.1f} MiB at the start, {end_pss / mib:.1f} MiB at the end",
        "curve (s, PSS MiB, file+WAL MiB, raw buckets): "
        + ", ".join(f"({t:.0f}, {r / mib:.0f}, {f / mib:.1f}, {b})" for t, r, f, b in curve),
        f"raw buckets stored at most {max(p[3] for p in curve)}; retention allows"
        f" {RAW_BUCKETS_ALLOWED} ({RAW_RETENTION} s raw, rolled up {ROLLUP_GRACE} s late)",
    ]
    (tmp_path / "soak-figures.txt").write_text("\n".join(figures) + "\n")
    print("\n" + "\n".join(figures))
    assert not errors, errors[:20]
    assert len(latencies) >= NODES * (int(SECONDS // INTERVAL) - 1)  # senders start late
    assert max(point[3] for point in curve) <= RAW_BUCKETS_ALLOWED
    if SECONDS >= 300:  # a shorter run is all warm-up
        assert end_pss <= start_pss * 1.2 + 32 * mib, "the server's memory grew after warm-up"
