"""Which cgroup hierarchy a host uses (v1, v2 or hybrid), told from the tree alone."""

import os
from dataclasses import dataclass, field

# The v1 controllers the agent reads; the kubelet creates pod cgroups in each of them.
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio")


class NoCgroupHierarchy(LookupError):
    """The directory holds neither a cgroup v2 nor a cgroup v1 hierarchy."""


@dataclass(frozen=True, slots=True)
class Layout:
    """A cgroup version and the directory that holds each controller's hierarchy."""

    version: int
    root: str
    controllers: dict[str, str] = field(default_factory=dict)
    # The v2 tree beside v1's hierarchies on a hybrid host (no controllers, but the pressure
    # files of every cgroup in it); on v2, the root.
    unified: str | None = None

    def hierarchy(self, controller: str) -> str | None:
        """The directory of `controller`'s hierarchy (the single tree on v2)."""
        if self.version == 2:
            return self.root
        return self.controllers.get(controller)


def _v1_controllers(cgroup_root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        # Combined names come last and win over their "cpu"/"cpuacct" symlinks: the same
        # hierarchy either way, but the choice no longer depends on directory order.
        entries = sorted(os.scandir(cgroup_root), key=lambda e: (e.name.count(","), e.name))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        try:
            if not entry.is_dir():
                continue
        except OSError:
            continue
        for name in entry.name.split(","):
            if name in V1_CONTROLLERS:
                found[name] = entry.path
    return found


def detect_layout(cgroup_root: str) -> Layout:
    """v2 if the root has cgroup.controllers, else v1 (hybrid hosts too, as the kubelet)."""
    if os.path.isfile(os.path.join(cgroup_root, "cgroup.controllers")):
        return Layout(2, cgroup_root, unified=cgroup_root)
    controllers = _v1_controllers(cgroup_root)
    unified = os.path.join(cgroup_root, "unified")
    has_unified = os.path.isfile(os.path.join(unified, "cgroup.controllers"))
    if controllers:
        return Layout(1, cgroup_root, controllers, unified if has_unified else None)
    if has_unified:
        return Layout(2, unified, unified=unified)
    raise NoCgroupHierarchy(f"no cgroup v1 or v2 hierarchy under {cgroup_root}")
