import logging
import os
import subprocess
import time

import pytest

from cloudmon.agent.node import NodeReading, collect_node
from cloudmon.agent.node.stat import USER_HZ
from cloudmon.metrics import BY_NAME, Scope

METRIC_KEYS = {
    "cpu_usage_seconds_total",
    "memory_total_bytes",
    "memory_available_bytes",
    "memory_used_bytes",
    "memory_percent",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "network_rx_bytes_total",
    "network_tx_bytes_total",
    "load1",
    "load5",
    "load15",
    "fs_total_bytes",
    "fs_used_bytes",
    "memory_oom_kills_total",
    "cpu_pressure_some_seconds_total",
    "memory_pressure_some_seconds_total",
    "memory_pressure_full_seconds_total",
    "io_pressure_some_seconds_total",
    "io_pressure_full_seconds_total",
}
INFO_KEYS = {"cpu_count", "memory_total_bytes", "kernel", "boot_time"}
FILE_METRICS = {
    "stat": {"cpu_usage_seconds_total"},
    "meminfo": {
        "memory_total_bytes",
        "memory_available_bytes",
        "memory_used_bytes",
        "memory_percent",
    },
    "diskstats": {"disk_read_bytes_total", "disk_write_bytes_total"},
    "1/net/dev": {"network_rx_bytes_total", "network_tx_bytes_total"},
    "loadavg": {"load1", "load5", "load15"},
    "vmstat": {"memory_oom_kills_total"},
    "pressure/cpu": {"cpu_pressure_some_seconds_total"},
    "pressure/memory": {"memory_pressure_some_seconds_total", "memory_pressure_full_seconds_total"},
    "pressure/io": {"io_pressure_some_seconds_total", "io_pressure_full_seconds_total"},
    "sys/kernel/osrelease": set(),
}


def _assert_types(reading: NodeReading):
    assert set(reading.metrics) == METRIC_KEYS
    assert set(reading.info) == INFO_KEYS
    for name, value in reading.metrics.items():
        metric = BY_NAME[name]
        assert Scope.NODE in metric.scopes
        if value is None:
            continue
        assert value >= 0, name
        if metric.integer:
            assert type(value) is int, name
        else:
            assert isinstance(value, int | float), name


def test_fixture_node(proc_root, tmp_path):
    reading = collect_node(proc_root, str(tmp_path))
    _assert_types(reading)
    st = os.statvfs(tmp_path)
    assert reading.info == {
        "cpu_count": 2,
        "memory_total_bytes": 8000000 * 1024,
        "kernel": "6.1.0-18-amd64",
        "boot_time": 1764000000.0,
    }
    assert reading.metrics == {
        "cpu_usage_seconds_total": pytest.approx((1000 + 200 + 300 + 50 + 60 + 70) / USER_HZ),
        "memory_total_bytes": 8000000 * 1024,
        "memory_available_bytes": 6000000 * 1024,
        "memory_used_bytes": 2000000 * 1024,
        "memory_percent": pytest.approx(25.0),
        # vda and nvme0n1; not vda1, loop0 or dm-0.
        "disk_read_bytes_total": (1000 + 3000) * 512,
        "disk_write_bytes_total": (2000 + 4000) * 512,
        # eth0 and eth1 of pid 1's namespace; not lo, cali*, cni0 nor <proc>/net/dev.
        "network_rx_bytes_total": 105000,
        "network_tx_bytes_total": 20300,
        "load1": 0.61,
        "load5": 1.20,
        "load15": 0.55,
        "fs_total_bytes": st.f_blocks * st.f_frsize,
        # A live file system: what others write between the two statvfs counts too.
        "fs_used_bytes": pytest.approx((st.f_blocks - st.f_bfree) * st.f_frsize, abs=64 << 20),
        "memory_oom_kills_total": 7,
        # The node's CPU "full" line is left out: zero by the kernel's definition.
        "cpu_pressure_some_seconds_total": 2836.053732,
        "memory_pressure_some_seconds_total": 0.007329,
        "memory_pressure_full_seconds_total": 0.005756,
        "io_pressure_some_seconds_total": 1002.726664,
        "io_pressure_full_seconds_total": 827.998878,
    }
    assert [d.name for d in reading.disks] == ["vda", "vda1", "loop0", "dm-0", "nvme0n1"]


def test_reading_is_frozen(proc_root, tmp_path):
    reading = collect_node(proc_root, str(tmp_path))
    with pytest.raises(AttributeError):
        reading.metrics = {}


def test_nothing_there(tmp_path):
    reading = collect_node(str(tmp_path / "noproc"), str(tmp_path / "noroot"))
    _assert_types(reading)
    assert set(reading.metrics.values()) == {None}
    assert set(reading.info.values()) == {None}
    assert reading.disks == []


@pytest.mark.parametrize("missing", sorted(FILE_METRICS))
def test_one_missing_file_nulls_only_its_fields(missing, tmp_path, node_files, write_tree):
    del node_files[missing]
    root = write_tree(tmp_path / "proc", node_files)
    reading = collect_node(root, str(tmp_path))
    _assert_types(reading)
    nulls = {name for name, value in reading.metrics.items() if value is None}
    assert nulls == FILE_METRICS[missing]


BROKEN = {
    "empty": "",
    "blank": "\n\n",
    "garbage": "the quick brown fox: jumps over 12 lazy dogs\n",
    "binary": b"\x00\xff\xfe\x80" * 64,
}


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
@pytest.mark.parametrize("broken", sorted(FILE_METRICS))
def test_one_broken_file_nulls_only_its_fields(broken, content, tmp_path, node_files, write_tree):
    node_files[broken] = content
    root = write_tree(tmp_path / "proc", node_files)
    reading = collect_node(root, str(tmp_path))
    _assert_types(reading)
    nulls = {name for name, value in reading.metrics.items() if value is None}
    assert nulls == FILE_METRICS[broken]
    if broken == "sys/kernel/osrelease":
        assert reading.info["kernel"] is None


@pytest.mark.parametrize("cut", [5, 20, 40])
def test_truncated_stat_and_meminfo(cut, tmp_path, node_files, write_tree):
    node_files["stat"] = node_files["stat"][:cut]
    node_files["meminfo"] = node_files["meminfo"][:cut]
    root = write_tree(tmp_path / "proc", node_files)
    reading = collect_node(root, str(tmp_path))
    _assert_types(reading)
    # A cut line loses its figure, never yields a wrong one.
    assert reading.metrics["cpu_usage_seconds_total"] is None
    assert reading.info["boot_time"] is None
    assert reading.metrics["memory_total_bytes"] in (None, 8000000 * 1024)
    assert reading.metrics["memory_available_bytes"] is None
    assert reading.metrics["memory_used_bytes"] is None


def test_old_kernel_without_mem_available(tmp_path, node_files, write_tree):
    node_files["meminfo"] = "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 500 kB\n"
    root = write_tree(tmp_path / "proc", node_files)
    metrics = collect_node(root, str(tmp_path)).metrics
    assert metrics["memory_total_bytes"] == 1024000
    assert metrics["memory_available_bytes"] is None
    assert metrics["memory_used_bytes"] is None
    assert metrics["memory_percent"] is None


def test_only_loop_devices_give_zero_disk_traffic(tmp_path, node_files, write_tree):
    node_files["diskstats"] = "7 0 loop0 1 0 10 0 1 0 20 0 0 0 0\n"
    root = write_tree(tmp_path / "proc", node_files)
    reading = collect_node(root, str(tmp_path))
    assert reading.metrics["disk_read_bytes_total"] == 0
    assert reading.metrics["disk_write_bytes_total"] == 0
    assert [d.name for d in reading.disks] == ["loop0"]


def test_a_problem_is_reported_once(tmp_path, node_files, write_tree, caplog):
    node_files["loadavg"] = "garbage\n"
    del node_files["meminfo"]
    root = write_tree(tmp_path / "proc", node_files)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            collect_node(root, str(tmp_path))
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "loadavg" in m]) == 1
    assert len([m for m in messages if "meminfo" in m]) == 1
    assert len(messages) == 2


def test_real_machine():
    reading = collect_node("/proc", "/")
    _assert_types(reading)
    info, metrics = reading.info, reading.metrics
    assert info["cpu_count"] == os.cpu_count()
    assert info["kernel"] == os.uname().release
    assert 0 < info["boot_time"] < time.time()
    assert metrics["cpu_usage_seconds_total"] > 0
    assert metrics["memory_total_bytes"] > 0
    assert 0 <= metrics["memory_available_bytes"] <= metrics["memory_total_bytes"]
    assert 0 <= metrics["memory_percent"] <= 100
    assert metrics["fs_total_bytes"] > 0
    assert 0 <= metrics["fs_used_bytes"] <= metrics["fs_total_bytes"]
    for name in ("load1", "load5", "load15"):
        assert metrics[name] is not None
    for name in ("disk_read_bytes_total", "network_rx_bytes_total", "network_tx_bytes_total"):
        assert metrics[name] is not None
    assert reading.disks


def test_real_machine_counters_do_not_go_back():
    first = collect_node("/proc", "/").metrics
    second = collect_node("/proc", "/").metrics
    for name in ("cpu_usage_seconds_total", "disk_read_bytes_total", "disk_write_bytes_total"):
        assert second[name] >= first[name]


def test_a_cycle_reads_the_node_files_once_whatever_the_machine(monkeypatch):
    """A cycle's cost does not grow with the machine (its processes, disks or interfaces): on
    the real /proc it opens the node's own files, each once, lists no directory and starts no
    process. Its CPU time: bench/agent.py."""
    opened, listed = [], []
    real_open, real_scandir, real_listdir = os.open, os.scandir, os.listdir

    def recording_open(path, *args, **kwargs):
        opened.append(os.path.relpath(path, "/proc"))
        return real_open(path, *args, **kwargs)

    def recording(real):
        def call(path=".", *args, **kwargs):
            listed.append(os.fspath(path))
            return real(path, *args, **kwargs)

        return call

    def no_process(*args, **kwargs):
        raise AssertionError(f"a cycle started a process: {args}")

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "scandir", recording(real_scandir))
    monkeypatch.setattr(os, "listdir", recording(real_listdir))
    monkeypatch.setattr(subprocess, "Popen", no_process)
    collect_node("/proc", "/")
    monkeypatch.undo()
    assert sorted(opened) == sorted(FILE_METRICS)
    assert listed == []
