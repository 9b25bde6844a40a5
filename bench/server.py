"""Server benchmark: ingest and queries over real HTTP to the real server (gunicorn) on a
SQLite file, load from separate processes. Prints each figure.

Targets (issue 3): >= 500 node payloads/s of 110 pods; server CPU per payload <= 10x orjson's
parse time; with 200 nodes x 50 pods x 6 h: one pod over 1 h <= 20 ms, a 500-pod namespace
over 1 h <= 50 ms, /api/nodes <= 30 ms, /api/pods (all) <= 300 ms; <= 16 bytes per sample.
Smaller runs: --hours, --nodes, --pods. Each pod has --containers containers (1 by default:
every pod an agent reports has at least one).
"""

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
from collections import defaultdict
from pathlib import Path

import orjson

from cloudmon import payload as wire
from cloudmon.metrics import Scope, metrics_for
from cloudmon.storage.base import merged_stats
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import SqliteStorage
from cloudmon.storage.sqlite.codec import pack_stats

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONTAINER_METRICS = [(m.name, m.integer) for m in metrics_for(Scope.CONTAINER)]
POD_METRICS = metrics_for(Scope.POD)
CONTAINERS = 1  # per pod; set by --containers


def pod_body(node: int, index: int, ts: float, namespaces: int) -> dict:
    r = random.random
    deployment = f"app-{index % 10}"
    pod = {
        "uid": f"{node:05d}-{index:04d}-0000-0000-000000000000",
        "name": f"{deployment}-{node}-{index}",
        "namespace": f"ns-{(node * 7 + index) % namespaces}",
        "deployment": deployment,
        "workload_kind": "Deployment",
        "workload": deployment,
        "node": f"node-{node}",
        "qos": "burstable",
        "cpu_usage_seconds_total": ts * r() % 1e6,
        "cpu_cores": r(),
        "cpu_throttled_seconds_total": r() * 100,
        "cpu_limit_cores": 2.0,
        "cpu_request_cores": 0.5,
        "memory_usage_bytes": random.randrange(1 << 30),
        "memory_working_set_bytes": random.randrange(1 << 30),
        "memory_limit_bytes": 1 << 31,
        "memory_request_bytes": 1 << 29,
        "disk_read_bytes_total": random.randrange(1 << 40),
        "disk_write_bytes_total": random.randrange(1 << 40),
        "disk_read_bps": r() * 1e6,
        "disk_write_bps": r() * 1e6,
        "network_rx_bytes_total": random.randrange(1 << 40),
        "network_tx_bytes_total": random.randrange(1 << 40),
        "network_rx_bps": r() * 1e6,
        "network_tx_bps": r() * 1e6,
    }
    # The signals (throttling, memory by kind, OOM kills, pressure, restarts) as the rest.
    for metric in POD_METRICS:
        pod.setdefault(metric.name, random.randrange(1 << 20) if metric.integer else r())
    pod["containers"] = [
        {
            "id": f"{node:05d}{index:04d}{c:02d}" + "0" * 53,
            "name": f"container-{c}",
            **{
                name: pod[name] // (c + 2) if integer else pod[name] / (c + 2)
                for name, integer in CONTAINER_METRICS
            },
        }
        for c in range(CONTAINERS)
    ]
    return pod


def node_body(node: int, ts: float, pods: int, namespaces: int) -> dict:
    metrics = {m: random.randrange(10**9) for m in wire.NodeMetrics.__struct_fields__}
    metrics["pod_count"] = pods
    metrics["memory_total_bytes"] = 1 << 35
    return {
        "schema": 1,
        "node": f"node-{node}",
        "timestamp": ts,
        "interval": 10.0,
        "node_info": {"cpu_count": 8, "memory_total_bytes": 1 << 35, "cgroup_version": 2},
        "node_metrics": metrics,
        "pods": [pod_body(node, i, ts, namespaces) for i in range(pods)],
    }


def write_hours(store, nodes: int, pods: int, hours: float, namespaces: int) -> int:
    """Write `hours` of data up to now into a store, a bucket at a time; samples stored."""
    samples = 0
    buckets = int(hours * 360)
    first = time.time() - 10 * buckets
    for b in range(buckets):
        batch = [node_body(n, first + 10 * b, pods, namespaces) for n in range(nodes)]
        samples += store.write(wire.decode(orjson.dumps(batch)))
    return samples


def fill(path: Path, nodes: int, pods: int, hours: float, namespaces: int) -> int:
    """Store `hours` of data up to now, written directly to the file."""
    store = SqliteStorage(path)
    samples = write_hours(store, nodes, pods, hours, namespaces)
    raw_bytes = table_bytes(
        path, ("node_sample", "pod_sample", "ctr_sample", "grp_sample", "node", "pod", "ctr", "grp")
    )
    # As the server's upkeep would have, so that it starts in a steady state; each of its
    # transactions is as long as a write may have to wait for it.
    longest = time_transactions(store, store.roll_up)
    print(
        f"upkeep: rollups of {hours} h: longest transaction {1000 * longest:.0f} ms"
        " (the longest an ingest waits for the upkeep)"
    )
    rollup_bytes = table_bytes(path, ("node_rollup", "pod_rollup", "ctr_rollup", "grp_rollup"))
    with store.db.writing() as conn:
        (first,) = conn.execute("SELECT min(bucket) FROM node_sample").fetchone()
    week_of_cluster_rollups(store, first // 60 * 60)
    # Sealed as the upkeep would have by now, so that queries read sealed spans and the head
    # as on a server that has run for a while.
    began = time.perf_counter()
    rows = seal_all(store)
    print(f"upkeep: {rows} rows of finished spans sealed in {time.perf_counter() - began:.0f} s")
    store.close()
    return samples, raw_bytes, rollup_bytes


def time_transactions(store: SqliteStorage, work) -> float:
    """Run work; the longest of the store's transactions it made, in seconds."""
    longest = 0.0
    transaction = store.db.transaction

    def timed(step):
        nonlocal longest
        started = time.perf_counter()
        try:
            return transaction(step)
        finally:
            longest = max(longest, time.perf_counter() - started)

    store.db.transaction = timed
    try:
        work()
    finally:
        del store.db.transaction
    return longest


def seal_all(store: SqliteStorage) -> int:
    """Seal what the upkeep would by now: its rounds until two in a row seal nothing (a round
    seals the spans that took no row since the one before); rows sealed."""
    rows, idle = 0, 0
    while idle < 2:
        sealed = store.upkeep.seal()
        rows += sealed
        idle = 0 if sealed else idle + 1
    return rows


def week_of_cluster_rollups(store: SqliteStorage, before: int) -> None:
    """Synthetic 1 min rollups of the cluster for the 7 days before `before` and the 1 h
    rollups made of them, so that the cluster over 7 days is read from rollups as after a
    week of running."""
    with store.db.writing() as conn:
        (cluster,) = conn.execute("SELECT id FROM grp WHERE kind = 0").fetchone()
    width = len(columns(EntityKind.CLUSTER))
    rows, hours = [], defaultdict(list)
    for period in range(before - 7 * 86400, before, 60):
        stats = [(6 * random.random(), 6.0, 0.0, 1.0, 0.5)] * width
        rows.append((60, period, cluster, pack_stats(stats)))
        hours[period // 3600 * 3600].append(stats)
    for hour, minutes in hours.items():
        merged = [merged_stats(column) for column in zip(*minutes, strict=True)]
        rows.append((3600, hour, cluster, pack_stats(merged)))

    def insert(conn) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO grp_rollup (res, bucket, id, v) VALUES (?, ?, ?, ?)", rows
        )
        conn.execute("UPDATE grp SET first_bucket = ? WHERE id = ?", (before - 7 * 86400, cluster))

    store.db.transaction(insert)


def table_bytes(path: Path, tables: tuple[str, ...]) -> int:
    """Bytes of the pages of these tables and their indexes."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    marks = ",".join("?" * len(tables))
    (size,) = conn.execute(
        f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks}) OR name IN"
        f" (SELECT name FROM sqlite_master WHERE tbl_name IN ({marks}))",
        tables + tables,
    ).fetchone()
    conn.close()
    return size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(storage: str, workers: int | None = None, threads: int | None = None):
    """`cloudmon server` on a free port of 127.0.0.1 with a storage URL, with its own default
    workers and threads unless given: (process, base URL)."""
    port = free_port()
    given = {"workers": workers, "threads": threads}
    options = "".join(f", {name}={value}" for name, value in given.items() if value is not None)
    code = (
        "from cloudmon.server.main import run_server; "
        f"run_server(port={port}, storage={storage!r}{options}, log_level='warning')"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1).read()
            return process, base
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (gunicorn's workers)."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def connect(base: str, timeout: float = 60) -> http.client.HTTPConnection:
    """A connection to the server at base (http://host:port), kept alive between requests."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


INGEST_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def post_ingest(conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
    """POST a gzipped body to /api/ingest; the answer, read."""
    conn.request("POST", "/api/ingest", body, INGEST_HEADERS)
    answer = conn.getresponse()
    answer.read()
    return answer


def median_ms(url: str, repeats: int, before=lambda: None) -> float:
    """Median time of `repeats` GETs of url, `before()` run untimed before each."""
    times = []
    for _ in range(repeats):
        before()
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as answer:
            answer.read()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


_NODES_PER_CLIENT = 20
_ROUNDS = 90  # samples per node
# The buckets the rounds go to in turn: the server takes no sample stamped more than 30 s
# ahead of its clock, so a node's later rounds replace its earlier ones, as a second sample
# in a bucket does.
_BUCKETS = 3


def _post_loop(args) -> tuple[int, float]:
    base, client, pods, seconds, start = args
    templates = [
        orjson.dumps(node_body(10_000 + client * 100 + i, 0.0, pods, 20))
        for i in range(_NODES_PER_CLIENT)
    ]
    bodies = [
        gzip.compress(
            t.replace(b'"timestamp":0.0', b'"timestamp":%d' % (start + 10 * (r % _BUCKETS))), 6
        )
        for r in range(_ROUNDS)
        for t in templates
    ]
    conn = connect(base)
    sent = 0
    started = time.monotonic()
    while time.monotonic() < started + seconds and sent < len(bodies):
        answer = post_ingest(conn, bodies[sent])
        if answer.status != 200:
            raise RuntimeError(f"ingest answered {answer.status}")  # a Pool hangs on SystemExit
        sent += 1
    conn.close()
    return sent, time.monotonic() - started


def queries(base: str, hours: float, namespaces: int) -> dict[str, str]:
    """The queries measured, by label: those of issue 3 and the group lists the dashboard
    asks for."""
    end = int(time.time())
    span = f"start={end - 3600}&end={end}"
    pods = json.loads(urllib.request.urlopen(base + "/api/pods?metrics=cpu_cores").read())
    one = pods["items"][0]
    size = len(pods["items"]) // namespaces
    # The dashboard's tables: CPU and memory over its range, 30 points for the sparklines.
    table = f"{span}&step=120s&metrics=cpu_cores,memory_working_set_bytes"
    return {
        "one pod over 1 h": f"/api/pods/{one['namespace']}/{one['name']}?{span}",
        f"a {size}-pod namespace over 1 h": f"/api/namespaces/ns-0?{span}",
        "/api/nodes latest": "/api/nodes",
        f"/api/namespaces latest ({namespaces})": "/api/namespaces",
        f"/api/namespaces over 1 h ({namespaces}, as the dashboard asks)": (
            f"/api/namespaces?{table}"
        ),
        f"/api/deployments over 1 h ({namespaces * 10}, as the dashboard asks)": (
            f"/api/deployments?{table}"
        ),
        f"/api/pods latest ({len(pods['items'])} pods)": "/api/pods",
        f"/api/pods latest ({len(pods['items'])}, cpu and memory)": (
            "/api/pods?metrics=cpu_cores,memory_working_set_bytes"
        ),
        f"/api/pods over 1 h ({len(pods['items'])}, as the dashboard asks)": f"/api/pods?{table}",
        "the 5 busiest pods": "/api/pods?metrics=cpu_cores&sort=-cpu_cores&limit=5",
        "the cluster over 1 h": f"/api/cluster?{span}",
        f"the cluster over {hours} h": f"/api/cluster?window={int(hours * 3600)}s",
        "the cluster over 7 days (rollups)": "/api/cluster?window=7d",
        "the cluster over 5 years (held: the hours above)": "/api/cluster?window=1826d",
    }


def refresh(base: str, nodes: int, pods: int, namespaces: int) -> None:
    """One fresh bucket of every node over HTTP, so the latest lists show them all."""
    headers = {"Content-Type": "application/json"}
    for n in range(nodes):
        body = orjson.dumps(node_body(n, time.time(), pods, namespaces))
        req = urllib.request.Request(base + "/api/ingest", data=body, headers=headers)
        urllib.request.urlopen(req, timeout=60).read()


def bench_ingest(base: str, server_pid: int, clients: int, seconds: float, pods: int) -> None:
    sample = orjson.dumps(node_body(10_000, time.time(), pods, 20))
    orjson_ms = min(timeit.repeat(lambda: orjson.loads(sample), number=100, repeat=7)) * 10
    start = int(time.time()) // 10 * 10
    jobs = [(base, c, pods, seconds, start) for c in range(clients)]
    cpu_before = cpu_seconds(server_pid)
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(_post_loop, jobs)
    cpu = cpu_seconds(server_pid) - cpu_before
    sent = sum(count for count, _ in results)
    rate = sum(count / elapsed for count, elapsed in results)
    per_payload_ms = cpu / sent * 1000
    print(f"ingest: {rate:.0f} payloads/s of {pods} pods ({clients} client processes)")
    print(
        f"ingest: server CPU {per_payload_ms:.2f} ms per payload; orjson parse "
        f"{orjson_ms:.3f} ms; ratio {per_payload_ms / orjson_ms:.1f}"
    )


def add_cluster_options(
    parser: argparse.ArgumentParser, nodes: int, pods: int, containers: int = 1
) -> None:
    """--nodes, --pods (per node) and --containers (per pod), with these defaults."""
    parser.add_argument("--nodes", type=int, default=nodes)
    parser.add_argument("--pods", type=int, default=pods, help="per node")
    parser.add_argument("--containers", type=int, default=containers, help="per pod")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_cluster_options(parser, nodes=200, pods=50)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument(
        "--ingest-only", action="store_true", help="skip the fill and the queries (empty store)"
    )
    options = parser.parse_args()
    global CONTAINERS  # the load generators, forked, see it too
    CONTAINERS = options.containers
    random.seed(1)
    namespaces = max(1, options.nodes * options.pods // 500)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        if options.ingest_only:
            process, base = start_server(f"sqlite:///{path}", options.workers, options.threads)
            try:
                bench_ingest(base, process.pid, options.clients, options.ingest_seconds, 110)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            return
        started = time.perf_counter()
        samples, raw_bytes, rollup_bytes = fill(
            path, options.nodes, options.pods, options.hours, namespaces
        )
        print(
            f"fill: {options.nodes} nodes x {options.pods} pods x {options.hours} h in "
            f"{time.perf_counter() - started:.0f} s: {samples} samples"
        )
        print(f"disk: {raw_bytes / samples:.2f} bytes per stored raw sample (indexes included)")
        print(f"disk: their 1 min and 1 h rollups: {rollup_bytes / samples:.2f} bytes per sample")
        process, base = start_server(f"sqlite:///{path}", options.workers, options.threads)
        try:
            refresh(base, options.nodes, options.pods, namespaces)
            for label, url in queries(base, options.hours, namespaces).items():
                print(f"query: {label}: {median_ms(base + url, 15):.1f} ms median")
            bench_ingest(base, process.pid, options.clients, options.ingest_seconds, 110)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
