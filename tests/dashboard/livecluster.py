"""A real cloudmon server process on a loopback port, a synthetic cluster ingested into it
over HTTP, and Debian's chromium: for the dashboard and `cloudmon top` tests and
bench/dashboard.py."""

import gzip
import json
import math
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
NODES, PODS = 3, 6  # the browser tests' cluster
NAMESPACES = ("shop", "payments", "search", "monitoring", "kube-system", "batch")
GIB = 1 << 30


def launch_chromium(playwright):
    """Debian's chromium, headless, driven by Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def link_texts(page, table: str, column: str) -> list[str]:
    """The texts of the links in a column of a table of the page."""
    cells = page.locator(f'table[data-name="{table}"] td[data-column="{column}"] a')
    return cells.all_inner_texts()


def wait_rows(page, table: str, count: int) -> None:
    """Until a table of the page has `count` rows."""
    page.wait_for_function(
        "([t, n]) => document.querySelectorAll(`table[data-name='${t}'] tr[data-index]`).length"
        " === n",
        arg=[table, count],
    )


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot under artifacts/dashboard/."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _wave(seed: int, t: float, period: float = 900.0) -> float:
    """A smooth value in [0, 1] that differs by seed and moves with time."""
    return 0.5 + 0.5 * math.sin(2 * math.pi * t / period + seed * 1.7)


def containers(
    seed: int, index: int, cpu: float, memory: int, disk_read: float, disk_write: float
) -> list[dict]:
    """The pod's containers: `app`, and in every other pod a `proxy` sidecar; they share out
    most of the pod's figures (the pod's own cgroup holds a little more)."""
    shares = {"app": 0.8, "proxy": 0.15} if index % 2 == 0 else {"app": 0.95}
    return [
        {
            "id": f"{seed:08x}{k:056x}",
            "name": name,
            "cpu_cores": cpu * share,
            "cpu_limit_cores": 1.5 if name == "app" else 0.5,
            "cpu_request_cores": 0.2 if name == "app" else 0.05,
            "memory_usage_bytes": int(memory * share) + (8 << 20),
            "memory_working_set_bytes": int(memory * share),
            "memory_limit_bytes": (GIB * 3 // 2) if name == "app" else GIB // 2,
            "memory_request_bytes": (96 << 20) if name == "app" else 32 << 20,
            "disk_read_bps": disk_read * share,
            "disk_write_bps": disk_write * share,
            "memory_anon_bytes": int(memory * share * 0.9),
            "memory_file_bytes": int(memory * share * 0.1) + (8 << 20),
            "cpu_throttled_percent": 40.0 if in_trouble(index) else 0.0,
        }
        for k, (name, share) in enumerate(shares.items())
    ]


def pod_sample(node: int, index: int, t: float) -> dict:
    """One pod of node `node` at time t; its namespace and deployment follow from the indexes."""
    namespace = NAMESPACES[(node + index) % len(NAMESPACES)]
    deployment = f"{namespace}-app-{index % 5}"
    seed = node * 1000 + index
    cpu = 0.02 + 0.5 * _wave(seed, t) * (1 + index % 3)
    memory = int((64 + 512 * _wave(seed + 7, t, 1800) + 32 * (index % 4)) * (1 << 20))
    disk_read, disk_write = 20_000 * _wave(seed + 3, t), 50_000 * _wave(seed + 4, t)
    return {
        "uid": f"{node:05d}-{index:04d}-4000-8000-000000000000",
        "name": f"{deployment}-{node:03d}-{index:03d}",
        "namespace": namespace,
        "deployment": deployment,
        "workload_kind": "Deployment",
        "workload": deployment,
        "node": f"node-{node:03d}",
        "qos": "burstable",
        "containers": containers(seed, index, cpu, memory, disk_read, disk_write),
        "cpu_cores": cpu,
        "cpu_limit_cores": 2.0,
        "cpu_request_cores": 0.25,
        "memory_usage_bytes": memory + (16 << 20),
        "memory_working_set_bytes": memory,
        "memory_limit_bytes": 2 * GIB,
        "memory_request_bytes": 128 << 20,
        "disk_read_bps": disk_read,
        "disk_write_bps": disk_write,
        "network_rx_bps": 200_000 * _wave(seed + 5, t),
        "network_tx_bps": 120_000 * _wave(seed + 6, t),
        **(TROUBLED if in_trouble(index) else HEALTHY),
    }


# One pod in seven of each node is in trouble: throttled, stalled, OOM killed and restarted.
TROUBLED = {
    "cpu_throttled_percent": 40.0,
    "cpu_pressure_some_ratio": 0.25,
    "memory_pressure_some_ratio": 0.05,
    "memory_oom_kills_total": 2,
    "restarts_total": 3,
    "last_termination_oom_killed": 1,
}
HEALTHY = {
    "cpu_throttled_percent": 0.0,
    "cpu_pressure_some_ratio": 0.01,
    "memory_pressure_some_ratio": 0.0,
    "memory_oom_kills_total": 0,
    "restarts_total": 0,
    "last_termination_oom_killed": 0,
}


def in_trouble(index: int) -> bool:
    return index % 7 == 3


def node_payload(node: int, t: float, pods: int) -> dict:
    """The payload of node `node` with `pods` pods at time t."""
    pod_list = [pod_sample(node, i, t) for i in range(pods)]
    cpu = 0.3 + sum(p["cpu_cores"] for p in pod_list)
    used = 2 * GIB + sum(p["memory_usage_bytes"] for p in pod_list)
    total = 64 * GIB * max(1, pods // 40)

    def total_of(name: str) -> float:
        return sum(p[name] for p in pod_list) + 1000.0

    return {
        "schema": 1,
        "node": f"node-{node:03d}",
        "timestamp": t,
        "interval": 10.0,
        "node_info": {"cpu_count": 16, "memory_total_bytes": total, "cgroup_version": 2},
        "node_metrics": {
            "cpu_cores": cpu,
            "cpu_percent": 100 * cpu / 16,
            "memory_total_bytes": total,
            "memory_available_bytes": total - used,
            "memory_used_bytes": used,
            "memory_percent": 100 * used / total,
            "disk_read_bps": total_of("disk_read_bps"),
            "disk_write_bps": total_of("disk_write_bps"),
            "network_rx_bps": total_of("network_rx_bps"),
            "network_tx_bps": total_of("network_tx_bps"),
            "load1": cpu,
            "load5": cpu,
            "load15": cpu,
            "fs_total_bytes": 200 * GIB,
            "fs_used_bytes": 80 * GIB,
            "pod_count": pods,
            "memory_oom_kills_total": sum(p["memory_oom_kills_total"] for p in pod_list),
            "cpu_pressure_some_ratio": 0.02,
            "memory_pressure_some_ratio": 0.0,
            "io_pressure_some_ratio": 0.003,
        },
        "pods": pod_list,
    }


def post(base: str, payloads: list[dict], attempts: int = 20) -> None:
    """POST payloads to /api/ingest, gzip-compressed; a 503 (the server sheds load) is sent
    again after its Retry-After, as an agent does."""
    body = gzip.compress(json.dumps(payloads).encode(), compresslevel=1)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for attempt in range(attempts):
        request = urllib.request.Request(base + "/api/ingest", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                answer.read()
                return
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == attempts - 1:
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))


def ingest_cluster(
    base: str, nodes: int, pods: int, seconds: int, end: float | None = None, batch: int = 40
) -> float:
    """Ingest `nodes` x `pods` pods every 10 s for `seconds` up to `end`; returns `end`."""
    end = time.time() if end is None else end
    times = [end - seconds + 10 * (k + 1) for k in range(seconds // 10)]
    pending = []
    for t in times:
        for node in range(nodes):
            pending.append(node_payload(node, t, pods))
            if len(pending) >= batch:
                post(base, pending)
                pending = []
    if pending:
        post(base, pending)
    return end
