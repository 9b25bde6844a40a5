"""Agent benchmark: one collection cycle on a 110-pod fixture node, the node's own figures
on this machine, and the agent's memory.

Prints the CPU time of a cycle, the time to merely open and read the same files once, their
ratio, the CPU time of reading the node's own files from this machine's /proc, and the agent
process's resident memory after 10 and 100 cycles.
Targets (issue 2): <= 30 ms CPU per cycle, ratio <= 3, well under 1 ms CPU for the node's own
files, RSS <= 40 MB, no growth 10 -> 100.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures.nodebuilder import build, many_pods_node

from cloudmon import payload
from cloudmon.agent import files
from cloudmon.agent.cgroups import open_cgroups
from cloudmon.agent.collect import Collector
from cloudmon.agent.node import collect_node
from cloudmon.agent.paths import Roots

PODS, CONTAINERS, REPEATS = 110, 2, 50


def files_read_in_one_cycle(collector: Collector) -> list[str]:
    opened = []
    real_open = os.open

    def recording_open(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    files.os.open = recording_open
    try:
        collector.collect()
    finally:
        files.os.open = real_open
    return opened


def read_once(paths: list[str]) -> None:
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            while os.read(fd, 65536):
                pass
        finally:
            os.close(fd)


def cpu_seconds(action) -> float:
    began = time.process_time()
    action()
    return time.process_time() - began


def measure_cycle(roots: Roots, label: str) -> None:
    collector = Collector(roots, "bench-node", open_cgroups(roots.cgroup))
    collector.collect()  # the first cycle has no rates and warms the caches
    paths = files_read_in_one_cycle(collector)
    cycle = statistics.median(
        cpu_seconds(lambda: payload.encode(collector.collect())) for _ in range(REPEATS)
    )
    reading = statistics.median(cpu_seconds(lambda: read_once(paths)) for _ in range(REPEATS))
    print(
        f"{label}: cycle {cycle * 1000:.1f} ms CPU ({len(paths)} files); "
        f"open+read only {reading * 1000:.1f} ms; ratio {cycle / reading:.2f}"
    )


def measure_node() -> None:
    collect_node("/proc", "/")
    cycles = 200
    cycle = statistics.median(
        cpu_seconds(lambda: [collect_node("/proc", "/") for _ in range(cycles)]) / cycles
        for _ in range(REPEATS // 10)
    )
    print(f"node files of this machine's /proc: {cycle * 1000:.3f} ms CPU a cycle")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def measure_memory(roots: Roots) -> None:
    command = [sys.executable, "-m", "cloudmon", "--log-level", "error", "agent"]
    command += ["--interval", "0.1", "--output", "-", "--metadata", "none"]
    command += ["--proc-root", roots.proc, "--cgroup-root", roots.cgroup, "--rootfs", roots.rootfs]
    agent = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        readings = {}
        for cycle in range(1, 101):
            agent.stdout.readline()
            if cycle in (10, 100):
                readings[cycle] = rss_kib(agent.pid)
    finally:
        agent.terminate()
        agent.wait()
    print(
        f"agent RSS: {readings[10] / 1024:.1f} MiB after 10 cycles, "
        f"{readings[100] / 1024:.1f} MiB after 100 ({readings[100] - readings[10]:+d} KiB)"
    )


def main() -> None:
    measure_node()
    with tempfile.TemporaryDirectory() as tmp:
        for version, driver, runtime in ((2, "systemd", "containerd"), (1, "cgroupfs", "docker")):
            spec = many_pods_node(PODS, CONTAINERS, version, driver, runtime)
            node = build(spec, Path(tmp) / f"v{version}")
            roots = Roots(proc=str(node.proc_root), cgroup=str(node.cgroup_root), rootfs=tmp)
            measure_cycle(roots, f"cgroup v{version} {driver} {runtime}, {PODS} pods")
            if version == 2:
                measure_memory(roots)


if __name__ == "__main__":
    main()
