"""Prometheus store benchmark, side by side with SQLite in one run: the same payloads stored
in each, the same queries as bench/server.py over real HTTP to a real server (gunicorn) on
each store, then the same ingest load into each. Prometheus is Debian's, on this machine.

Smaller or larger runs: --nodes, --pods, --hours.
"""

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "tests"),
]

from fixtures.prometheus import PrometheusProcess  # noqa: E402
from server import (  # noqa: E402
    bench_ingest,
    cpu_seconds,
    fill,
    median_ms,
    node_body,
    queries,
    refresh,
    start_server,
)

from cloudmon import payload as wire  # noqa: E402
from cloudmon.storage import open_storage  # noqa: E402


def fill_prometheus(url: str, nodes: int, pods: int, hours: float, namespaces: int) -> int:
    """Store `hours` of data up to now through the store's remote-write, a bucket at a time."""
    store = open_storage(url)
    samples = 0
    buckets = int(hours * 360)
    first = time.time() - 10 * buckets
    for b in range(buckets):
        batch = [node_body(n, first + 10 * b, pods, namespaces) for n in range(nodes)]
        samples += store.write(wire.decode(orjson.dumps(batch)))
    store.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    # Longer than bench/server.py's 10 s: Prometheus takes its first payload of a node (2,000
    # new series) several times slower than the next ones.
    parser.add_argument("--ingest-seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=3)
    options = parser.parse_args()
    random.seed(1)
    namespaces = max(1, options.nodes * options.pods // 500)
    with tempfile.TemporaryDirectory() as tmp:
        engine = PrometheusProcess(Path(tmp)).start()
        stores = {
            "sqlite": f"sqlite:///{tmp}/bench.db",
            "prometheus": f"prometheus+http://127.0.0.1:{engine.port}",
        }
        try:
            started = time.perf_counter()
            samples = fill(
                Path(tmp) / "bench.db", options.nodes, options.pods, options.hours, namespaces
            )[0]
            print(f"fill sqlite: {samples} samples in {time.perf_counter() - started:.0f} s")
            started = time.perf_counter()
            samples = fill_prometheus(
                stores["prometheus"], options.nodes, options.pods, options.hours, namespaces
            )
            print(f"fill prometheus: {samples} samples in {time.perf_counter() - started:.0f} s")
            servers = {
                name: start_server(url, options.workers, options.threads)
                for name, url in stores.items()
            }
            try:
                figures = {}
                for name, (_, base) in servers.items():
                    refresh(base, options.nodes, options.pods, namespaces)
                    for label, path in queries(base, options.hours, namespaces).items():
                        # Latest lists show what reported in the last 30 s: report again.
                        refresh(base, options.nodes, options.pods, namespaces)
                        figures.setdefault(label, {})[name] = median_ms(base + path, 15)
                print(f"{'query (median ms)':60} {'sqlite':>8} {'prometheus':>10}")
                for label, times in figures.items():
                    print(f"{label:60} {times['sqlite']:8.1f} {times['prometheus']:10.1f}")
                for name, (process, base) in servers.items():
                    print(f"-- ingest into {name}")
                    engine_cpu = cpu_seconds(engine.process.pid)
                    bench_ingest(base, process.pid, options.clients, options.ingest_seconds, 110)
                    if name == "prometheus":
                        used = cpu_seconds(engine.process.pid) - engine_cpu
                        print(f"ingest: Prometheus itself used {used:.1f} s of CPU meanwhile")
            finally:
                for process, _ in servers.values():
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
