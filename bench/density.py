"""Density benchmark: the embedded store's disk per pod-day, per tier, on data shaped like a
real cluster (the demo's generator: counters that grow, gauges that wander, memory in pages,
throttling, limits and requests), and the pods a volume holds at the default retention.

A cluster of --nodes x --pods (--containers each) sends --minutes of 10 s samples, one
payload a request as agents send them, to `cloudmon server` (gunicorn, its default workers)
on a SQLite file. The samples lie in an hour that is over, so that once the server has
stopped the store's upkeep (the server's own) rolls up their minutes and their hour. Then
SQLite's dbstat gives the pages of each table. With promtool on PATH, the same values as
cAdvisor's 8 series a pod are backfilled into Prometheus blocks for comparison.
"""

import argparse
import datetime
import gzip
import math
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from server import add_cluster_options, connect, post_ingest, start_server

from cloudmon import payload
from cloudmon.demo import INTERVAL, build_cluster
from cloudmon.metrics import Scope, metrics_for
from cloudmon.server.maintenance import upkeep
from cloudmon.storage import open_storage
from cloudmon.storage.base import BUCKET, RESOLUTIONS, RETENTION
from cloudmon.storage.sqlite.sealed import PIECE, SEAL_AFTER, SPAN

DAY = 86400
GiB = 1 << 30
# The store's tables by what they hold: the raw tier's per kind of entity, the rollups' (a
# row per entity per 1 min or 1 h period, told apart by their `res` column).
RAW = {"node_sample": "nodes", "pod_sample": "pods", "ctr_sample": "containers",
       "grp_sample": "groups"}  # fmt: skip
ROLLUPS = ("node_rollup", "pod_rollup", "ctr_rollup", "grp_rollup")
CATALOGUE = ("node", "pod", "ctr", "grp")
POD_METRICS = [m.name for m in metrics_for(Scope.POD)]
CONTAINER_METRICS = [m.name for m in metrics_for(Scope.CONTAINER)]
# cAdvisor's series of a pod as the kubelet exposes them, and the pod's figure each holds.
CADVISOR = {
    "container_cpu_usage_seconds_total": "cpu_usage_seconds_total",
    "container_memory_working_set_bytes": "memory_working_set_bytes",
    "container_memory_usage_bytes": "memory_usage_bytes",
    "container_fs_reads_bytes_total": "disk_read_bytes_total",
    "container_fs_writes_bytes_total": "disk_write_bytes_total",
    "container_network_receive_bytes_total": "network_rx_bytes_total",
    "container_network_transmit_bytes_total": "network_tx_bytes_total",
    "container_cpu_cfs_throttled_seconds_total": "cpu_throttled_seconds_total",
}


def span(seconds: float) -> str:
    """A duration in its largest whole unit: 10 s, 1 min, 24 h, 7 d."""
    for unit, size in (("d", DAY), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and (unit != "d" or seconds > DAY):
            return f"{seconds // size:g} {unit}"
    return f"{seconds:g} s"


def values_of(pod: dict) -> int:
    """The figures a pod's sample carries: its own and its containers'."""
    own = sum(pod.get(name) is not None for name in POD_METRICS)
    return own + sum(c.get(n) is not None for c in pod["containers"] for n in CONTAINER_METRICS)


class OpenMetrics:
    """The pods' cAdvisor series as an OpenMetrics file, one family after another."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = {name: open(directory / f"{name}.om", "w") for name in CADVISOR}  # noqa: SIM115
        self.samples = 0

    def add(self, pod: dict, t: float) -> None:
        labels = f'{{namespace="{pod["namespace"]}",pod="{pod["name"]}",node="{pod["node"]}"}}'
        for name, figure in CADVISOR.items():
            value = pod[figure]
            if value is not None:  # a pod on the host network has no network series
                self.files[name].write(f"{name}{labels} {value} {t:.3f}\n")
                self.samples += 1

    def blocks_bytes(self) -> int:
        """Bytes of the Prometheus blocks promtool makes of the series."""
        whole = self.directory / "cadvisor.om"
        with open(whole, "w") as out:
            for name, file in self.files.items():
                file.close()
                out.write(f"# TYPE {name} unknown\n")
                out.write((self.directory / f"{name}.om").read_text())
            out.write("# EOF\n")
        blocks = self.directory / "blocks"
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", whole, blocks],
            check=True,
        )
        return sum(f.stat().st_size for f in blocks.rglob("*") if f.is_file())


def send(base: str, cluster, first: float, buckets: int, prometheus: OpenMetrics | None):
    """Every node's sample of each bucket, one gzipped array of one payload a request (as an
    agent sends it); (payloads sent, values a pod's sample carries)."""
    conn = connect(base)
    statuses = Counter()
    for b in range(buckets):
        t = first + b * INTERVAL
        for node in cluster:
            sample = node.sample(t)
            body = gzip.compress(payload.encode([{"sent_at": time.time(), **sample}]), 6)
            statuses[post_ingest(conn, body).status] += 1
            if prometheus is not None:
                for pod in sample["pods"]:
                    prometheus.add(pod, t)
    conn.close()
    pods = [pod for node in cluster for pod in node.sample(t + INTERVAL)["pods"]]
    values = sum(values_of(pod) for pod in pods) / len(pods)
    if set(statuses) != {200}:
        raise SystemExit(f"ingest answered {dict(statuses)}")
    return statuses[200], values


def pages(path: Path) -> dict[str, int]:
    """Bytes of each table's pages, its indexes' included (SQLite's dbstat)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sizes = dict(
        conn.execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat AS d"
            " LEFT JOIN sqlite_schema AS m ON m.name = d.name GROUP BY 1"
        )
    )
    conn.close()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_cluster_options(parser, nodes=50, pods=30)
    parser.add_argument("--minutes", type=int, default=30, help="of 10 s samples")
    parser.add_argument("--seed", type=int, default=1)
    # manifests/monitor-api.yaml claims a volume of 10 GiB for the store.
    parser.add_argument("--volume-gib", type=float, default=10.0)
    parser.add_argument(
        "--no-prometheus", action="store_true", help="skip the comparison with promtool's blocks"
    )
    options = parser.parse_args()
    buckets = options.minutes * 60 // BUCKET
    hours = math.ceil(options.minutes / 60)
    # Whole hours before the one under way, 5 minutes past its start at least: all finished
    # and past the rollups' grace.
    first = (int(time.time()) - 300) // 3600 * 3600 - hours * 3600
    if time.time() - first > RETENTION[BUCKET] - 600:
        raise SystemExit(f"--minutes {options.minutes}: older than the raw retention")
    prometheus = not options.no_prometheus and shutil.which("promtool") is not None
    cluster = build_cluster(
        options.nodes, options.pods, options.seed, first, containers=options.containers
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "density.db"
        url = f"sqlite:///{path}"
        process, base = start_server(url)
        om = OpenMetrics(Path(tmp)) if prometheus else None
        try:
            started = time.perf_counter()
            sent, values = send(base, cluster, first, buckets, om)
            took = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        since = datetime.datetime.fromtimestamp(first, datetime.UTC).strftime("%Y-%m-%d %H:%M")
        print(
            f"density: {options.nodes} nodes x {options.pods} pods of {options.containers}"
            f" container(s), {options.minutes} min of 10 s samples from {since} UTC:"
            f" {sent} payloads sent in {took:.0f} s, each answered 200"
        )
        store = open_storage(url)
        started = time.perf_counter()
        periods, _ = upkeep(store)
        print(
            f"upkeep (the server's, run once it stopped): {periods} periods rolled up, the"
            f" empty ones up to now included, in {time.perf_counter() - started:.0f} s"
        )
        store.close()
        head = tier_bytes(path)
        # Later, once every span is sealed: the upkeep as it runs a day on.
        later = first + DAY - 600
        store = open_storage(url, clock=lambda: later)
        started = time.perf_counter()
        for _ in range(2):  # a span is sealed by a round that finds no new row in it
            store.roll_up()
        while store.upkeep.seal():  # a round seals what a budget of time allows
            pass
        took = time.perf_counter() - started
        store.close()
        print(f"sealing (the upkeep a day on, every span finished): {took:.1f} s")
        raw = report(path, values, options.volume_gib, head)
        if om is not None:
            compare(om, om.blocks_bytes(), options.nodes * options.pods, buckets, raw)
        else:
            print("prometheus: skipped (--no-prometheus, or no promtool on PATH)")


def tier_bytes(path: Path) -> dict[int, float]:
    """The bytes of each tier's rows in the head tables and in sealed chunks: {(res,
    sealed): bytes} (a table's pages shared out by the bytes of each resolution's rows)."""
    sizes = pages(path)
    conn = sqlite3.connect(path)
    tiers: dict = Counter()
    for table in RAW:
        tiers[BUCKET, False] += sizes.get(table, 0)
    for table in ROLLUPS:
        shares = dict(conn.execute(f"SELECT res, sum(length(v)) FROM {table} GROUP BY res"))
        for res, share in shares.items():
            tiers[res, False] += sizes.get(table, 0) * share / sum(shares.values())
    shares = dict(conn.execute("SELECT res, sum(length(v)) FROM chunk GROUP BY res"))
    for res, share in shares.items():
        tiers[res, True] += sizes["chunk"] * share / sum(shares.values())
    # The time the head tables cover: their periods (the server may have sealed older ones).
    (tiers["covered", BUCKET],) = conn.execute(
        "SELECT count(DISTINCT bucket) * 10 FROM pod_sample"
    ).fetchone()
    for res in RESOLUTIONS[1:]:
        (tiers["covered", res],) = conn.execute(
            "SELECT count(DISTINCT bucket) * res FROM pod_rollup WHERE res = ?", (res,)
        ).fetchone()
    conn.close()
    return tiers


def report(path: Path, values: float, volume_gib: float, head: dict) -> float:
    """Print the tables' and tiers' bytes, in the head tables (before sealing) and sealed;
    the raw tier's sealed bytes per pod-day."""
    sizes = pages(path)
    conn = sqlite3.connect(path)
    rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sizes}
    (pods,) = conn.execute("SELECT count(*) FROM pod").fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    print(f"file: {path.stat().st_size / 1e6:.1f} MB, {free * page_size / 1e6:.1f} MB of it free")
    print(f"{'table':<16} {'rows':>10} {'bytes':>13}  (indexes included)")
    for table, size in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"{table:<16} {rows[table]:>10} {size:>13}")
    sealed = tier_bytes(path)
    by_kind = dict(
        conn.execute("SELECT tbl, sum(length(v)) FROM chunk WHERE res = 10 GROUP BY tbl")
    )
    shares = ", ".join(
        f"{who} {100 * by_kind.get(t, 0) / sum(by_kind.values()):.0f} %" for t, who in RAW.items()
    )
    (buckets,) = conn.execute(
        "SELECT (max(last) - min(first)) / 10 + 1 FROM chunk WHERE res = 10"
    ).fetchone()
    (minutes,) = conn.execute(
        "SELECT (max(last) - min(first)) / 60 + 1 FROM chunk WHERE res = 60"
    ).fetchone()
    (hours,) = conn.execute(
        "SELECT (max(last) - min(first)) / 3600 + 1 FROM chunk WHERE res = 3600"
    ).fetchone()
    conn.close()
    covered = {BUCKET: buckets * BUCKET, 60: minutes * 60, 3600: hours * 3600}

    head_per_day = {
        res: head[res, False] / pods / head["covered", res] * DAY if head["covered", res] else 0
        for res in RESOLUTIONS
    }
    sealed_per_day = {res: sealed[res, True] / pods / covered[res] * DAY for res in RESOLUTIONS}
    raw = sealed_per_day[BUCKET]
    print(
        f"raw tier: {raw / 1e3:.0f} KB per pod-day sealed, {head_per_day[BUCKET] / 1e3:.0f} KB"
        f" in the head tables ({buckets} buckets of {pods} pods; sealed: {shares}); a pod's"
        " sample carries"
        f" {values:.0f} values: {raw / 8640 / values:.2f} bytes a value sealed, its node's and"
        " groups' rows included"
    )
    for res in RESOLUTIONS[1:]:
        print(
            f"{span(res)} tier: {sealed_per_day[res] / 1e3:.1f} KB per pod-day sealed"
            f" ({covered[res] // res} periods), {head_per_day[res] / 1e3:.1f} KB in the head"
            f" tables; sealed {sealed_per_day[res] / raw:.3f} of the raw tier's"
        )
    catalogue = sum(sizes.get(t, 0) for t in CATALOGUE) / pods
    # What a day's retention holds of a tier: its newest rows in the head tables (a piece and
    # the wait before it is sealed, at most), the rest sealed.
    held = {}
    for res in RESOLUTIONS:
        in_head = min(RETENTION[res], PIECE[res] + SEAL_AFTER)
        # A chunk goes when its last row expires: on average half a span after its first.
        in_chunks = RETENTION[res] - in_head + SPAN[res] / 2
        held[res] = (head_per_day[res] * in_head + sealed_per_day[res] * in_chunks) / DAY
    per_pod = catalogue + sum(held.values())
    kept = ", ".join(f"{span(RETENTION[res])} of {span(res)}" for res in RESOLUTIONS)
    parts = ", ".join(f"{held[res] / 1e6:.2f} MB of {span(res)}" for res in RESOLUTIONS)
    print(
        f"at the default retention ({kept}), the newest piece of each tier and the wait before"
        " it is sealed in the head tables, chunks kept until their last row expires:"
        f" {per_pod / 1e6:.2f} MB per pod ({parts},"
        f" {catalogue:.0f} bytes of catalogue rows); a {volume_gib:g} GiB volume holds"
        f" {volume_gib * GiB / per_pod:.0f} pods"
    )
    return raw


def compare(om: OpenMetrics, size: int, pods: int, buckets: int, raw: float) -> None:
    per_pod_day = size / pods / (buckets * BUCKET) * DAY
    print(
        f"prometheus: cAdvisor's {len(CADVISOR)} series a pod (same values and timestamps,"
        f" promtool's blocks): {om.samples} samples in {size} bytes, {size / om.samples:.2f}"
        f" bytes a sample, {per_pod_day / 1e3:.0f} KB per pod-day; cloudmon's raw tier"
        f" {raw / per_pod_day:.1f} times that"
    )


if __name__ == "__main__":
    main()
