"""Dashboard benchmark: the real server (gunicorn, SQLite file) holding 200 nodes x 50 pods,
ingested over HTTP, and the dashboard in Debian's chromium (headless). Prints each figure.

Targets (issue 6): the overview's first meaningful paint (cards and all charts filled) within
1 s of loading; the 10,000-pod list scrolling without stalls (frames over 50 ms); each page's
API calls, as the browser makes them, within the server's query budgets (issue 3).
Smaller runs: --nodes, --pods, --minutes; --server URL measures a server already filled.
"""

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.servers import get_json, running_server
from livecluster import launch_chromium, node_payload, post

SCROLL_FRAMES = 300
STALL_MS = 50

# Issue 3's query budgets (medians over HTTP) by the kind of call; a call of another kind,
# or one asking for more than its budget was set for, is printed without one.
BUDGETS = [
    (r"pods/[^/]+/[^/]+", "series", 20, "one pod over 1 h"),
    (r"namespaces/[^/]+", "series", 50, "a 500-pod namespace over 1 h"),
    (r"nodes", "latest", 30, "/api/nodes latest"),
    (r"pods", "latest", 300, "/api/pods latest, all pods"),
    (r"cluster", "series", 50, "the cluster over 7 d"),
]


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


def latency_ms(url: str, repeats: int = 5) -> float:
    """Median milliseconds of a GET over HTTP."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as answer:
            answer.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


ROUTE_WORDS = {"cluster", "nodes", "namespaces", "deployments", "pods", "containers"}


def shape(url: str) -> tuple[str, str]:
    """The path under /api/ with entity names as {…}, and whether it asks for series."""
    parts = urlsplit(url)
    path = unquote(parts.path).split("/api/", 1)[1]
    generic = "/".join(s if s in ROUTE_WORDS else "{…}" for s in path.split("/"))
    series = "series" if ("window=" in parts.query or "start=" in parts.query) else "latest"
    return generic, series


def budget(url: str) -> tuple[float, str] | None:
    """The budget a call is held to, if one was set for its kind."""
    path = unquote(urlsplit(url).path).split("/api/", 1)[1]
    kind = shape(url)[1]
    for pattern, wanted, ms, label in BUDGETS:
        if re.fullmatch(pattern, path) and kind == wanted:
            return ms, label
    return None


def page_urls(base: str, window: str) -> dict[str, str]:
    """Each page of the dashboard, at one real node, namespace, deployment and pod."""
    pods = get_json(f"{base}/api/pods?metrics=cpu_cores")["items"]
    pod = max(pods, key=lambda p: p["metrics"]["cpu_cores"] or 0)
    sizes = defaultdict(int)
    for p in pods:
        sizes[p["namespace"]] += 1
    ns = pod["namespace"]
    hash_query = f"?range={window}"
    return {
        "overview": f"#/{hash_query}",
        "nodes": f"#/nodes{hash_query}",
        f"node ({pod['node']})": f"#/nodes/{pod['node']}{hash_query}",
        "namespaces": f"#/namespaces{hash_query}",
        f"namespace ({ns}, {sizes[ns]} pods)": f"#/namespaces/{ns}{hash_query}",
        "deployments": f"#/deployments{hash_query}",
        "deployment": f"#/deployments/{ns}/{pod['deployment']}{hash_query}",
        f"pods ({len(pods)})": f"#/pods{hash_query}",
        "pod": f"#/pods/{ns}/{pod['name']}{hash_query}",
    }


def record_calls(page, base: str, fragment: str) -> list[tuple[str, float]]:
    """The /api/ calls a page makes until it settles, each with its time in the browser."""
    page.goto("about:blank")
    page.goto(f"{base}/{fragment}")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # the rows' series, fetched once a table settles
    page.wait_for_load_state("networkidle")
    entries = page.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter(e => e.name.includes('/api/'))
            .map(e => [e.name, e.responseEnd - e.startTime])"""
    )
    return [(url, ms) for url, ms in entries]


def api_figures(page, base: str, window: str) -> None:
    print(
        f"API calls of each page as the browser makes them (range {window}): median of 5 "
        "over HTTP one at a time [budget], and the slowest in the page (calls run in parallel)"
    )
    over = []
    for name, fragment in page_urls(base, window).items():
        groups = defaultdict(list)
        for url, browser_ms in record_calls(page, base, fragment):
            groups[shape(url)].append((url, browser_ms))
        print(f"  {name}:")
        for (path, kind), calls in groups.items():
            medians = [latency_ms(url) for url, _ in calls[:10]]
            worst = max(ms for _, ms in calls)
            limit = budget(calls[0][0])
            verdict = ""
            if limit:
                ok = max(medians) <= limit[0]
                verdict = f" [<= {limit[0]} ms, {limit[1]}: {'ok' if ok else 'OVER'}]"
                if not ok:
                    over.append(f"{name}: {path}")
            count = f" x{len(calls)}" if len(calls) > 1 else ""
            spread = (
                f"{max(medians):7.1f} ms"
                if len(medians) == 1
                else (f"{min(medians):.1f}-{max(medians):.1f} ms")
            )
            print(f"    {path} ({kind}){count}: {spread}, in page {worst:.0f} ms{verdict}")
    print(f"calls over budget: {', '.join(over) if over else 'none'}")


PAINTED = """() => document.querySelectorAll('figure.chart[data-points]').length === 4
    && document.querySelector('.card[data-metric="node_count"] .value[data-value]') !== null"""

SCROLL = """async ([frames, step]) => {
    const scroller = document.querySelector('.scroller');
    const gaps = [];
    let last = performance.now();
    for (let i = 0; i < frames; i++) {
        scroller.scrollTop += step;
        await new Promise(requestAnimationFrame);
        const now = performance.now();
        gaps.push(now - last);
        last = now;
    }
    return {gaps, rows: document.querySelectorAll('tr[data-index]').length};
}"""

FILTER = """([text]) => {
    const input = document.querySelector('input[type=search]');
    const started = performance.now();
    input.value = text;
    input.dispatchEvent(new Event('input'));
    return performance.now() - started;
}"""


def frames(result: dict) -> str:
    gaps = sorted(result["gaps"])
    stalls = sum(1 for g in gaps if g > STALL_MS)
    return (
        f"median frame {statistics.median(gaps):.1f} ms, p95 {gaps[int(len(gaps) * 0.95)]:.1f} "
        f"ms, max {gaps[-1]:.1f} ms, stalls (> {STALL_MS} ms) {stalls}/{len(gaps)}; rows in "
        f"the DOM {result['rows']}"
    )


def browser_figures(page, base: str, window: str) -> None:
    paints = []
    for _ in range(3):
        page.goto("about:blank")
        page.goto(f"{base}/#/?range={window}")
        page.wait_for_function(PAINTED)
        paints.append(page.evaluate("performance.now()"))
    print(
        f"overview first meaningful paint: median {statistics.median(paints):.0f} ms "
        f"(runs {', '.join(f'{p:.0f}' for p in paints)}; target <= 1000 ms)"
    )
    page.wait_for_selector('[data-busiest="pods"] li')
    print(f"overview complete (busiest pods listed): {page.evaluate('performance.now()'):.0f} ms")

    page.goto("about:blank")
    page.goto(f"{base}/#/pods?range={window}")
    page.wait_for_selector("tr[data-index]")
    loaded = page.evaluate("performance.now()")
    total = page.locator(".count").inner_text()
    print(f"pod list: {total} pods, rows shown after {loaded:.0f} ms")
    page.wait_for_load_state("networkidle")
    result = page.evaluate(SCROLL, [SCROLL_FRAMES, 0])
    print(
        f"pod list standing still ({SCROLL_FRAMES} frames, the machine's noise): {frames(result)}"
    )
    for step, label in ((300, "fast, 300 px"), (36, "slow, one row")):
        result = page.evaluate(SCROLL, [SCROLL_FRAMES, step])
        print(f"pod list scrolling ({SCROLL_FRAMES} frames, {label} each): {frames(result)}")
        page.wait_for_timeout(500)  # the rows in view fetch their series
        page.wait_for_load_state("networkidle")
    result = page.evaluate(SCROLL, [SCROLL_FRAMES, -36])
    print(f"pod list scrolling back over rows with sparklines: {frames(result)}")
    filtered = page.evaluate(FILTER, ["shop-app-1"])
    print(f"pod list filter to {page.locator('.count').inner_text()}: {filtered:.0f} ms")


@contextlib.contextmanager
def filled_server(args) -> str:
    """A server holding the cluster (or the one given), its agents reporting every 10 s."""
    if args.server:
        yield args.server.rstrip("/")
        return
    with tempfile.TemporaryDirectory() as directory, running_server(Path(directory)) as base:
        seconds = ingest(base, args.nodes, args.pods, args.minutes)
        samples = args.nodes * args.minutes * 6
        print(
            f"stored {args.nodes} nodes x {args.pods} pods x {args.minutes} min "
            f"({samples} payloads) in {seconds:.0f} s"
        )
        print("while measuring, the whole cluster reports every 10 s as its agents would")
        stop = threading.Event()
        agents = threading.Thread(target=keep_reporting, args=(base, args.nodes, args.pods, stop))
        agents.start()
        try:
            time.sleep(2)
            yield base
        finally:
            stop.set()
            agents.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--window", default="1h", choices=["15m", "1h"])
    parser.add_argument("--server", help="measure this server instead of filling a new one")
    args = parser.parse_args()
    with filled_server(args) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(60_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        browser_figures(page, base, args.window)
        api_figures(page, base, args.window)
        browser.close()
        if errors:
            print("page errors:", errors)


if __name__ == "__main__":
    main()
