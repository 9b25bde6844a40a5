"""The v1 reader on this machine's real cgroup v1 hierarchies (needs root)."""

import os
import subprocess
import sys
import uuid

import pytest

from cloudmon.agent.cgroups import NoCgroupHierarchy, open_cgroups

ROOT = "/sys/fs/cgroup"
UID = str(uuid.uuid4())
CONTAINER = uuid.uuid4().hex * 2
MiB = 1 << 20


@pytest.fixture
def real_v1():
    try:
        cgroups = open_cgroups(ROOT)
    except NoCgroupHierarchy:
        pytest.skip(f"no cgroup hierarchy at {ROOT}")
    if cgroups.version != 1:
        pytest.skip("this machine uses cgroup v2; the v1 reader needs v1 hierarchies")
    if os.geteuid() != 0:
        pytest.skip("making cgroups needs root")
    return cgroups


def test_reading_a_real_v1_pod(real_v1):
    hierarchies = sorted(
        {real_v1.layout.hierarchy(c) for c in ("cpu", "cpuacct", "memory", "blkio")}
    )
    top = f"/cloudmon-test-{uuid.uuid4().hex[:8]}"
    pod = f"{top}/kubepods/burstable/pod{UID}"
    container = f"{pod}/{CONTAINER}"
    made = []
    worker = None
    try:
        for hierarchy in hierarchies:
            for path in (top, f"{top}/kubepods", f"{top}/kubepods/burstable", pod, container):
                try:
                    os.mkdir(hierarchy + path)
                except OSError as error:
                    pytest.skip(f"cannot make a cgroup in {hierarchy}: {error}")
                made.append(hierarchy + path)
        memory = real_v1.layout.hierarchy("memory") + container
        cpu = real_v1.layout.hierarchy("cpu") + container
        with open(f"{memory}/memory.limit_in_bytes", "w") as f:
            f.write(str(256 * MiB))
        with open(f"{cpu}/cpu.cfs_quota_us", "w") as f:
            f.write("50000")
        # The worker allocates once moved: v1 leaves earlier charges where they were.
        script = "import sys; sys.stdin.readline(); b = bytearray(16 << 20); print(1, flush=True)"
        worker = subprocess.Popen(
            [sys.executable, "-c", script + "; sys.stdin.read()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for hierarchy in hierarchies:
            with open(f"{hierarchy}{container}/cgroup.procs", "w") as f:
                f.write(str(worker.pid))
        worker.stdin.write("go\n")
        worker.stdin.flush()
        assert worker.stdout.readline() == "1\n"

        [found] = [p for p in real_v1.find_pods() if p.uid == UID]
        assert (found.qos, found.path) == ("burstable", pod)
        assert [(c.id, c.runtime, c.path) for c in found.containers] == [
            (CONTAINER, "unknown", container)
        ]
        assert real_v1.pids(container) == [worker.pid]
        assert real_v1.pids(pod, recursive=True) == [worker.pid]

        stacked = frozenset()
        figures = real_v1.read(container, stacked)
        assert figures["cpu_limit_cores"] == 0.5
        assert figures["memory_limit_bytes"] == 256 * MiB
        assert figures["memory_usage_bytes"] >= 16 * MiB
        assert 0 <= figures["memory_working_set_bytes"] <= figures["memory_usage_bytes"]
        assert figures["cpu_usage_seconds_total"] >= 0
        assert figures["cpu_throttled_seconds_total"] >= 0
        assert figures["disk_read_bytes_total"] >= 0
        assert figures["disk_write_bytes_total"] >= 0

        pod_figures = real_v1.read(pod, stacked)
        assert pod_figures["memory_limit_bytes"] is None
        assert pod_figures["cpu_limit_cores"] is None
        assert pod_figures["memory_usage_bytes"] >= figures["memory_usage_bytes"]
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
            worker.stdin.close()
            worker.stdout.close()
        for directory in reversed(made):
            os.rmdir(directory)
    assert real_v1.read(container, frozenset()) is None
