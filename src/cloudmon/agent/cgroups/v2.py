"""cgroup v2 figures: cpu.stat, cpu.max, memory.current/.max/.stat/.events and io.stat."""

import os
import re

from cloudmon.agent.cgroups.base import Cgroups
from cloudmon.agent.cgroups.parse import flat_keyed, keyed_uint, parse_uint, working_set
from cloudmon.agent.files import read_text


def parse_cpu_max(text: str) -> float | None:
    """Cores allowed by cpu.max ("$QUOTA $PERIOD"); None for "max" or a garbled file."""
    fields = text.split()
    if len(fields) != 2:
        return None
    quota, period = parse_uint(fields[0]), parse_uint(fields[1])
    if quota is None or not period:
        return None
    return quota / period


def parse_memory_max(text: str) -> int | None:
    """Bytes allowed by memory.max; None for "max" or a garbled file."""
    return parse_uint(text)


# blkcg_print_one_stat (block/blk-cgroup.c) prints rbytes and wbytes first on every line.
_IO_LINE = re.compile(r"^(\d+:\d+) rbytes=(\d+) wbytes=(\d+)", re.MULTILINE)


def parse_io_stat(text: str, stacked_devices: frozenset[str]) -> tuple[int, int] | None:
    """(read, written) bytes over io.stat's devices but the stacked ones; None if garbled."""
    # A device is listed only after its first IO: an empty file means no IO, (0, 0).
    read = written = 0
    lines = _IO_LINE.findall(text)
    if not lines and text.strip():
        return None
    for device, rbytes, wbytes in lines:
        if device not in stacked_devices:
            read += int(rbytes)
            written += int(wbytes)
    return read, written


def _limits(directory: str) -> tuple[tuple, bool]:
    """A cgroup's CPU and memory limits (cpu.max, memory.max), and whether both files were
    read."""
    cpu_max, memory_max = read_text(directory + "/cpu.max"), read_text(directory + "/memory.max")
    limits = (
        None if cpu_max is None else parse_cpu_max(cpu_max),
        None if memory_max is None else parse_memory_max(memory_max),
    )
    return limits, bool(cpu_max and memory_max)


class CgroupsV2(Cgroups):
    """The unified hierarchy."""

    version = 2
    oom_kills_below = True  # memory.events is hierarchical (memory.events.local is not)

    def read(self, path: str, stacked_devices: frozenset[str]) -> dict | None:
        """The cgroup's figures; None when the cgroup vanished during the read."""
        directory = self.tree + path
        cpu_stat = flat_keyed(read_text(directory + "/cpu.stat") or "")
        (cpu_limit, memory_limit), limits_read = self.limits(path, lambda: _limits(directory))
        current = read_text(directory + "/memory.current")
        memory_stat = read_text(directory + "/memory.stat")
        memory_events = read_text(directory + "/memory.events")
        io_stat = read_text(directory + "/io.stat")
        # Each file is read whole; a file that could not be read may mean the cgroup is gone.
        incomplete = not limits_read or None in (current, memory_stat, memory_events, io_stat)
        if (incomplete or not cpu_stat) and not os.path.isdir(directory):
            return None
        usage_usec = parse_uint(cpu_stat.get("usage_usec", ""))
        throttled_usec = parse_uint(cpu_stat.get("throttled_usec", ""))
        usage = None if current is None else parse_uint(current)
        memory_stat = memory_stat or ""
        io = None if io_stat is None else parse_io_stat(io_stat, stacked_devices)
        return {
            "cpu_usage_seconds_total": None if usage_usec is None else usage_usec / 1e6,
            "cpu_throttled_seconds_total": None if throttled_usec is None else throttled_usec / 1e6,
            "cpu_periods_total": parse_uint(cpu_stat.get("nr_periods", "")),
            "cpu_throttled_periods_total": parse_uint(cpu_stat.get("nr_throttled", "")),
            "cpu_limit_cores": cpu_limit,
            "memory_usage_bytes": usage,
            "memory_working_set_bytes": working_set(
                usage, keyed_uint(memory_stat, "inactive_file")
            ),
            "memory_anon_bytes": keyed_uint(memory_stat, "anon"),
            "memory_file_bytes": keyed_uint(memory_stat, "file"),
            "memory_limit_bytes": memory_limit,
            "memory_oom_kills_total": keyed_uint(memory_events or "", "oom_kill"),
            "disk_read_bytes_total": None if io is None else io[0],
            "disk_write_bytes_total": None if io is None else io[1],
        }
