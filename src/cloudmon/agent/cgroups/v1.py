"""cgroup v1 figures: cpuacct, cpu (CFS quota, throttling), memory and blkio hierarchies."""

import os
import re

from cloudmon.agent.cgroups.base import Cgroups, walk_cgroup
from cloudmon.agent.cgroups.parse import flat_keyed, keyed_uint, parse_uint, working_set
from cloudmon.agent.files import read_text

# The kubelet's isMemoryUnlimited (pkg/kubelet/stats/helper.go): a limit above 2^62 is
# "unlimited"; the kernel shows an unset limit as 9223372036854771712 (PAGE_COUNTER_MAX
# pages) or, on 3.10, 9223372036854775807.
UNLIMITED_MEMORY = 1 << 62

# runc fs/blkio.go reads these groups in this order and moves on while a file is missing
# or empty: BFQ, CFQ (gone since 5.0), then the throttle counters (recursive since 4.16).
RECURSIVE_BLKIO_FILES = (
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
)
# Counts only the cgroup's own IO (blkio-controller.rst: throttle "statistics are local").
LOCAL_BLKIO_FILE = "blkio.throttle.io_service_bytes"


def parse_cfs_limit(quota_text: str, period_text: str) -> float | None:
    """Cores allowed by cpu.cfs_quota_us / cpu.cfs_period_us; None for -1 or garbled."""
    quota, period = parse_uint(quota_text), parse_uint(period_text)
    if quota is None or not period:
        return None
    return quota / period


def parse_memory_limit(text: str) -> int | None:
    """memory.limit_in_bytes; None when unlimited or garbled."""
    limit = parse_uint(text)
    if limit is None or limit > UNLIMITED_MEMORY:
        return None
    return limit


_BLKIO_LINE = re.compile(r"^(\d+:\d+) (Read|Write) (\d+)$", re.MULTILINE)
_BLKIO_TOTAL = re.compile(r"^Total \d+$", re.MULTILINE)


def parse_blkio(text: str, stacked_devices: frozenset[str]) -> tuple[int, int] | None:
    """(read, written) bytes of a blkio io_service_bytes file; None when garbled."""
    # Stacked devices are left out. A cgroup without IO shows only "Total 0": (0, 0).
    lines = _BLKIO_LINE.findall(text)
    if not lines and _BLKIO_TOTAL.search(text) is None:
        return None
    read = written = 0
    for device, operation, value in lines:
        if device in stacked_devices:
            continue
        if operation == "Read":
            read += int(value)
        else:
            written += int(value)
    return read, written


def _local_blkio(directory: str, stacked_devices: frozenset[str]) -> tuple[int, int] | None:
    """The local throttle counters summed over the cgroup and all its descendants."""
    total: tuple[int, int] | None = None
    for cgroup in walk_cgroup(directory):
        text = read_text(os.path.join(cgroup, LOCAL_BLKIO_FILE))
        io = None if text is None else parse_blkio(text, stacked_devices)
        if io is not None:
            total = io if total is None else (total[0] + io[0], total[1] + io[1])
    return total


def read_blkio(
    directory: str, stacked_devices: frozenset[str], files=RECURSIVE_BLKIO_FILES
) -> tuple[tuple[int, int] | None, str | None]:
    """(read, written) bytes of a blkio cgroup from the first of `files` that has any IO
    (else the local throttle counters), and the name of the file that had it."""
    found = None
    for name in files:
        text = read_text(os.path.join(directory, name))
        io = None if text is None else parse_blkio(text, stacked_devices)
        if io is None:
            continue
        if io != (0, 0):
            return io, name
        found = io
    io = _local_blkio(directory, stacked_devices)
    return (io if io is not None else found), None


def _limits(cpu: str | None, memory: str | None) -> tuple[tuple, bool]:
    """A cgroup's CPU and memory limits (cpu.cfs_quota_us / cpu.cfs_period_us,
    memory.limit_in_bytes), and whether their files were all read."""
    quota = period = limit = None
    if cpu is not None:
        quota = read_text(cpu + "/cpu.cfs_quota_us")
        period = read_text(cpu + "/cpu.cfs_period_us")
    if memory is not None:
        limit = read_text(memory + "/memory.limit_in_bytes")
    limits = (
        None if quota is None or period is None else parse_cfs_limit(quota, period),
        None if limit is None else parse_memory_limit(limit),
    )
    return limits, bool(quota and period and limit)


class CgroupsV1(Cgroups):
    """One hierarchy per controller; a pod has the same path in each of them."""

    version = 1
    # memory.oom_control counts a kill in the killed process's own cgroup only (mm/memcontrol.c,
    # memcg_memory_event: the walk up to the parents is for v2); seen on this kernel too.
    oom_kills_below = False

    def __init__(self, layout, tree: str):
        super().__init__(layout, tree)
        # Which blkio file carries data depends on the host's kernel and IO schedulers, not
        # on the cgroup: the one that last had data is tried first.
        self._blkio_files = RECURSIVE_BLKIO_FILES

    def _read_blkio(self, directory: str, stacked_devices: frozenset[str]):
        io, source = read_blkio(directory, stacked_devices, self._blkio_files)
        if source is not None and source != self._blkio_files[0]:
            self._blkio_files = (source, *(f for f in RECURSIVE_BLKIO_FILES if f != source))
        return io

    def _directory(self, controller: str, path: str) -> str | None:
        hierarchy = self.layout.hierarchy(controller)
        return None if hierarchy is None else hierarchy + path

    def read(self, path: str, stacked_devices: frozenset[str]) -> dict | None:
        """The cgroup's figures; None when the cgroup vanished during the read."""
        cpuacct = self._directory("cpuacct", path)
        cpu = self._directory("cpu", path)
        memory = self._directory("memory", path)
        blkio = self._directory("blkio", path)
        usage_ns = cpu_stat = None
        memory_usage = memory_stat = oom_control = io = None
        if cpuacct is not None:
            usage_ns = read_text(cpuacct + "/cpuacct.usage")
        (cpu_limit, limit), limits_read = self.limits(path, lambda: _limits(cpu, memory))
        if cpu is not None:
            cpu_stat = read_text(cpu + "/cpu.stat")
        if memory is not None:
            memory_usage = read_text(memory + "/memory.usage_in_bytes")
            memory_stat = read_text(memory + "/memory.stat")
            oom_control = read_text(memory + "/memory.oom_control")
        if blkio is not None:
            io = self._read_blkio(blkio, stacked_devices)
        # Each file is read whole; a file that could not be read may mean the cgroup is gone.
        incomplete = not limits_read or None in (
            usage_ns,
            cpu_stat,
            memory_usage,
            memory_stat,
            oom_control,
        )
        if incomplete or io is None:
            for directory in (cpuacct, cpu, memory, blkio):
                if directory is not None and not os.path.isdir(directory):
                    return None
        usage = None if usage_ns is None else parse_uint(usage_ns)
        cpu_table = flat_keyed(cpu_stat or "")
        throttled = parse_uint(cpu_table.get("throttled_time", ""))
        memory_bytes = None if memory_usage is None else parse_uint(memory_usage)
        # A pod's own figures (inactive_file, rss, cache) cover only its empty level; total_
        # ones are hierarchical.
        memory_stat = memory_stat or ""
        inactive = keyed_uint(memory_stat, "total_inactive_file")
        return {
            "cpu_usage_seconds_total": None if usage is None else usage / 1e9,
            "cpu_throttled_seconds_total": None if throttled is None else throttled / 1e9,
            "cpu_periods_total": parse_uint(cpu_table.get("nr_periods", "")),
            "cpu_throttled_periods_total": parse_uint(cpu_table.get("nr_throttled", "")),
            "cpu_limit_cores": cpu_limit,
            "memory_usage_bytes": memory_bytes,
            "memory_working_set_bytes": working_set(memory_bytes, inactive),
            "memory_anon_bytes": keyed_uint(memory_stat, "total_rss"),
            "memory_file_bytes": keyed_uint(memory_stat, "total_cache"),
            "memory_limit_bytes": limit,
            # Linux 4.13+; older kernels have only oom_kill_disable and under_oom.
            "memory_oom_kills_total": keyed_uint(oom_control or "", "oom_kill"),
            "disk_read_bytes_total": None if io is None else io[0],
            "disk_write_bytes_total": None if io is None else io[1],
        }
