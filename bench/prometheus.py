"""Prometheus store benchmark, side by side with SQLite in one run: the same payloads stored
in each store, the same queries as bench/server.py over real HTTP to a real server (gunicorn)
on each, then the same ingest load into each. The engines are Debian's Prometheus and
VictoriaMetrics single-node (with the scale-out overlay's flags), on this machine, one store
at a time.

Smaller or larger runs: --nodes, --pods, --hours; some stores only: --stores.
"""

import argparse
import random
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "tests"),
]

from fixtures.prometheus import PrometheusProcess  # noqa: E402
from fixtures.victoriametrics import VictoriaMetricsProcess  # noqa: E402
from server import (  # noqa: E402
    bench_ingest,
    cpu_seconds,
    fill,
    median_ms,
    queries,
    refresh,
    start_server,
    write_hours,
)

from cloudmon.storage import open_storage  # noqa: E402

STORES = ("sqlite", "prometheus", "victoriametrics")
# Per engine: how it starts in a directory, and the line of its /metrics counting the
# remote-write requests it answered (one per payload ingested through cloudmon).
ENGINES = {
    "prometheus": (
        PrometheusProcess,
        'prometheus_http_requests_total{code="204",handler="/api/v1/write"}',
    ),
    "victoriametrics": (VictoriaMetricsProcess, 'vm_http_requests_total{path="/api/v1/write"'),
}


def fill_engine(url: str, nodes: int, pods: int, hours: float, namespaces: int) -> int:
    """Store `hours` of data up to now through the store's remote-write, a bucket at a time."""
    store = open_storage(url)
    samples = write_hours(store, nodes, pods, hours, namespaces)
    store.close()
    return samples


def write_requests(engine, line: str) -> float:
    """The engine's count of remote-write requests answered, from its /metrics."""
    with urllib.request.urlopen(engine.url + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line))


def bench_store(name: str, directory: Path, options, namespaces: int) -> dict[str, float]:
    """Fill one store, then time the queries (median ms, by label) and the ingest load."""
    random.seed(1)  # the same payloads in every store
    engine = None
    started = time.perf_counter()
    if name == "sqlite":
        url = f"sqlite:///{directory}/bench.db"
        samples = fill(
            directory / "bench.db", options.nodes, options.pods, options.hours, namespaces
        )[0]
    else:
        make, writes_line = ENGINES[name]
        engine = make(directory).start()
        url = f"prometheus+http://127.0.0.1:{engine.port}"
        samples = fill_engine(url, options.nodes, options.pods, options.hours, namespaces)
        engine.flush()
    print(f"fill {name}: {samples} samples in {time.perf_counter() - started:.0f} s")
    try:
        process, base = start_server(url, options.workers, options.threads)
        try:
            reported = [0.0]

            def report_again() -> None:
                """Latest lists show what reported in the last 30 s: every node reports
                again when the last reports are 10 s old (a slow engine's 15 latest lists
                would otherwise outlast them)."""
                if time.monotonic() - reported[0] > 10:
                    refresh(base, options.nodes, options.pods, namespaces)
                    if engine is not None:
                        engine.flush()
                    reported[0] = time.monotonic()

            figures = {}
            report_again()
            for label, path in queries(base, options.hours, namespaces).items():
                figures[label] = median_ms(base + path, 15, report_again)
            print(f"-- ingest into {name}")
            if engine is not None:
                cpu_before = cpu_seconds(engine.process.pid)
                writes_before = write_requests(engine, writes_line)
            bench_ingest(base, process.pid, options.clients, options.ingest_seconds, 110)
            if engine is not None:
                cpu = cpu_seconds(engine.process.pid) - cpu_before
                writes = write_requests(engine, writes_line) - writes_before
                print(
                    f"ingest: {name} itself used {cpu:.1f} s of CPU meanwhile, "
                    f"{cpu / writes * 1000:.2f} ms per payload ({writes:.0f} payloads)"
                )
            return figures
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        if engine is not None:
            engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    # Longer than bench/server.py's 10 s: an engine takes its first payload of a node (2,000
    # new series) several times slower than the next ones.
    parser.add_argument("--ingest-seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated")
    options = parser.parse_args()
    names = options.stores.split(",")
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown store {sorted(unknown)[0]!r}: choose among {', '.join(STORES)}")
    namespaces = max(1, options.nodes * options.pods // 500)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            directory = Path(tmp) / name
            directory.mkdir()
            for label, ms in bench_store(name, directory, options, namespaces).items():
                figures.setdefault(label, {})[name] = ms
    print(f"{'query (median ms)':62}" + "".join(f"{name:>16}" for name in names))
    for label, times in figures.items():
        print(f"{label:62}" + "".join(f"{times.get(name, float('nan')):16.1f}" for name in names))


if __name__ == "__main__":
    main()
