"""One whole sample (node, pods, containers, rates) on fixture nodes of every layout."""

import dataclasses
import os
import shutil
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from fixtures.cases import CASES
from fixtures.crictl import FAKE_CRICTL, write_crictl_spec
from fixtures.nodebuilder import build, figures_of, stalled_usec

from cloudmon import payload
from cloudmon.agent.cgroups import open_cgroups
from cloudmon.agent.collect import Collector
from cloudmon.agent.metadata.cache import MetadataCache
from cloudmon.agent.metadata.crictl import CrictlSource
from cloudmon.agent.paths import Roots
from cloudmon.cli import main
from cloudmon.metrics import Scope, metrics_for


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _collector(node, clock=None, metadata=None) -> Collector:
    clock = clock or Clock()
    roots = Roots(proc=node.proc_root, cgroup=node.cgroup_root, rootfs=node.rootfs)
    return Collector(
        roots,
        "worker-1",
        open_cgroups(node.cgroup_root),
        metadata=metadata,
        clock=lambda: 1764100000.0,
        monotonic=clock,
    )


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path):
    spec = CASES[request.param]()
    return spec, build(spec, tmp_path / request.param)


def test_every_pod_and_app_container_is_found(case):
    spec, node = case
    sample = _collector(node).collect()
    pods = {p.uid: p for p in sample.pods}
    assert set(pods) == {p.uid for p in spec.pods}
    for pod in spec.pods:
        found = pods[pod.uid]
        assert found.qos == pod.qos
        assert found.node == "worker-1"
        # The sandbox and CRI-O's conmon are not containers of the pod.
        assert {c.id for c in found.containers} == {c.id for c in pod.containers}
        assert found.cpu_usage_seconds_total == pytest.approx(pod.cpu_usec / 1e6)
        assert found.memory_working_set_bytes == pod.memory_current - pod.inactive_file
        if pod.host_network:
            assert found.network_rx_bytes_total is None
        else:
            assert (found.network_rx_bytes_total, found.network_tx_bytes_total) == pod.net
    assert sample.node_metrics.pod_count == len(spec.pods)
    assert sample.node_metrics.memory_oom_kills_total == spec.oom_kills
    assert sample.node_info.cgroup_version == spec.cgroup_version
    assert sample.node_info.cpu_count == spec.cpu_count
    # What the agent sends is what the server accepts.
    assert payload.decode(payload.encode(sample))[0] == sample


def test_oom_kills_of_a_pod_are_its_containers_and_its_own_on_either_version(case):
    # v2 counts a kill in every cgroup above the killed process too, v1 only in its own:
    # the agent adds up the pod's and its containers' on v1, so both answer the same.
    spec, node = case
    sample = _collector(node).collect()
    pods = {p.uid: p for p in sample.pods}
    assert any(pod.oom_kills for pod in spec.pods)
    for pod in spec.pods:
        assert pods[pod.uid].memory_oom_kills_total == pod.oom_kills, pod.name
        containers = {c.id: c for c in pods[pod.uid].containers}
        for container in pod.containers:
            assert containers[container.id].memory_oom_kills_total == container.oom_kills


def test_pods_pressure_from_the_v2_tree_hybrid_hosts_included(case):
    spec, node = case
    sample = _collector(node).collect()
    pods = {p.uid: p for p in sample.pods}
    for pod in spec.pods:
        found = pods[pod.uid]
        for resource, totals in stalled_usec(figures_of(pod)).items():
            for kind, total in totals.items():
                value = getattr(found, f"{resource}_pressure_{kind}_seconds_total")
                readable = spec.cgroup_version == 2 or spec.hybrid
                assert value == (total / 1e6 if readable else None), (resource, kind)
        assert found.cpu_pressure_some_ratio is None  # a rate: from the second sample on
    assert sample.node_metrics.io_pressure_full_seconds_total == 827.998878


@pytest.mark.parametrize("name", ["v2-systemd-containerd", "v1-hybrid"])
def test_a_kernel_without_psi_or_oom_kill_counts_gives_nulls(tmp_path, name):
    spec = dataclasses.replace(CASES[name](), psi=False, oom_kills=None)
    node = build(spec, tmp_path)
    sample = _collector(node).collect()
    pressure = [m.name for m in metrics_for(Scope.NODE) if "_pressure_" in m.name]
    assert pressure and all(getattr(sample.node_metrics, n) is None for n in pressure)
    assert sample.node_metrics.memory_oom_kills_total is None
    for pod in sample.pods:
        assert pod.cpu_pressure_some_seconds_total is None
        assert pod.memory_pressure_full_seconds_total is None
        assert pod.cpu_usage_seconds_total is not None


def test_rates_on_the_second_sample(case):
    spec, node = case
    clock = Clock()
    collector = _collector(node, clock)
    first = collector.collect()
    assert first.interval is None
    assert all(p.cpu_cores is None for p in first.pods)
    clock.now += 10.0
    busy = spec.pods[0]
    _add_cpu_usage(node, busy, seconds=5.0, version=spec.cgroup_version)
    second = collector.collect()
    assert second.interval == pytest.approx(10.0)
    cores = {p.uid: p.cpu_cores for p in second.pods}
    assert cores[busy.uid] == pytest.approx(0.5)
    assert all(cores[p.uid] == 0.0 for p in spec.pods[1:])
    assert second.node_metrics.cpu_cores == 0.0
    assert second.node_metrics.cpu_percent == 0.0


def _add_cpu_usage(node, pod, seconds: float, version: int) -> None:
    for path in Path(node.cgroup_root).rglob("*"):
        if pod.uid.replace("-", "_") not in path.name and pod.uid not in path.name:
            continue
        if version == 2 and (path / "cpu.stat").exists():
            text = (path / "cpu.stat").read_text()
            usage = int(text.split("usage_usec ")[1].split()[0])
            (path / "cpu.stat").write_text(
                text.replace(f"usage_usec {usage}", f"usage_usec {usage + int(seconds * 1e6)}")
            )
        elif version == 1 and (path / "cpuacct.usage").exists():
            usage = int((path / "cpuacct.usage").read_text())
            (path / "cpuacct.usage").write_text(f"{usage + int(seconds * 1e9)}\n")


def test_a_pod_that_vanishes_while_read_is_left_out(case, monkeypatch):
    _, node = case
    collector = _collector(node)
    pods = collector.cgroups.find_pods()
    gone = pods[0]
    monkeypatch.setattr(collector.cgroups, "find_pods", lambda: pods)
    for root, dirs, _ in os.walk(node.cgroup_root):
        for name in dirs:
            if os.path.join(root, name).endswith(gone.path):
                shutil.rmtree(os.path.join(root, name))
    sample = collector.collect()
    assert gone.uid not in {p.uid for p in sample.pods}
    assert len(sample.pods) == len(pods) - 1


def test_names_and_workloads_from_crictl(tmp_path, monkeypatch):
    spec = CASES["v2-systemd-containerd"]()
    node = build(spec, tmp_path / "node")
    crictl_spec = write_crictl_spec(
        tmp_path / "crictl.json",
        spec,
        node,
        labels=lambda pod: (
            {"app": "web", "pod-template-hash": "7d4b9c8f6d"} if pod.name.startswith("web-") else {}
        ),
    )
    monkeypatch.setenv("FAKE_CRICTL_SPEC", str(crictl_spec))
    source = CrictlSource(str(FAKE_CRICTL))
    sample = _collector(node, metadata=MetadataCache(source)).collect()
    by_uid = {p.uid: p for p in sample.pods}
    for pod in spec.pods:
        found = by_uid[pod.uid]
        assert (found.name, found.namespace) == (pod.name, pod.namespace)
        assert {c.name for c in found.containers} == {c.name for c in pod.containers}
        # Restarts from crictl's attempts (the fixture's: one per OOM kill); why a container
        # last ended, crictl does not tell.
        assert found.restarts_total == sum(c.oom_kills for c in pod.containers)
        assert found.last_termination_oom_killed is None
        attempts = {c.id: c.oom_kills for c in pod.containers}
        assert {c.id: c.restarts_total for c in found.containers} == attempts
    assert any(p.restarts_total for p in sample.pods)
    web = next(p for p in sample.pods if p.name.startswith("web-"))
    assert (web.deployment, web.workload_kind, web.workload) == ("web", "Deployment", "web")


def test_cli_once_prints_one_valid_payload(tmp_path):
    spec = CASES["v1-hybrid"]()
    node = build(spec, tmp_path / "node")
    result = CliRunner().invoke(
        main,
        ["agent", "--once", "--gap", "0", "--output", "-", "--metadata", "none"]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs, "--node-name", "fixture-node"],
    )
    assert result.exit_code == 0, result.output
    [sample] = payload.decode(result.stdout.strip().encode())
    assert sample.node == "fixture-node"
    assert sample.interval is not None
    assert len(sample.pods) == len(spec.pods)
    assert all(p.name is None and p.uid for p in sample.pods)
    msgspec.json.decode(result.stdout)  # one line of JSON


def test_cli_once_fails_when_the_server_is_down(tmp_path, unused_port):
    spec = CASES["v2-kind"]()
    node = build(spec, tmp_path / "node")
    result = CliRunner().invoke(
        main,
        ["agent", "--once", "--gap", "0", "--metadata", "none"]
        + ["--server", f"http://127.0.0.1:{unused_port}"]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs],
    )
    assert result.exit_code == 1


def test_cli_says_what_is_wrong_without_a_cgroup_hierarchy(tmp_path, caplog):
    result = CliRunner().invoke(
        main,
        ["agent", "--once", "--output", "-", "--metadata", "none"]
        + ["--cgroup-root", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert str(tmp_path) in caplog.text


def test_cli_says_what_is_wrong_with_an_unusable_metadata_source(tmp_path, caplog, monkeypatch):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    monkeypatch.delenv("NODE_IP", raising=False)
    result = CliRunner().invoke(
        main,
        ["agent", "--once", "--output", "-", "--metadata", "kubelet"]
        + ["--cgroup-root", node.cgroup_root],
    )
    assert result.exit_code == 2
    assert "kubelet" in caplog.text
