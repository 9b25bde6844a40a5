"""Missing, empty, truncated and garbled files, and cgroups that vanish mid-read."""

import os
import shutil

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import build

from cloudmon.agent.cgroups import FIELDS, open_cgroups, v1, v2

STACKED = frozenset({"253:0", "8:1", "7:0"})
PERIODS = ("cpu_periods_total", "cpu_throttled_periods_total")
CPU = ("cpu_usage_seconds_total", "cpu_throttled_seconds_total", *PERIODS)
MEMORY = ("memory_usage_bytes", "memory_working_set_bytes")
BY_KIND = ("memory_anon_bytes", "memory_file_bytes")
DISK = ("disk_read_bytes_total", "disk_write_bytes_total")

# file -> the fields it alone feeds (None when it is missing, empty or garbage).
V2_FILES = {
    "cpu.stat": CPU,
    "cpu.max": ("cpu_limit_cores",),
    "memory.current": MEMORY,
    "memory.max": ("memory_limit_bytes",),
    "memory.events": ("memory_oom_kills_total",),
    "io.stat": DISK,
}
V1_FILES = {
    ("cpu,cpuacct", "cpuacct.usage"): ("cpu_usage_seconds_total",),
    ("cpu,cpuacct", "cpu.stat"): ("cpu_throttled_seconds_total", *PERIODS),
    ("cpu,cpuacct", "cpu.cfs_quota_us"): ("cpu_limit_cores",),
    ("cpu,cpuacct", "cpu.cfs_period_us"): ("cpu_limit_cores",),
    ("memory", "memory.usage_in_bytes"): MEMORY,
    ("memory", "memory.limit_in_bytes"): ("memory_limit_bytes",),
    ("memory", "memory.oom_control"): ("memory_oom_kills_total",),
}
V1_BLKIO = (
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
)


def guaranteed_pod(cgroups):
    return next(p for p in cgroups.find_pods() if p.qos == "guaranteed")


def one_pod(case: str):
    """The case with its Guaranteed pod only: fewer files to write for each test."""
    spec = CASES[case]()
    spec.pods = [p for p in spec.pods if p.qos == "guaranteed"]
    return spec


@pytest.fixture(scope="module")
def v2_built(tmp_path_factory):
    return build(one_pod("v2-systemd-containerd"), tmp_path_factory.mktemp("v2"))


@pytest.fixture(scope="module")
def v1_built(tmp_path_factory):
    return build(one_pod("v1-systemd-docker"), tmp_path_factory.mktemp("v1"))


@pytest.fixture
def spoil():
    """Replace a file of the shared tree for one test: missing, empty or garbage."""
    saved = {}

    def spoil(path: str, how: str) -> None:
        with open(path) as f:
            saved.setdefault(path, f.read())
        if how == "missing":
            os.unlink(path)
            return
        with open(path, "w") as f:
            f.write({"empty": "", "garbage": "\x00\xff not a number\n=:= -7 max max max\n"}[how])

    yield spoil
    for path, text in saved.items():
        with open(path, "w") as f:
            f.write(text)


@pytest.fixture
def v2_node(v2_built, spoil):
    cgroups = open_cgroups(v2_built.cgroup_root)
    pod = guaranteed_pod(cgroups)
    return cgroups, pod.path, v2_built.cgroup_root + pod.path


@pytest.fixture
def v1_node(v1_built, spoil):
    cgroups = open_cgroups(v1_built.cgroup_root)
    return cgroups, guaranteed_pod(cgroups).path, v1_built.cgroup_root


def assert_only_these_are_none(figures: dict, fields: tuple[str, ...]) -> None:
    assert tuple(figures) == FIELDS
    for name in FIELDS:
        if name in fields:
            assert figures[name] is None, name
        else:
            assert figures[name] is not None, name


@pytest.mark.parametrize("how", ["missing", "empty", "garbage"])
@pytest.mark.parametrize("name", sorted(V2_FILES))
def test_v2_spoiled_file(v2_node, spoil, name, how):
    cgroups, path, directory = v2_node
    spoil(f"{directory}/{name}", how)
    figures = cgroups.read(path, STACKED)
    if name == "io.stat" and how == "empty":
        # An empty io.stat means no IO yet.
        assert (figures["disk_read_bytes_total"], figures["disk_write_bytes_total"]) == (0, 0)
        return
    assert_only_these_are_none(figures, V2_FILES[name])


@pytest.mark.parametrize("how", ["missing", "empty", "garbage"])
@pytest.mark.parametrize("version", [1, 2])
def test_spoiled_memory_stat_gives_usage_as_working_set(request, spoil, version, how):
    cgroups, path, root = request.getfixturevalue(f"v{version}_node")
    spoil(f"{root}/memory{path}/memory.stat" if version == 1 else f"{root}/memory.stat", how)
    figures = cgroups.read(path, STACKED)
    assert figures["memory_working_set_bytes"] == figures["memory_usage_bytes"] is not None
    assert_only_these_are_none(figures, BY_KIND)


def test_v2_truncated_files(v2_node, spoil):
    cgroups, path, directory = v2_node
    before = cgroups.read(path, STACKED)
    with open(f"{directory}/cpu.stat") as f:
        text = f.read()
    for name in ("cpu.stat", "io.stat"):
        spoil(f"{directory}/{name}", "empty")
    with open(f"{directory}/cpu.stat", "w") as f:
        f.write(text[: text.index("throttled_usec") + 6])
    with open(f"{directory}/io.stat", "w") as f:
        f.write("8:0 rbytes=10")
    figures = cgroups.read(path, STACKED)
    assert figures["cpu_usage_seconds_total"] == before["cpu_usage_seconds_total"]
    assert figures["cpu_throttled_seconds_total"] is None
    assert figures["disk_read_bytes_total"] is None


@pytest.mark.parametrize("how", ["missing", "empty", "garbage"])
@pytest.mark.parametrize("where", sorted(V1_FILES))
def test_v1_spoiled_file(v1_node, spoil, where, how):
    cgroups, path, root = v1_node
    hierarchy, name = where
    spoil(f"{root}/{hierarchy}{path}/{name}", how)
    assert_only_these_are_none(cgroups.read(path, STACKED), V1_FILES[where])


@pytest.mark.parametrize("how", ["missing", "empty", "garbage"])
def test_v1_spoiled_blkio_files(v1_node, spoil, how):
    cgroups, path, root = v1_node
    for directory, _, _ in os.walk(f"{root}/blkio{path}"):
        for name in V1_BLKIO:
            spoil(f"{directory}/{name}", how)
    assert_only_these_are_none(cgroups.read(path, STACKED), DISK)


def test_v1_only_the_local_blkio_counters_left(v1_node, spoil):
    cgroups, path, root = v1_node
    before = cgroups.read(path, STACKED)
    for name in V1_BLKIO[:2]:
        spoil(f"{root}/blkio{path}/{name}", "missing")
    figures = cgroups.read(path, STACKED)
    # Summed over the pod and its containers.
    assert figures["disk_read_bytes_total"] == before["disk_read_bytes_total"] > 0
    assert figures["disk_write_bytes_total"] == before["disk_write_bytes_total"] > 0


def test_v2_pod_removed_before_reading(tmp_path):
    built = build(one_pod("v2-systemd-containerd"), tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    path = guaranteed_pod(cgroups).path
    shutil.rmtree(built.cgroup_root + path)
    assert cgroups.read(path, STACKED) is None
    assert cgroups.pids(path) == []
    assert cgroups.pids(path, recursive=True) == []


def test_v1_pod_removed_from_one_hierarchy(tmp_path):
    built = build(one_pod("v1-systemd-docker"), tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    path = guaranteed_pod(cgroups).path
    shutil.rmtree(f"{built.cgroup_root}/blkio{path}")
    assert cgroups.read(path, STACKED) is None


@pytest.mark.parametrize("case, module", [("v2-cgroupfs-containerd", v2), ("v1-hybrid", v1)])
def test_pod_removed_in_the_middle_of_the_read(tmp_path, monkeypatch, case, module):
    built = build(one_pod(case), tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    pod = guaranteed_pod(cgroups)
    real = module.read_text
    reads = []

    def read_then_remove(path):
        reads.append(path)
        if len(reads) == 2:
            # The kubelet removes the pod from every hierarchy.
            for directory in (
                cgroups.layout.hierarchy(c) for c in ("cpu", "cpuacct", "memory", "blkio")
            ):
                shutil.rmtree(directory + pod.path, ignore_errors=True)
        return real(path)

    monkeypatch.setattr(module, "read_text", read_then_remove)
    assert cgroups.read(pod.path, STACKED) is None
    assert len(reads) >= 3
    monkeypatch.undo()
    assert [p.uid for p in cgroups.find_pods() if p.uid == pod.uid] == []
