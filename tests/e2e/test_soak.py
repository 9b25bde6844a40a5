"""Soak: 200 simulated nodes of 50 pods each every 10 s (real HTTP, separate processes) and
readers of every GET endpoint, against `cloudmon server` on a SQLite file with a short raw
retention. Within the run: no error (a payload shed with 503 and Retry-After is not one, but
few may be), ingest latency's p99 within the agent's timeout, raw samples deleted once past
retention and rolled up, never held longer than that allows, and the server's memory not
growing over the run's second half. CLOUDMON_SOAK_SECONDS sets its length (240 s by default,
`make soak`: 600 s); the figures are printed and written to soak-figures.txt."""

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

SECONDS = float(os.environ.get("CLOUDMON_SOAK_SECONDS", "240"))
NODES, PODS, INTERVAL, BUCKET = 200, 50, 10.0, 10
NAMESPACES = NODES * PODS // 500
SENDERS, READERS = 4, 2
RAW_RETENTION = 60  # seconds
UPKEEP_EVERY = 10  # seconds
# A raw bucket is deleted, at an upkeep round, once it is past the retention and its minute
# is rolled up (ROLLUP_GRACE after the minute ends): it is held for the longer of the two,
# until the next round. Rounds come UPKEEP_EVERY s after the previous one ends; a round on a
# busy machine may end this much later.
UPKEEP_LATE = 30  # seconds
RAW_SECONDS_HELD = max(RAW_RETENTION + BUCKET, 60 + ROLLUP_GRACE) + UPKEEP_EVERY + UPKEEP_LATE
RAW_BUCKETS_ALLOWED = RAW_SECONDS_HELD // BUCKET + 1
# Shorter, and the run would end before raw samples must have been deleted.
SHORTEST = RAW_SECONDS_HELD + 60
SAMPLE_EVERY = 5.0  # seconds between readings of the server's memory and store
# The agent's Sender gives up on an answer after this long (its default timeout), and sends
# the payload again: an ingest slower than that is as good as lost.
AGENT_TIMEOUT = 5.0  # seconds
# Ingest sheds load by design (503 with Retry-After, sent again by the agent), but the
# soak's load is well within the server's capacity: no more than this share may be shed.
SHED_ALLOWED = 0.02
MIB = 1 << 20
# The highest reading of the server's memory differs by some tens of MiB from one part of a
# run to another with nothing growing (the readers' answers come and go; 26 MiB at most in
# the runs of a shared 2-core machine, idle or busy): more is growth.
PSS_SPREAD = 64 * MIB


def _send(args) -> tuple[list[float], int, list[str]]:
    """Each of its nodes' payloads every INTERVAL s, spread over the interval: latencies, the
    payloads shed (503 with Retry-After) and errors."""
    url, first, count, until = args
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    random.seed(first)
    templates = {
        n: orjson.dumps(bench.node_body(n, 0.0, PODS, NAMESPACES))
        for n in range(first, first + count)
    }
    latencies, shed, errors = [], 0, []
    start = time.time()
    cycle = 0
    while True:
        for index, (node, template) in enumerate(templates.items()):
            due = start + cycle * INTERVAL + index * INTERVAL / count
            if due >= until:
                return latencies, shed, errors
            time.sleep(max(0.0, due - time.time()))
            body = gzip.compress(template.replace(b'"timestamp":0.0', b'"timestamp":%.3f' % due))
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            asked = time.monotonic()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                connection.request("POST", "/api/ingest", body, headers)
                answer = connection.getresponse()
                text = answer.read()
                retry_after = answer.getheader("Retry-After", "")
                if answer.status == 503 and retry_after.isdigit() and int(retry_after) > 0:
                    shed += 1
                elif answer.status != 200:
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


def _raw_buckets(database: Path) -> tuple[int, int | None]:
    """The raw buckets the store holds: how many, and the oldest."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT count(DISTINCT bucket), min(bucket) FROM node_sample"
        ).fetchone()


def _minute_rollups(database: Path) -> set[int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return {
            b for (b,) in conn.execute("SELECT DISTINCT bucket FROM node_rollup WHERE res = 60")
        }


def _highest(readings: list, part: int) -> tuple[float, float]:
    """The highest PSS of the first and of the last `part` of `readings`: the readers'
    answers make memory swing from one reading to the next."""
    return max(r[1] for r in readings[:part]), max(r[1] for r in readings[-part:])


@pytest.mark.timeout(SECONDS + 300)
def test_soak(tmp_path):
    assert SECONDS >= SHORTEST, f"CLOUDMON_SOAK_SECONDS: at least {SHORTEST} s"
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
            curve = []  # (seconds, server PSS, file bytes, raw buckets, oldest raw bucket's age)
            first_bucket = None  # the oldest raw bucket at the first reading: none deleted yet
            while (now := time.time()) < until:
                count, oldest = _raw_buckets(database)
                first_bucket = oldest if first_bucket is None else first_bucket
                curve.append(
                    (
                        now - began,
                        _pss_bytes(server.process.pid),
                        database.stat().st_size + Path(f"{database}-wal").stat().st_size,
                        count,
                        now - oldest,
                    )
                )
                time.sleep(SAMPLE_EVERY)
            sent = senders.get(timeout=120)
            read = readers.get(timeout=120)
        _, oldest = _raw_buckets(database)
        rollups = _minute_rollups(database)
    finally:
        server.stop()
    latencies = sorted(latency for part, _, _ in sent for latency in part)
    shed = sum(count for _, count, _ in sent)
    errors = [error for _, _, part in sent for error in part] + [e for _, p in read for e in p]
    p99 = statistics.quantiles(latencies, n=100)[98]
    # Every minute whose raw samples were deleted, from the run's first.
    deleted_minutes = set(range(first_bucket // 60 * 60, oldest // 60 * 60, 60))
    second_half = [point for point in curve if point[0] >= SECONDS / 2]
    half_start, half_end = _highest(second_half, max(1, len(second_half) // 3))
    warm = [point for point in curve if point[0] >= 60.0]
    warm_start, warm_end = _highest(warm, max(1, len(warm) // 3))
    figures = [
        f"soak: {SECONDS:.0f} s, {NODES} nodes x {PODS} pods every {INTERVAL:.0f} s,"
        f" {len(latencies)} payloads ({shed} shed with 503), {sum(n for n, _ in read)} reads"
        f" of {len(paths)} URLs, {len(errors)} errors (shared 2-core machine)",
        f"ingest latency: p50 {1000 * latencies[len(latencies) // 2]:.1f} ms,"
        f" p99 {1000 * p99:.1f} ms, max {1000 * latencies[-1]:.1f} ms",
        f"server PSS (master + workers), highest of the first and last third of the second"
        f" half: {half_start / MIB:.1f} MiB, {half_end / MIB:.1f} MiB; of the run after 60 s:"
        f" {warm_start / MIB:.1f} MiB, {warm_end / MIB:.1f} MiB",
        "curve (s, PSS MiB, file+WAL MiB, raw buckets, oldest's age s): "
        + ", ".join(
            f"({t:.0f}, {r / MIB:.0f}, {f / MIB:.1f}, {b}, {a:.0f})" for t, r, f, b, a in curve
        ),
        f"raw buckets stored at most {max(p[3] for p in curve)}, the oldest at most"
        f" {max(p[4] for p in curve):.0f} s old; retention allows {RAW_BUCKETS_ALLOWED},"
        f" {RAW_SECONDS_HELD} s ({RAW_RETENTION} s raw, rolled up {ROLLUP_GRACE} s late);"
        f" {len(deleted_minutes)} minutes deleted from raw, {len(rollups)} minutes rolled up",
    ]
    (tmp_path / "soak-figures.txt").write_text("\n".join(figures) + "\n")
    print("\n" + "\n".join(figures))
    assert not errors, errors[:20]
    assert shed <= SHED_ALLOWED * len(latencies), f"{shed} of {len(latencies)} payloads shed"
    assert len(latencies) >= NODES * (int(SECONDS // INTERVAL) - 1)  # senders start late
    assert p99 < AGENT_TIMEOUT, f"ingest's p99 {p99:.1f} s"
    # Raw samples were deleted during the run, never held past what retention allows, and
    # only once rolled up.
    assert deleted_minutes, "no raw sample was deleted"
    assert max(point[4] for point in curve) <= RAW_SECONDS_HELD
    assert max(point[3] for point in curve) <= RAW_BUCKETS_ALLOWED
    assert deleted_minutes <= rollups, sorted(deleted_minutes - rollups)
    assert half_end <= half_start + PSS_SPREAD, "the server's memory grew in the second half"
    if SECONDS >= 300:  # a shorter run is mostly warm-up
        assert warm_end <= warm_start * 1.2 + 32 * MIB, "the server's memory grew after warm-up"
