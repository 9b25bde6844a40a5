"""Pods and containers from the host's cgroup file system, and their figures (v1 or v2)."""

from cloudmon.agent.cgroups.base import FIELDS, Cgroups
from cloudmon.agent.cgroups.discovery import ContainerCgroup, PodCgroup, find_pods
from cloudmon.agent.cgroups.layout import Layout, NoCgroupHierarchy, detect_layout
from cloudmon.agent.cgroups.v1 import CgroupsV1
from cloudmon.agent.cgroups.v2 import CgroupsV2

__all__ = [
    "FIELDS",
    "Cgroups",
    "ContainerCgroup",
    "Layout",
    "NoCgroupHierarchy",
    "PodCgroup",
    "detect_layout",
    "find_pods",
    "open_cgroups",
]

# On v1 pods are searched for, and processes listed, in the first of these hierarchies.
_V1_TREES = ("cpuacct", "memory", "cpu", "blkio")


def open_cgroups(cgroup_root: str) -> Cgroups:
    """The reader for the cgroup hierarchy found under `cgroup_root`."""
    layout = detect_layout(cgroup_root)
    if layout.version == 2:
        return CgroupsV2(layout, layout.root)
    tree = next(layout.controllers[c] for c in _V1_TREES if c in layout.controllers)
    return CgroupsV1(layout, tree)
