"""Right-sizing benchmark: GET /api/rightsize over 7 days of a 10,000-pod cluster on the
embedded store, all workloads and one; the upkeep's cost of adding an hour to the usage
sketches, and of sketching an hour of a store from before right-sizing; and the sketches'
error against numpy on the same values.

The cluster (--nodes, --pods running pods) has namespaces of Deployments (1 to 20 replicas,
a third rolled out once in the window: their first pods replaced), StatefulSets, DaemonSets
(a pod on every node), Jobs and bare pods; a fifth of the pods carry a log-shipping sidecar.
Each container's 1 min figures over the window are shaped as a cluster's are: CPU that
follows a daily cycle with noise, bursts for some, idle for others; a working set in 4 KiB
pages that wanders, leaks for some; counters of CFS periods and throttling. Every pod's
identity, requests and limits are stored by ingest as the agent sends them (a payload per
node, the replaced pods' at their last moment); the week of daily sketches is made from the
1 min figures with the store's own encoder (`usage.Days`) and written as the upkeep writes
them, since rolling up a week of 10,000 pods' samples would take hours. The hour's cost is
measured on its own, through the upkeep's code, on 1 min rollup rows of every container
and pod.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from cloudmon import payload
from cloudmon.server.app import create_app
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import SqliteStorage, usage
from cloudmon.storage.sqlite.codec import pack_stats
from cloudmon.storage.sqlite.schema import ROLLUP_TABLE
from cloudmon.storage.usage import ACCURACY, COUNTERS, METRICS, Days

DAY = 86400
MINUTES = 1440
MiB = 1 << 20


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cluster(nodes: int, running: int, days: int, now: float, rng) -> list[dict]:
    """The pods over the window: namespace, workload kind and name, name, node, its span
    (first and last minute, from the window's start), its containers (name, CPU and memory
    shape, requests and limits)."""
    pods: list[dict] = []
    minutes = days * MINUTES

    def container(name: str, cpu: float, memory: float) -> dict:
        request = float(round(cpu * rng.choice([0.5, 1, 2, 4, 8]), 3)) or 0.01
        return {
            "name": name,
            "cpu": cpu,
            "memory": memory,
            "shape": rng.choice(["steady", "steady", "bursty", "idle", "leak"]),
            "cpu_request_cores": request if rng.random() > 0.1 else None,
            "cpu_limit_cores": request * 2 if rng.random() > 0.5 else None,
            "memory_request_bytes": int(memory * rng.choice([0.8, 1.5, 3])),
            "memory_limit_bytes": int(memory * 4) if rng.random() > 0.2 else None,
        }

    def add(namespace, kind, workload, name, node, span, sidecar):
        cpu, memory = rng.lognormal(-2.5, 1.2), rng.lognormal(np.log(200 * MiB), 0.8)
        containers = [container(workload, cpu, memory)]
        if sidecar:
            containers.append(container("log-shipper", 0.01, 25 * MiB))
        pods.append(
            {
                "namespace": namespace,
                "kind": kind,
                "workload": workload,
                "name": name,
                "uid": f"{len(pods):08d}-0000-4000-8000-000000000000",
                "node": f"node-{node:03d}",
                "span": span,
                "containers": containers,
            }
        )

    for daemonset in range(5):
        for node in range(nodes):
            add(
                "kube-system",
                "DaemonSet",
                f"ds-{daemonset}",
                f"ds-{daemonset}-{node}",
                node,
                (0, minutes - 1),
                False,
            )
    count = 0
    while sum(pod["span"][1] == minutes - 1 for pod in pods) < running:
        namespace = f"team-{count % 40}"
        kind = rng.choice(["Deployment"] * 8 + ["StatefulSet", "Job", "Pod"])
        name = f"{kind.lower()}-{count}"
        replicas = (
            1 if kind in ("Job", "Pod") else int(rng.choice([1, 1, 2, 2, 3, 3, 5, 8, 12, 20]))
        )
        sidecar = rng.random() < 0.2
        rolled = kind == "Deployment" and rng.random() < 1 / 3
        at = int(rng.integers(MINUTES, minutes - MINUTES)) if rolled else 0
        start = int(rng.integers(0, minutes - 200)) if kind == "Job" else 0
        for replica in range(replicas):
            node = int(rng.integers(nodes))
            if rolled:
                add(namespace, kind, name, f"{name}-a{replica}", node, (0, at - 1), sidecar)
            end = min(minutes - 1, start + 180) if kind == "Job" else minutes - 1
            add(
                namespace,
                kind,
                name,
                f"{name}-{replica}",
                node,
                (at if rolled else start, end),
                sidecar,
            )
        count += 1
    return pods


def minute_figures(spec: dict, span: tuple[int, int], rng) -> np.ndarray:
    """A container's 1 min CPU average and working set maximum over its span."""
    t = np.arange(span[0], span[1] + 1)
    daily = 1 + 0.5 * np.sin(2 * np.pi * t / MINUTES + rng.uniform(0, 2 * np.pi))
    cpu = spec["cpu"] * daily * rng.lognormal(0, 0.3, len(t))
    memory = spec["memory"] * (1 + 0.05 * np.cumsum(rng.normal(0, 0.01, len(t))).clip(-5, 5))
    if spec["shape"] == "bursty":
        cpu[rng.random(len(t)) < 0.02] *= 8
    elif spec["shape"] == "idle":
        cpu = np.where(rng.random(len(t)) < 0.5, 0.0, cpu / 50)
    elif spec["shape"] == "leak":
        memory = memory * (1 + t / (len(t) + 1))
    memory = np.ceil(memory / 4096) * 4096
    return np.stack([np.round(cpu, 9), memory], axis=1)


def write_identities(store, clock, pods: list[dict], start: float, now: float) -> None:
    """Each pod's last payload, as its node's agent sends it, at its last moment."""
    by_moment: dict[tuple[float, str], list[dict]] = {}
    for pod in pods:
        moment = min(now - 5, start + 60 * pod["span"][1] + 30)
        by_moment.setdefault((moment, pod["node"]), []).append(pod)
    for (moment, node), members in sorted(by_moment.items()):
        clock.now = moment + 1
        body = {
            "schema": 1,
            "node": node,
            "timestamp": moment,
            "interval": 10.0,
            "node_info": {"cpu_count": 16},
            "node_metrics": {"cpu_cores": 1.0},
            "pods": [
                {
                    "uid": pod["uid"],
                    "name": pod["name"],
                    "namespace": pod["namespace"],
                    "workload_kind": pod["kind"],
                    "workload": pod["workload"],
                    "deployment": pod["workload"] if pod["kind"] == "Deployment" else None,
                    "cpu_cores": sum(c["cpu"] for c in pod["containers"]),
                    "containers": [
                        {
                            "id": f"{pod['uid']}-{at}",
                            "name": c["name"],
                            "cpu_cores": c["cpu"],
                            **{k: c[k] for k in c if k.endswith(("_cores", "_bytes"))},
                        }
                        for at, c in enumerate(pod["containers"])
                    ],
                }
                for pod in members
            ],
        }
        store.write(payload.decode(orjson.dumps([body])))
    clock.now = now


def write_sketches(store, pods, start: float, days: int, rng, exact: dict) -> int:
    """The week's daily sketches of every container and pod; keeps some containers' 1 min
    CPU figures in `exact` (id: values) for the error against numpy."""
    conn = store.db.reader()
    pod_ids = dict(conn.execute("SELECT uid, id FROM pod"))
    container_ids = {
        (uid, name): cid
        for uid, name, cid in conn.execute(
            "SELECT p.uid, c.name, c.id FROM ctr c JOIN pod p ON p.id = c.pod"
        )
    }
    first_day = int(start) // DAY * DAY
    offset = int(start - first_day) // 60  # minutes of the first day before the window
    rows = 0
    for batch in range(0, len(pods), 500):
        figures = {"ctr_sample": [], "pod_sample": []}
        for pod in pods[batch : batch + 500]:
            span = pod["span"]
            each = [minute_figures(c, span, rng) for c in pod["containers"]]
            for c, values in zip(pod["containers"], each, strict=True):
                cid = container_ids[pod["uid"], c["name"]]
                figures["ctr_sample"].append((cid, span, values))
                if len(exact) < 200 and rng.random() < 0.05:
                    exact[cid] = values[:, 0]
            total = np.stack([sum(v[:, 0] for v in each), sum(v[:, 1] for v in each)], axis=1)
            figures["pod_sample"].append((pod_ids[pod["uid"]], span, total))
        for table, found in figures.items():
            for day in range(days + 1):
                low, high = day * MINUTES - offset, (day + 1) * MINUTES - offset
                ids, row, minutes = [], [], []
                for eid, (first, last), values in found:
                    a, b = max(first, low), min(last + 1, high)
                    if a >= b:
                        continue
                    row.append(np.full(b - a, len(ids)))
                    ids.append(eid)
                    minutes.append(values[a - first : b - first])
                if not ids:
                    continue
                row, minutes = np.concatenate(row), np.concatenate(minutes)
                counters = np.zeros((len(row), len(COUNTERS), 2))
                days_of = Days.of_minutes(row, minutes, counters, len(ids), (1 << 24) - 1)
                store.db.transaction(
                    lambda conn, t=table, d=first_day + day * DAY, i=ids, s=days_of: usage.write(
                        conn, t, d, i, s
                    )
                )
                rows += len(ids)
    return rows


def hour_cost(store, rng) -> tuple[float, int]:
    """The upkeep's cost of adding an hour to every container's and pod's day: 1 min rollup
    rows of an hour for each, then `usage.record_hour` a chunk of entities at a time, as the
    upkeep rolls an hour up."""
    period = _new_hour(store)
    spent, entities = 0.0, 0
    for table, chunk, found in _hour_rows(store, rng):
        which, chosen = "id >= ? AND id < ?", (min(chunk), max(chunk) + 1)
        began = time.perf_counter()
        store.db.transaction(
            lambda conn, t=table, w=which, c=chosen, f=found: usage.record_hour(
                conn, t, period, w, c, f
            )
        )
        spent += time.perf_counter() - began
        entities += len(chunk)
    return spent, entities


def backfill_cost(store, rng) -> tuple[float, int]:
    """The upkeep's cost of sketching an hour of a store from before right-sizing: every
    container's and pod's 1 min rollup rows of an hour stored, then the upkeep's round that
    reads them and adds them to the days (`Upkeep.backfill_usage`)."""
    period = _new_hour(store, after=1)  # hour_cost's hour is held
    entities = 0
    for table, chunk, found in _hour_rows(store, rng):
        rollup = ROLLUP_TABLE[table]
        store.db.transaction(
            lambda conn, r=rollup, f=found: conn.executemany(
                f"INSERT INTO {r} (res, bucket, id, v) VALUES (60, ?, ?, ?)",
                [
                    (period + 60 * minute, eid, row)
                    for eid, rows in f.items()
                    for minute, row in enumerate(rows)
                ],
            )
        )
        entities += len(chunk)
    store.db.transaction(
        lambda conn: conn.execute(
            "INSERT INTO usage_backfill VALUES (?, ?)", (period, period + 3600)
        )
    )
    began = time.perf_counter()
    assert store.upkeep.backfill_usage() == 1
    return time.perf_counter() - began, entities


def _new_hour(store, after: int = 0) -> int:
    """An hour no day holds yet: the `after`th after the newest sample."""
    (last,) = store.db.reader().execute("SELECT max(last_bucket) FROM pod").fetchone()
    return int(last) // 3600 * 3600 + 3600 * (1 + after)


def _hour_rows(store, rng):
    """(table, ids, their 1 min rollup rows by id) of an hour of every container and pod,
    25 entities at a time (as the upkeep's chunks of an hour)."""
    conn = store.db.reader()
    for table, kind in (("ctr_sample", EntityKind.CONTAINER), ("pod_sample", EntityKind.POD)):
        width = len(columns(kind))
        picked = [columns(kind).index(n) for n in (*METRICS, *COUNTERS)]
        ids = [
            eid
            for (eid,) in conn.execute(
                f"SELECT id FROM {'ctr' if kind is EntityKind.CONTAINER else 'pod'}"
            )
        ]
        for at in range(0, len(ids), 25):
            chunk = ids[at : at + 25]
            found = {}
            for eid in chunk:
                cpu = rng.lognormal(-2.5, 1.2) * rng.lognormal(0, 0.3, 60)
                rows = []
                for minute in range(60):
                    stats = [None] * width
                    stats[picked[0]] = (cpu[minute] * 6, 6.0, cpu[minute], cpu[minute], cpu[minute])
                    memory = float(4096 * rng.integers(10_000, 100_000))
                    stats[picked[1]] = (memory * 6, 6.0, memory, memory, memory)
                    rows.append(pack_stats(stats))
                found[eid] = rows
            yield table, chunk, found


def timed(client, url: str, times: int) -> tuple[float, float, bytes]:
    took = []
    for _ in range(times):
        began = time.perf_counter()
        answer = client.get(url)
        body = answer.get_data()
        took.append(time.perf_counter() - began)
        assert answer.status_code == 200, body[:300]
    return statistics.median(took), min(took), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=10_000, help="pods running at the end")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    rng = np.random.default_rng(options.seed)
    now = float(int(time.time()) // 60 * 60)
    start = now - options.days * DAY
    pods = cluster(options.nodes, options.pods, options.days, now, rng)
    workloads = {(p["namespace"], p["kind"], p["workload"]) for p in pods}
    containers = sum(len(p["containers"]) for p in pods)
    print(
        f"right-sizing: {len(pods)} pods over {options.days} days ({options.pods} running at the"
        f" end), {containers} containers, {len(workloads)} workloads, {options.nodes} nodes"
    )
    with tempfile.TemporaryDirectory() as directory:
        clock = Clock(start)
        store = SqliteStorage(Path(directory) / "rightsize.db", clock=clock)
        began = time.perf_counter()
        write_identities(store, clock, pods, start, now)
        exact: dict[int, np.ndarray] = {}
        rows = write_sketches(store, pods, start, options.days, rng, exact)
        (size,) = store.db.reader().execute("SELECT sum(length(v)) FROM usage_day").fetchone()
        print(
            f"made in {time.perf_counter() - began:.0f} s: {rows} day sketches,"
            f" {size / rows:.0f} bytes each on average, {size / len(pods) / options.days:.0f}"
            " bytes per pod-day (its containers' and its own)"
        )
        app = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock})
        client = app.test_client()
        median, low, body = timed(client, f"/api/rightsize?window={options.days}d", 3)
        answer = orjson.loads(body)
        print(
            f"all workloads over {options.days} days: {median * 1000:.0f} ms (best"
            f" {low * 1000:.0f}), {len(answer['items'])} workloads, {len(body) / 1e6:.1f} MB of"
            " JSON (goal: 5 s)"
        )
        largest = max(
            (p for p in pods if p["kind"] == "Deployment"),
            key=lambda p: sum(q["workload"] == p["workload"] for q in pods),
        )
        url = f"/api/rightsize/{largest['namespace']}/Deployment/{largest['workload']}"
        median, low, body = timed(client, f"{url}?window={options.days}d", 5)
        item = orjson.loads(body)
        print(
            f"one workload ({item['pods']} pods over the window) over {options.days} days:"
            f" {median * 1000:.0f} ms (best {low * 1000:.0f}) (goal: 200 ms)"
        )
        ids, days = store.usage(EntityKind.CONTAINER, start, now, sorted(exact))
        answered = days.quantiles(0, (0.5, 0.95, 0.99))
        errors = []
        for eid, found in zip(ids, answered, strict=True):
            truth = np.percentile(exact[eid], (50, 95, 99), method="lower")
            kept = truth > 0
            errors += list(np.abs(found[kept] - truth[kept]) / truth[kept])
        print(
            f"p50/p95/p99 of {len(ids)} containers' 1 min CPU against numpy's: error at most"
            f" {max(errors) * 100:.2f} %, median {statistics.median(errors) * 100:.2f} %"
            f" (bound {ACCURACY * 100:.0f} %)"
        )
        spent, entities = hour_cost(store, rng)
        print(
            f"adding an hour to the sketches: {spent:.2f} s of the upkeep for {entities}"
            f" containers and pods ({spent / entities * 1e6:.0f} us each)"
        )
        spent, entities = backfill_cost(store, rng)
        print(
            f"sketching an hour of a store from before right-sizing from its 1 min rollups:"
            f" {spent:.2f} s of the upkeep for {entities} containers and pods, a round a"
            f" minute: the 7 days of 1 min rollups in {7 * 24} rounds, {7 * 24 * spent / 60:.0f}"
            " min of upkeep CPU over 2.8 h"
        )
        store.close()


if __name__ == "__main__":
    main()
