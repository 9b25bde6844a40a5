"""Where the host's file systems are: the only place their default paths are spelled."""

import os
from dataclasses import dataclass

PROC = "/proc"
CGROUP = "/sys/fs/cgroup"
ROOTFS = "/"
# Where a DaemonSet mounts the host's file systems (manifests/monitor.yaml).
HOST_PROC = "/host/proc"
HOST_CGROUP = "/host/sys/fs/cgroup"
HOST_ROOTFS = "/host/root"

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _first_existing(in_container: str, on_host: str) -> str:
    return in_container if os.path.exists(in_container) else on_host


def default_proc_root() -> str:
    return _first_existing(HOST_PROC, PROC)


def default_cgroup_root() -> str:
    return _first_existing(HOST_CGROUP, CGROUP)


def default_rootfs() -> str:
    return _first_existing(HOST_ROOTFS, ROOTFS)


@dataclass(frozen=True)
class Roots:
    """The host's /proc, cgroup file system and root file system, as the agent sees them."""

    proc: str = PROC
    cgroup: str = CGROUP
    rootfs: str = ROOTFS
