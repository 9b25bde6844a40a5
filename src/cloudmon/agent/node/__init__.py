"""Node-wide figures from the host's /proc and root file system."""

import os
from dataclasses import dataclass

from cloudmon.agent.node.diskstats import DiskStat, read_diskstats, whole_disk_traffic
from cloudmon.agent.node.filesystem import read_filesystem
from cloudmon.agent.node.kernel import read_kernel
from cloudmon.agent.node.loadavg import read_loadavg
from cloudmon.agent.node.meminfo import read_meminfo
from cloudmon.agent.node.netdev import read_host_traffic
from cloudmon.agent.node.stat import read_stat
from cloudmon.agent.node.vmstat import read_vmstat
from cloudmon.agent.psi import read_pressure

__all__ = ["NodeReading", "collect_node"]


@dataclass(frozen=True, slots=True)
class NodeReading:
    info: dict[str, object]  # cpu_count, memory_total_bytes, kernel, boot_time
    metrics: dict[str, float | int | None]  # counters and gauges; rates are derived elsewhere
    disks: list[DiskStat]  # every device of diskstats, for the cgroup readers


def collect_node(proc_root: str, rootfs: str) -> NodeReading:
    """One reading of the node's figures; a missing or garbled file gives None for its fields."""
    cpu = read_stat(proc_root)
    total, available = read_meminfo(proc_root) or (None, None)
    used = percent = None
    if total is not None and available is not None:
        # MemAvailable is an estimate; an inconsistent file must not make "used" negative.
        used = max(total - available, 0)
        percent = 100 * used / total if total else None
    disks = read_diskstats(proc_root)
    disk_read, disk_written = whole_disk_traffic(disks) if disks else (None, None)
    rx, tx = read_host_traffic(proc_root) or (None, None)
    load1, load5, load15 = read_loadavg(proc_root) or (None, None, None)
    fs_total, fs_used = read_filesystem(rootfs) or (None, None)
    vmstat = read_vmstat(proc_root)
    info = {
        "cpu_count": cpu and cpu.cpu_count,
        "memory_total_bytes": total,
        "kernel": read_kernel(proc_root),
        "boot_time": cpu and cpu.boot_time,
    }
    metrics = {
        "cpu_usage_seconds_total": cpu and cpu.busy_seconds,
        "memory_total_bytes": total,
        "memory_available_bytes": available,
        "memory_used_bytes": used,
        "memory_percent": percent,
        "disk_read_bytes_total": disk_read,
        "disk_write_bytes_total": disk_written,
        "network_rx_bytes_total": rx,
        "network_tx_bytes_total": tx,
        "load1": load1,
        "load5": load5,
        "load15": load15,
        "fs_total_bytes": fs_total,
        "fs_used_bytes": fs_used,
        "memory_oom_kills_total": vmstat and vmstat.oom_kills,
        **read_pressure(os.path.join(proc_root, "pressure"), ""),
    }
    # The node's CPU "full" stall is zero by the kernel's definition (psi.rst): not reported.
    del metrics["cpu_pressure_full_seconds_total"]
    return NodeReading(info, metrics, disks)
