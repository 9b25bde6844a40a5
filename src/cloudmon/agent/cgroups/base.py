"""What the v1 and v2 readers share: pod discovery and the processes of a cgroup."""

import os
from collections.abc import Iterator

from cloudmon.agent.cgroups.discovery import PodCgroup, find_kubepods, find_pods
from cloudmon.agent.cgroups.layout import Layout
from cloudmon.agent.cgroups.parse import parse_uint
from cloudmon.agent.files import read_text

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

    def find_pods(self) -> list[PodCgroup]:
        """Every pod cgroup on the host, with its containers."""
        if not self._kubepods or not all(os.path.isdir(self.tree + p) for p in self._kubepods):
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

    def read(self, path: str, stacked_devices: frozenset[str]) -> dict | None:
        """The cgroup's figures (FIELDS); None when the cgroup vanished during the read."""
        raise NotImplementedError
