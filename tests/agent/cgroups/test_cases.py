"""Every declared node case: discovery, figures and pod network match the spec."""

import dataclasses
import os

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import (
    SANDBOX,
    ContainerSpec,
    NodeSpec,
    PodSpec,
    build,
    container_path,
    pod_path,
    sandbox_id,
)

from cloudmon.agent.cgroups import FIELDS, detect_layout, open_cgroups
from cloudmon.agent.node.diskstats import parse_diskstats, stacked_device_numbers
from cloudmon.agent.podnet import read_pod_network


def expected_figures(
    item: ContainerSpec | PodSpec, stacked: frozenset[str], zeros: bool, oom_kills: int
) -> dict:
    """What read() must return for a spec item, worked out from the spec's numbers, with
    the OOM kills its own cgroup counts."""
    disk_read = sum(r for dev, (r, _) in item.io.items() if dev not in stacked)
    disk_write = sum(w for dev, (_, w) in item.io.items() if dev not in stacked)
    # The cgroup's memory split as the fixture splits it: anon, and file = active + inactive.
    active_file = (item.memory_current - item.inactive_file) // 5
    kernel = (item.memory_current - item.inactive_file - active_file) // 10
    periods = item.throttled_usec // 1000 * 3 + item.cpu_usec // 100_000
    return {
        "cpu_usage_seconds_total": pytest.approx(item.cpu_usec / 1e6, rel=1e-12),
        "cpu_throttled_seconds_total": pytest.approx(item.throttled_usec / 1e6, rel=1e-12),
        "cpu_periods_total": periods,
        "cpu_throttled_periods_total": min(periods, item.throttled_usec // 50_000),
        "cpu_limit_cores": None if item.cpu_max is None else item.cpu_max[0] / item.cpu_max[1],
        "memory_usage_bytes": item.memory_current,
        "memory_working_set_bytes": max(item.memory_current - item.inactive_file, 0),
        "memory_anon_bytes": item.memory_current - item.inactive_file - active_file - kernel,
        "memory_file_bytes": item.inactive_file + active_file,
        "memory_limit_bytes": item.memory_max,
        "memory_oom_kills_total": oom_kills,
        "disk_read_bytes_total": 0 if zeros else disk_read,
        "disk_write_bytes_total": 0 if zeros else disk_write,
    }


def own_oom_kills(spec: NodeSpec, pod: PodSpec) -> int:
    """The OOM kills a pod's own cgroup counts: all of them on v2 (memory.events is
    hierarchical), on v1 only those of processes in the pod's own cgroup."""
    if spec.cgroup_version == 2:
        return pod.oom_kills
    return pod.oom_kills - sum(c.oom_kills for c in children(spec, pod).values())


def expected_runtime(spec: NodeSpec) -> str:
    if spec.driver == "systemd" or spec.runtime == "crio":
        return spec.runtime
    return "unknown"  # a bare 64-hex directory: containerd or cri-dockerd


def children(spec: NodeSpec, pod: PodSpec) -> dict[str, ContainerSpec]:
    """The container cgroups discovery must list: sandbox and app containers, no conmon."""
    found = {c.id: c for c in pod.containers}
    if pod.sandbox:
        found[sandbox_id(pod)] = dataclasses.replace(SANDBOX, id=sandbox_id(pod))
    return found


@pytest.fixture(scope="module", params=sorted(CASES))
def node(request, tmp_path_factory):
    """A built case, shared by the tests that only read it."""
    spec = CASES[request.param]()
    built = build(spec, tmp_path_factory.mktemp(request.param))
    with open(f"{built.proc_root}/diskstats") as f:
        stacked = stacked_device_numbers(parse_diskstats(f.read()))
    return spec, built, open_cgroups(built.cgroup_root), stacked


def test_cases_cover_every_layout_and_qos():
    kinds = set()
    for make in CASES.values():
        spec = make()
        kinds.add((spec.cgroup_version, spec.driver, spec.runtime, spec.hybrid))
        qos = {p.qos for p in spec.pods}
        assert qos == {"guaranteed", "burstable", "besteffort"}
        assert any(p.host_network for p in spec.pods)
    assert {
        (2, "systemd", "containerd", False),
        (2, "cgroupfs", "containerd", False),
        (1, "systemd", "docker", False),
        (1, "cgroupfs", "containerd", False),
        (2, "systemd", "crio", False),
        (1, "systemd", "containerd", True),
    } <= kinds
    assert any(len(p.uid) == 32 for make in CASES.values() for p in make().pods)


def test_layout(node):
    spec, built, cgroups, _ = node
    layout = detect_layout(built.cgroup_root)
    assert layout.version == cgroups.version == spec.cgroup_version
    if layout.version == 2:
        assert layout.hierarchy("memory") == built.cgroup_root
        return
    for controller in ("cpu", "cpuacct", "memory", "blkio"):
        directory = layout.hierarchy(controller)
        assert controller in os.path.basename(directory).split(",")
        assert os.path.isfile(os.path.join(directory, "cgroup.procs"))
    cpu, cpuacct = layout.hierarchy("cpu"), layout.hierarchy("cpuacct")
    if spec.v1_cpu_combined:
        assert cpu == cpuacct and cpu.endswith("/cpu,cpuacct")
    else:
        assert (cpu[-4:], cpuacct[-8:]) == ("/cpu", "/cpuacct")


def test_discovery_finds_exactly_the_declared_pods(node):
    spec, _, cgroups, _ = node
    assert cgroups.version == spec.cgroup_version
    found = {p.uid: p for p in cgroups.find_pods()}
    assert found.keys() == {p.uid for p in spec.pods}
    runtime = expected_runtime(spec)
    for pod in spec.pods:
        cgroup = found[pod.uid]
        assert cgroup.qos == pod.qos
        assert cgroup.path == pod_path(spec, pod)
        assert {c.id for c in cgroup.containers} == children(spec, pod).keys()
        for container in cgroup.containers:
            assert container.runtime == runtime
            assert container.path == container_path(spec, pod, container.id)


def test_read_gives_the_spec_figures(node):
    spec, _, cgroups, stacked = node
    assert stacked == {"7:0", "8:1", "253:0"}
    zeros = spec.blkio_source == "zeros" and spec.cgroup_version == 1
    pods = {p.uid: p for p in spec.pods}
    for cgroup in cgroups.find_pods():
        pod = pods[cgroup.uid]
        figures = cgroups.read(cgroup.path, stacked)
        assert figures == expected_figures(pod, stacked, zeros, own_oom_kills(spec, pod))
        assert tuple(figures) == FIELDS
        expected_children = children(spec, pod)
        for container in cgroup.containers:
            child = expected_children[container.id]
            expected = expected_figures(child, stacked, zeros, child.oom_kills)
            assert cgroups.read(container.path, stacked) == expected


def test_pod_figures_include_more_than_the_containers(node):
    _, _, cgroups, stacked = node
    for cgroup in cgroups.find_pods():
        pod = cgroups.read(cgroup.path, stacked)
        parts = [cgroups.read(c.path, stacked) for c in cgroup.containers]
        assert pod["cpu_usage_seconds_total"] > sum(p["cpu_usage_seconds_total"] for p in parts)
        assert pod["memory_usage_bytes"] > sum(p["memory_usage_bytes"] for p in parts)


def test_pod_network(node):
    spec, built, cgroups, _ = node
    pods = {p.uid: p for p in spec.pods}
    for cgroup in cgroups.find_pods():
        pod = pods[cgroup.uid]
        pids = cgroups.pids(cgroup.path, recursive=True)
        assert pids, pod.name
        traffic = read_pod_network(built.proc_root, pids)
        assert traffic == (None if pod.host_network else pod.net)


def test_pids_of_each_container(node):
    _, built, cgroups, _ = node
    for cgroup in cgroups.find_pods():
        for container in cgroup.containers:
            assert cgroups.pids(container.path) == list(built.pids[container.id])
        # The pod's own cgroup holds no process.
        assert cgroups.pids(cgroup.path) == []


def test_crio_conmon_in_the_pod_is_no_container_and_no_network(tmp_path):
    spec = CASES["v1-cgroupfs-crio-custom-root"]()
    built = build(spec, tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    pods = {p.uid: p for p in spec.pods}
    for cgroup in cgroups.find_pods():
        pod = pods[cgroup.uid]
        assert {c.id for c in cgroup.containers} == {c.id for c in pod.containers}
        conmon = [pid for c in pod.containers for pid in built.pids["conmon:" + c.id]]
        assert set(conmon) <= set(cgroups.pids(cgroup.path, recursive=True))
        # conmon lives in the host's network namespace: it is passed over, not reported.
        app = [pid for c in pod.containers for pid in built.pids[c.id]]
        expected = None if pod.host_network else pod.net
        assert read_pod_network(built.proc_root, conmon + app) == expected
        assert read_pod_network(built.proc_root, conmon) is None


@pytest.mark.parametrize("source", ["bfq", "cfq", "throttle", "throttle_local", "zeros"])
def test_every_v1_blkio_source_gives_the_same_io(tmp_path, source):
    spec = dataclasses.replace(CASES["v1-systemd-docker"](), blkio_source=source)
    built = build(spec, tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    stacked = frozenset({"253:0", "8:1", "7:0"})
    pods = {p.uid: p for p in spec.pods}
    for cgroup in cgroups.find_pods():
        pod = pods[cgroup.uid]
        figures = cgroups.read(cgroup.path, stacked)
        expected = expected_figures(pod, stacked, source == "zeros", own_oom_kills(spec, pod))
        assert figures["disk_read_bytes_total"] == expected["disk_read_bytes_total"]
        assert figures["disk_write_bytes_total"] == expected["disk_write_bytes_total"]
