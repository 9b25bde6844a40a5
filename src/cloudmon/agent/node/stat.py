"""/proc/stat: busy time of all CPUs, the number of CPUs and the boot time."""

import contextlib
import os
from dataclasses import dataclass

from cloudmon.agent.node._parse import counter, read_parsed

# USER_HZ, the unit of /proc/stat times, is a constant of the kernel's ABI (100 on
# common architectures), so it is the same for the host and every container on it.
USER_HZ = os.sysconf("SC_CLK_TCK")

# Columns of the `cpu` line (proc(5)): user nice system idle iowait irq softirq steal
# guest guest_nice. 2.4 kernels print the first four, 2.6 adds iowait, irq and softirq,
# 2.6.11 steal, 2.6.24 guest and 2.6.33 guest_nice. Guest time is already counted in
# user and nice; idle and iowait are idle.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
_MIN_COLUMNS = 4


@dataclass(frozen=True, slots=True)
class CpuStat:
    busy_seconds: float | None  # summed over all CPUs
    cpu_count: int | None  # CPUs online, one `cpuN` line each
    boot_time: float | None  # unix seconds


def _busy_seconds(columns: list[str]) -> float | None:
    if len(columns) < _MIN_COLUMNS:
        return None
    try:
        ticks = sum(counter(columns[i]) for i in _BUSY_COLUMNS if i < len(columns))
    except ValueError:
        return None
    return ticks / USER_HZ


def parse_stat(text: str) -> CpuStat | None:
    """Busy CPU seconds, CPU count and boot time from /proc/stat; None when none is found."""
    busy = boot_time = None
    cpu_count = 0
    # Every line ends in a newline; a last line without one was cut short, and a cut
    # `cpu` line would look like an older kernel's with fewer columns.
    for line in text.split("\n")[:-1]:
        if line.startswith("cpu"):
            name, _, rest = line.partition(" ")
            if name == "cpu":
                busy = _busy_seconds(rest.split())
            elif name[3:].isascii() and name[3:].isdigit():
                cpu_count += 1
        elif line.startswith("btime "):
            with contextlib.suppress(ValueError):
                boot_time = float(counter(line[6:].strip()))
    if busy is None and boot_time is None and cpu_count == 0:
        return None
    return CpuStat(busy, cpu_count or None, boot_time)


def read_stat(proc_root: str) -> CpuStat | None:
    """<proc_root>/stat, parsed."""
    return read_parsed(os.path.join(proc_root, "stat"), parse_stat)
