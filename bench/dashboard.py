"""Dashboard benchmark: the real server (gunicorn, SQLite file) holding 200 nodes x 50 pods,
ingested over HTTP, and the dashboard in Debian's chromium (headless). Prints each figure.

Targets (issue 6): the overview's first meaningful paint (cards and all charts filled) within
1 s of loading; the 10,000-pod list scrolling without stalls (frames over 50 ms); each page's
API calls within the server's query budgets (issue 3: /api/nodes <= 30 ms, /api/pods (all)
<= 300 ms, one pod over 1 h <= 20 ms, a namespace's pods over 1 h <= 50 ms).
Smaller runs: --nodes, --pods, --minutes.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.servers import running_server
from livecluster import launch_chromium, node_payload, post

SCROLL_FRAMES = 300
STALL_MS = 50


def ingest(base: str, nodes: int, pods: int, minutes: int) -> float:
    """Ingest the cluster every 10 s over the last `minutes`, 4 requests at a time."""
    end = time.time()
    times = [end - minutes * 60 + 10 * (k + 1) for k in range(minutes * 6)]

    def bucket(t: float) -> None:
        for first in range(0, nodes, 50):
            post(base, [node_payload(n, t, pods) for n in range(first, min(nodes, first + 50))])

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(bucket, times))
    return time.perf_counter() - started


def keep_reporting(base: str, nodes: int, pods: int, stop: threading.Event) -> None:
    """Every 10 s, the whole cluster's payloads for now, as its agents would send them."""
    while not stop.is_set():
        now = time.time()
        for first in range(0, nodes, 50):
            post(base, [node_payload(n, now, pods) for n in range(first, min(nodes, first + 50))])
        stop.wait(10)


def latency_ms(url: str, repeats: int = 5) -> tuple[float, int]:
    """Median milliseconds of a GET and its answer's size in bytes."""
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as answer:
            size = len(answer.read())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), size


def api_figures(base: str, window: str) -> None:
    step = {"1h": "120s", "15m": "30s"}.get(window, "120s")
    pod_metrics = "cpu_cores,memory_working_set_bytes"
    group = (
        "cpu_cores,cpu_request_cores,memory_working_set_bytes,memory_request_bytes,pod_count,"
        "network_rx_bps,network_tx_bps"
    )
    node_metrics = (
        "cpu_cores,cpu_percent,memory_used_bytes,memory_percent,pod_count,"
        "network_rx_bps,network_tx_bps"
    )
    series = f"window={window}&step={step}"
    pod = urllib.request.urlopen(f"{base}/api/pods?metrics=cpu_cores", timeout=60).read()
    first = json.loads(pod)["items"][0]
    ns, name, node = first["namespace"], first["name"], first["node"]
    pages = {
        "overview": [
            f"cluster?window={window}",
            "nodes?metrics=cpu_cores",
            "namespaces?metrics=cpu_cores",
            "deployments?metrics=pod_count",
            "pods?metrics=cpu_cores",
        ],
        "nodes": [f"nodes?{series}&metrics={node_metrics}"],
        "node": [
            f"nodes/{node}?window={window}",
            f"nodes/{node}/pods?{series}&metrics={pod_metrics}",
        ],
        "namespaces": [f"namespaces?{series}&metrics={group}"],
        "namespace": [
            f"namespaces/{ns}?window={window}",
            f"namespaces/{ns}/deployments?{series}&metrics={group}",
            f"namespaces/{ns}/pods?{series}&metrics={pod_metrics}",
        ],
        "deployments": [f"deployments?{series}&metrics={group}"],
        "pods": [f"pods?{series}&metrics={pod_metrics}"],
        "pod": [f"pods/{ns}/{name}?window={window}"],
    }
    print(f"API calls of each page (range {window}; median of 5):")
    for page, paths in pages.items():
        for path in paths:
            ms, size = latency_ms(f"{base}/api/{path}")
            print(f"  {page:<12} {ms:8.1f} ms {size / 1e6:8.2f} MB  /api/{path}")


PAINTED = """() => document.querySelectorAll('figure.chart[data-points]').length === 4
    && document.querySelector('.card[data-metric="node_count"] .value[data-value]') !== null"""

SCROLL = """async ([frames]) => {
    const scroller = document.querySelector('.scroller');
    const gaps = [];
    let last = performance.now();
    for (let i = 0; i < frames; i++) {
        scroller.scrollTop += 300;
        await new Promise(requestAnimationFrame);
        const now = performance.now();
        gaps.push(now - last);
        last = now;
    }
    return {gaps, rows: document.querySelectorAll('tr[data-index]').length,
            top: scroller.scrollTop};
}"""

FILTER = """([text]) => {
    const input = document.querySelector('input[type=search]');
    const started = performance.now();
    input.value = text;
    input.dispatchEvent(new Event('input'));
    return performance.now() - started;
}"""


def browser_figures(base: str, window: str) -> None:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(60_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        paints = []
        for _ in range(3):
            page.goto(f"{base}/#/?range={window}")
            page.wait_for_function(PAINTED)
            paints.append(page.evaluate("performance.now()"))
            page.goto("about:blank")
        print(
            f"overview first meaningful paint: median {statistics.median(paints):.0f} ms "
            f"(runs {', '.join(f'{p:.0f}' for p in paints)}; target <= 1000 ms)"
        )
        page.goto(f"{base}/#/?range={window}")
        page.wait_for_selector('[data-busiest="pods"] li')
        print(
            f"overview complete (busiest pods listed): {page.evaluate('performance.now()'):.0f} ms"
        )

        page.goto(f"{base}/#/pods?range={window}")
        page.wait_for_selector("tr[data-index]")
        loaded = page.evaluate("performance.now()")
        total = page.locator(".count").inner_text()
        print(f"pod list: {total} pods, rows shown after {loaded:.0f} ms")
        result = page.evaluate(SCROLL, [SCROLL_FRAMES])
        gaps = sorted(result["gaps"])
        stalls = sum(1 for g in gaps if g > STALL_MS)
        print(
            f"pod list scrolling ({SCROLL_FRAMES} frames, 300 px each): median frame "
            f"{statistics.median(gaps):.1f} ms, p95 {gaps[int(len(gaps) * 0.95)]:.1f} ms, max "
            f"{gaps[-1]:.1f} ms, stalls (> {STALL_MS} ms) {stalls}; rows in the DOM "
            f"{result['rows']}"
        )
        filtered = page.evaluate(FILTER, ["shop-app-1"])
        print(f"pod list filter to {page.locator('.count').inner_text()}: {filtered:.0f} ms")
        browser.close()
        if errors:
            print("page errors:", errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--window", default="1h", choices=["15m", "1h"])
    args = parser.parse_args()
    print("while measuring, the whole cluster reports every 10 s as its agents would")
    with tempfile.TemporaryDirectory() as directory, running_server(Path(directory)) as base:
        seconds = ingest(base, args.nodes, args.pods, args.minutes)
        samples = args.nodes * args.minutes * 6
        print(
            f"stored {args.nodes} nodes x {args.pods} pods x {args.minutes} min "
            f"({samples} payloads) in {seconds:.0f} s"
        )
        stop = threading.Event()
        agents = threading.Thread(target=keep_reporting, args=(base, args.nodes, args.pods, stop))
        agents.start()
        try:
            time.sleep(2)
            api_figures(base, args.window)
            browser_figures(base, args.window)
        finally:
            stop.set()
            agents.join()


if __name__ == "__main__":
    main()
