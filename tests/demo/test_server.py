"""The demo against a real server: its history is taken whole and answers the README's
queries; then a sample per node every 10 s until a signal."""

import itertools
import signal
import subprocess
import sys
import time

import pytest
from fixtures.servers import get_json, running_server

from cloudmon.demo import INTERVAL, Demo

SPAN = 600  # seconds of history


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A server holding SPAN seconds of a demo cluster of 2 nodes x 6 pods: (URL, Demo, now)."""
    with running_server(tmp_path_factory.mktemp("demo")) as url:
        now = time.time()
        demo = Demo(url, start=now - SPAN, nodes=2, pods_per_node=6, seed=7)
        demo.catch_up(now)
        yield url, demo, now


def test_the_history_is_taken_whole(demo):
    _, demo, now = demo
    for sender in demo.senders:
        assert (sender.sent, sender.rejected, len(sender.spool)) == (SPAN // INTERVAL + 1, 0, 0)
    assert now < demo.next_sample <= now + INTERVAL


def test_namespaces_are_the_four_with_the_readmes_shop(demo):
    url, _, _ = demo
    namespaces = {item["namespace"] for item in get_json(url + "/api/namespaces")["items"]}
    assert namespaces == {"kube-system", "monitoring", "payments", "shop"}


def test_shop_has_named_pods_of_deployments(demo):
    url, _, _ = demo
    pods = get_json(url + "/api/pods?namespace=shop")["items"]
    assert len(pods) >= 3
    for pod in pods:
        assert pod["name"].startswith(pod["workload"] + "-")
        assert pod["deployment"] == pod["workload"]
        assert pod["metrics"]["cpu_cores"] > 0
    assert "Deployment" in {pod["workload_kind"] for pod in pods}


def test_the_cluster_has_a_series_over_the_history(demo):
    url, _, now = demo
    cluster = get_json(url + "/api/cluster?window=1h&metrics=cpu_cores,pod_count,node_count")
    series = cluster["series"]
    held = [
        (t, cpu)
        for t, cpu in zip(series["timestamps"], series["cpu_cores"], strict=True)
        if cpu is not None
    ]
    # The first sample of each node has no rates: the history's CPU starts 10 s in.
    assert len(held) == SPAN // INTERVAL
    assert held[0][0] <= now - SPAN + 2 * INTERVAL
    assert held[-1][0] >= now - 2 * INTERVAL
    assert {v for v in series["node_count"] if v is not None} == {2}
    assert {v for v in series["pod_count"] if v is not None} == {12}


def test_a_nodes_cpu_is_at_least_its_pods(demo):
    url, _, _ = demo
    for node in ("worker-1", "worker-2"):
        base = f"{url}/api/nodes/{node}"
        own = get_json(base + "?window=15m&metrics=cpu_cores")["series"]
        pods = [p["series"] for p in get_json(base + "/pods?window=15m&metrics=cpu_cores")["items"]]
        assert len(pods) == 6
        checked = 0
        for i, cpu in enumerate(own["cpu_cores"]):
            if cpu is not None:
                assert all(p["timestamps"][i] == own["timestamps"][i] for p in pods)
                assert cpu >= sum(p["cpu_cores"][i] for p in pods)
                checked += 1
        assert checked == SPAN // INTERVAL


def test_counters_never_go_backwards(demo):
    url, _, _ = demo
    counters = ["cpu_usage_seconds_total", "disk_write_bytes_total", "network_tx_bytes_total"]
    pods = get_json(f"{url}/api/pods?window=15m&metrics={','.join(counters)}")["items"]
    assert len(pods) == 12
    for pod, counter in itertools.product(pods, counters):
        values = [v for v in pod["series"][counter] if v is not None]
        assert values == sorted(values), (pod["name"], counter)


def test_live_samples_every_interval_with_a_token(tmp_path):
    (tmp_path / "token").write_text("demo-token\n")
    with running_server(tmp_path, "--token-file", str(tmp_path / "token")) as url:
        now = time.time()
        demo = Demo(
            url, start=now - 100, nodes=1, pods_per_node=4, token_file=str(tmp_path / "token")
        )
        clock = [now - 45]  # behind the server's clock: every sample lies in its past
        waits = []

        def sleep(seconds):
            waits.append(seconds)
            if len(waits) == 3:
                raise InterruptedError
            clock[0] += seconds

        with pytest.raises(InterruptedError):
            demo.run(clock=lambda: clock[0], sleep=sleep)
        (sender,) = demo.senders
        # Six samples (now - 100 to now - 50) at once, then one each round.
        assert (sender.sent, sender.rejected) == (6 + 2, 0)
        assert waits == pytest.approx([5, INTERVAL, INTERVAL])
        latest = get_json(url + "/api/nodes/worker-1")["timestamp"]
        assert latest == (demo.next_sample - INTERVAL) // 10 * 10


def start_demo(url: str, history: float) -> subprocess.Popen:
    """`run_demo` of a cluster of 1 node in a process of its own, its log on stderr."""
    code = (
        "import logging, sys; from cloudmon.demo import run_demo; logging.basicConfig();"
        "logging.getLogger('cloudmon').setLevel('INFO');"
        f" sys.exit(run_demo({url!r}, nodes=1, pods_per_node=4, history={history}))"
    )
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("other")) as url:
        yield url


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_it_quietly(other_server, signum):
    process = start_demo(other_server, history=60)
    lines = []
    while not any("history sent" in line for line in lines):
        line = process.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
    process.send_signal(signum)
    rest = process.communicate(timeout=10)[1]
    assert process.returncode == 0
    assert rest.strip().endswith("stopped")
    assert get_json(other_server + "/api/nodes")["items"][0]["node"] == "worker-1"


def test_it_stops_when_the_server_refuses_its_samples(tmp_path):
    with running_server(tmp_path, "--retention-raw", "5m") as url:
        process = start_demo(url, history=600)
        log = process.communicate(timeout=60)[1]
    assert process.returncode == 1
    assert "older than the raw retention" in log
    assert log.strip().endswith("the server refused samples of worker-1; stopping")
