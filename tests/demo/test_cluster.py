"""The synthetic cluster's payloads on their own: valid, consistent and repeatable."""

import collections
import itertools
import re

import pytest

from cloudmon import payload
from cloudmon.demo import DAEMONSETS, MIN_PODS_PER_NODE, PAGE, build_cluster, run_demo
from cloudmon.metrics import BY_NAME

START = 1_764_100_000.0
COUNTERS = (
    "cpu_usage_seconds_total",
    "cpu_throttled_seconds_total",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
)
RATES = {
    "cpu_cores": "cpu_usage_seconds_total",
    "disk_read_bps": "disk_read_bytes_total",
    "disk_write_bps": "disk_write_bytes_total",
    "network_rx_bps": "network_rx_bytes_total",
    "network_tx_bps": "network_tx_bytes_total",
}


def samples(nodes=3, pods_per_node=10, seed=1, count=30) -> list[list[dict]]:
    """`count` samples 10 s apart of each node: one list per node."""
    cluster = build_cluster(nodes, pods_per_node, seed, START)
    return [[node.sample(START + 10 * i) for i in range(count)] for node in cluster]


@pytest.fixture(scope="module")
def history():
    return samples()


def test_payloads_are_schema_1_with_no_field_the_schema_lacks(history):
    for node in history:
        decoded = payload.decode(payload.encode(node))
        assert [p.timestamp for p in decoded] == [START + 10 * i for i in range(len(node))]
    sample = history[0][-1]
    assert set(sample["node_metrics"]) <= set(payload.NodeMetrics.__struct_fields__)
    for pod in sample["pods"]:
        assert set(pod) <= set(payload.Pod.__struct_fields__)
        for container in pod["containers"]:
            assert set(container) <= set(payload.Container.__struct_fields__)


def test_the_same_seed_gives_the_same_payloads_and_another_seed_others():
    first = payload.encode(samples(count=3))
    assert payload.encode(samples(count=3)) == first
    assert payload.encode(samples(seed=2, count=3)) != first


def test_first_sample_has_no_interval_and_no_rates(history):
    first = history[0][0]
    assert first["interval"] is None
    assert first["node_metrics"]["cpu_cores"] is None
    for pod in first["pods"]:
        assert all(pod[rate] is None for rate in RATES)
        assert pod["cpu_usage_seconds_total"] > 0
    assert history[0][1]["interval"] == 10.0


def test_workloads_look_like_a_cluster(history):
    pods = [pod for node in history for pod in node[0]["pods"]]
    kinds = collections.Counter(pod["workload_kind"] for pod in pods)
    assert kinds["DaemonSet"] == 3 * len(history)
    assert kinds["Deployment"] > kinds["StatefulSet"] > 0
    assert {"shop", "payments", "monitoring", "kube-system"} == {p["namespace"] for p in pods}
    hashes = collections.defaultdict(set)
    for pod in pods:
        if pod["workload_kind"] == "Deployment":
            match = re.fullmatch(r"(.+)-([b-z2-9]{10})-([b-z2-9]{5})", pod["name"])
            assert match and match[1] == pod["deployment"] == pod["workload"]
            hashes[match[1]].add(match[2])
        elif pod["workload_kind"] == "StatefulSet":
            assert re.fullmatch(re.escape(pod["workload"]) + r"-\d+", pod["name"])
    assert all(len(h) == 1 for h in hashes.values())  # one ReplicaSet a Deployment
    assert len({pod["uid"] for pod in pods}) == len(pods)
    assert len({pod["name"] for pod in pods}) == len(pods)
    assert any(len(pod["containers"]) == 2 for pod in pods)
    assert any(pod["memory_limit_bytes"] is None for pod in pods)
    assert {pod["qos"] for pod in pods} == {"guaranteed", "burstable", "besteffort"}
    host_network = [pod for pod in pods if pod["host_network"]]
    assert host_network and all(pod["network_rx_bytes_total"] is None for pod in host_network)


def test_nodes_hold_their_pods(history):
    for node in history:
        for sample in node[1:]:
            metrics, pods = sample["node_metrics"], sample["pods"]
            assert metrics["pod_count"] == len(pods) == 10
            assert metrics["cpu_cores"] >= sum(pod["cpu_cores"] for pod in pods)
            assert metrics["cpu_cores"] <= sample["node_info"]["cpu_count"]
            assert metrics["memory_used_bytes"] >= sum(
                pod["memory_working_set_bytes"] for pod in pods
            )
            assert metrics["memory_used_bytes"] <= metrics["memory_total_bytes"]
            for name in ("disk_write_bps", "network_rx_bps"):
                assert metrics[name] >= sum(pod[name] or 0 for pod in pods)
            for pod in pods:
                containers = sum(c["cpu_cores"] for c in pod["containers"])
                assert pod["cpu_cores"] >= round(containers, BY_NAME["cpu_cores"].decimals)
                assert pod["memory_working_set_bytes"] <= pod["memory_usage_bytes"]
                assert pod["memory_working_set_bytes"] % PAGE == 0
                assert pod["memory_usage_bytes"] <= (pod["memory_limit_bytes"] or float("inf"))


def test_counters_grow_at_their_rates(history):
    for node in history:
        for before, after in itertools.pairwise(node):
            interval = after["interval"]
            entities = [(before["node_metrics"], after["node_metrics"])]
            for pod_before, pod_after in zip(before["pods"], after["pods"], strict=True):
                entities.append((pod_before, pod_after))
                entities += zip(pod_before["containers"], pod_after["containers"], strict=True)
            for old, new in entities:
                for counter in COUNTERS:
                    if counter in new:
                        assert new[counter] >= old[counter]
                for counter in ("cpu_usage_seconds_total", "cpu_throttled_seconds_total"):
                    if counter in new:
                        # Whole microseconds, as cgroup v2 counts CPU time.
                        assert new[counter] == round(new[counter] * 1e6) / 1e6
                for rate, counter in RATES.items():
                    if new.get(rate) is not None:
                        increase = new[counter] - old[counter]
                        assert new[rate] == BY_NAME[rate].per_second(increase, interval)

    last = [pod for node in history for pod in node[-1]["pods"]]
    assert any(pod["cpu_throttled_seconds_total"] > 0 for pod in last)


def test_memory_wanders(history):
    series = [sample["pods"][5]["memory_working_set_bytes"] for sample in history[0]]
    assert len(set(series)) > len(series) // 2


def test_each_node_runs_every_daemonset_and_the_smallest_cluster_has_a_shop():
    cluster = build_cluster(2, MIN_PODS_PER_NODE, 1, START)
    for node in cluster:
        assert {p.workload for p in node.pods} >= set(DAEMONSETS)
    assert "shop" in {p.workload.namespace for p in cluster[0].pods}
    with pytest.raises(ValueError, match="pods per node"):
        build_cluster(2, MIN_PODS_PER_NODE - 1, 1, START)


def test_a_node_of_110_pods_is_sized_for_them():
    (node,) = build_cluster(1, 110, 3, START)
    node.sample(START)
    (second,) = payload.decode(payload.encode(node.sample(START + 10)))
    assert second.node_metrics.pod_count == 110
    assert second.node_metrics.cpu_cores <= second.node_info.cpu_count
    assert second.node_metrics.memory_used_bytes <= second.node_info.memory_total_bytes


@pytest.mark.parametrize("count", [1, 2, 3])
def test_every_pod_can_have_the_same_number_of_containers(count):
    (node,) = build_cluster(1, 20, 1, START, containers=count)
    node.sample(START)
    (second,) = payload.decode(payload.encode(node.sample(START + 10)))
    for pod in second.pods:
        names = [c.name for c in pod.containers]
        assert len(set(names)) == len(names) == count
    qos = {p.workload.name: p.workload.qos for p in node.pods}
    # payments/api's own container is guaranteed; its envoy sidecar, or another, is not.
    assert qos["api"] == ("guaranteed" if count == 1 else "burstable")


@pytest.mark.parametrize(
    ("server", "pods_per_node", "message"),
    [
        ("http://127.0.0.1:1", MIN_PODS_PER_NODE - 1, "pods per node"),
        ("ftp://127.0.0.1", MIN_PODS_PER_NODE, "http:// or https://"),
    ],
)
def test_run_demo_refuses_to_start_with_bad_arguments(caplog, server, pods_per_node, message):
    assert run_demo(server, pods_per_node=pods_per_node) == 2
    assert message in caplog.text
