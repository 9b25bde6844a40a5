"""What the v1 and v2 readers share: pod discovery, the processes of a cgroup, its limits
read once a minute, and its pressure files from the v2 tree."""

import os
import zlib
from collections.abc import Callable, Iterator

from cloudmon.agent.cgroups.discovery import PodCgroup, find_kubepods, find_pods
from cloudmon.agent.cgroups.layout import Layout
from cloudmon.agent.cgroups.parse import parse_uint
from cloudmon.agent.files import read_text
from cloudmon.agent.psi import RESOURCES, read_pressure

# The figures read() returns for one cgroup, always all of them (None when unknown).
FIELDS = (
    "cpu_usage_seconds_total",
    "cpu_throttled_seconds_total",
    "cpu_periods_total",
    "cpu_throttled_periods_total",
    "cpu_limit_cores",
    "memory_usage_bytes",
    "memory_working_set_bytes",
    "memory_anon_bytes",
    "memory_file_bytes",
    "memory_limit_bytes",
    "memory_oom_kills_total",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
)

PRESSURE_FIELDS = tuple(
    f"{resource}_pressure_{kind}_seconds_total"
    for resource in RESOURCES
    for kind in ("some", "full")
)

# Limits change seldom (a resize, an autoscaler's update): a cgroup's are read every
# LIMITS_EVERY cycles (a minute at the default 10 s), each cgroup on a cycle of its own so that
# the reads spread out, and at once for a cgroup not seen before.
LIMITS_EVERY = 6
# The kubepods directories are searched for every KUBEPODS_EVERY cycles, and at once when none
# is known or one vanished: one made later (the kubelet started again with another cgroup
# driver or --cgroup-root, its old directory left behind) is found within a minute.
KUBEPODS_EVERY = 6


def walk_cgroup(directory: str) -> Iterator[str]:
    """The directory and every cgroup below it; ones that vanish meanwhile are skipped."""
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                pending.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            continue
        yield current


class Cgroups:
    """A host's cgroup file system: its pods, their figures and their processes."""

    version: int
    # Whether a cgroup's OOM kills include those of the cgroups below it.
    oom_kills_below: bool

    def __init__(self, layout: Layout, tree: str):
        self.layout = layout
        # The hierarchy searched for pods and read for processes (cpuacct on v1).
        self.tree = tree
        self._kubepods: list[str] = []
        self._cycle = 0
        self._limits: dict[str, tuple] = {}  # by cgroup: its limits
        self._limits_seen: dict[str, tuple] = {}

    def find_pods(self) -> list[PodCgroup]:
        """Every pod cgroup on the host, with its containers; a cycle's first call."""
        self._cycle += 1
        # The limits of cgroups not read in the last cycle are forgotten: pods come and go.
        self._limits, self._limits_seen = self._limits_seen, {}
        if (
            self._cycle % KUBEPODS_EVERY == 0
            or not self._kubepods
            or not all(os.path.isdir(self.tree + p) for p in self._kubepods)
        ):
            self._kubepods = find_kubepods(self.tree)
        return find_pods(self.tree, self._kubepods)

    def pids(self, path: str, recursive: bool = False) -> list[int]:
        """The processes in the cgroup at `path` (and below it when `recursive`)."""
        directories = walk_cgroup(self.tree + path) if recursive else [self.tree + path]
        pids = []
        for directory in directories:
            text = read_text(os.path.join(directory, "cgroup.procs"))
            if text:
                pids.extend(p for line in text.split() if (p := parse_uint(line)) is not None)
        return pids

    def limits(self, path: str, read: Callable[[], tuple[tuple, bool]]) -> tuple[tuple, bool]:
        """A cgroup's limits, and whether their files were all read: `read()` when due, else
        as last read; where a file could not be read, or was empty, they are read again the
        next cycle."""
        known = self._limits.get(path)
        if known is None or (self._cycle + zlib.crc32(path.encode())) % LIMITS_EVERY == 0:
            limits, whole = read()
            if not whole:
                return limits, False
            known = limits
        self._limits_seen[path] = known
        return known, True

    def read(self, path: str, stacked_devices: frozenset[str]) -> dict | None:
        """The cgroup's figures (FIELDS); None when the cgroup vanished during the read."""
        raise NotImplementedError

    def read_pressure(self, path: str) -> dict[str, float | None]:
        """The cgroup's stalled seconds (`psi.read_pressure`), from the v2 tree (on a hybrid
        host too); None each on v1 alone."""
        if self.layout.unified is None:
            return dict.fromkeys(PRESSURE_FIELDS)
        return read_pressure(self.layout.unified + path, ".pressure")
