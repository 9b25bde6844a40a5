"""A pod's network traffic, from /proc/<pid>/net/dev of one of its processes."""

import os
from collections.abc import Iterable
from functools import lru_cache

from cloudmon.agent.files import read_text, report_once
from cloudmon.agent.node.netdev import parse_net_dev, sum_traffic


def _netns(proc_root: str, pid: int | str) -> int | None:
    # procfs makes the files of /proc/<pid>/net anew for each network namespace, each with
    # an inode number of its own, so two processes share a namespace exactly when their
    # net/dev inodes are equal. Unlike readlink of /proc/<pid>/ns/net, which needs ptrace
    # access (refused for pid 1 on some hosts even to root), this needs no more access than
    # reading net/dev itself.
    path = f"{proc_root}/{pid}/net/dev"
    try:
        return os.stat(path).st_ino
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError as error:
        report_once(path, "cannot stat %s: %s", path, error)
        return None


@lru_cache(maxsize=8)
def _host_netns(proc_root: str) -> int | None:
    return _netns(proc_root, 1)


def _not_loopback(name: str) -> bool:
    return name != "lo"


def read_pod_network(proc_root: str, pids: Iterable[int]) -> tuple[int, int] | None:
    """(rx, tx) bytes of the pod's network namespace but lo; None if unreadable or host network."""
    host = _host_netns(proc_root)
    if host is None:
        # Without the host's namespace a host-network pod cannot be told apart, and it would
        # report all of the node's traffic (kubernetes#104647).
        report_once(proc_root, "cannot read %s/1/net/dev: no pod network figures", proc_root)
        return None
    for pid in pids:
        netns = _netns(proc_root, pid)
        # A host-network pod, or CRI-O's conmon when it runs in the pod's cgroup.
        if netns is None or netns == host:
            continue
        text = read_text(f"{proc_root}/{pid}/net/dev")
        if text is None:
            continue
        return sum_traffic(parse_net_dev(text), _not_loopback)
    return None
