"""A pod's network traffic, from /proc/<pid>/net/dev of one of its processes."""

import os
from collections.abc import Iterable
from functools import lru_cache

from cloudmon.agent.files import read_text, report_once
from cloudmon.agent.node.netdev import parse_net_dev, sum_traffic

_UNKNOWN = ""


def _netns(proc_root: str, pid: int | str) -> str | None:
    # "net:[4026531840]"; None when the process is gone, _UNKNOWN when it may not be seen.
    path = f"{proc_root}/{pid}/ns/net"
    try:
        return os.readlink(path)
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except PermissionError:
        report_once(path, "permission denied reading %s (the agent needs CAP_SYS_PTRACE)", path)
        return _UNKNOWN


@lru_cache(maxsize=8)
def _host_netns(proc_root: str) -> str | None:
    return _netns(proc_root, 1)


def _not_loopback(name: str) -> bool:
    return name != "lo"


def read_pod_network(proc_root: str, pids: Iterable[int]) -> tuple[int, int] | None:
    """(rx, tx) bytes of the pod's network namespace but lo; None if unreadable or host network."""
    host = _host_netns(proc_root)
    for pid in pids:
        netns = _netns(proc_root, pid)
        if netns is None:
            continue
        # Without both namespaces a host-network pod cannot be told apart, and it would
        # report all of the node's traffic (kubernetes#104647).
        if not host or netns == _UNKNOWN:
            return None
        # A host-network pod, or CRI-O's conmon when it runs in the pod's cgroup.
        if netns == host:
            continue
        text = read_text(f"{proc_root}/{pid}/net/dev")
        if text is None:
            continue
        return sum_traffic(parse_net_dev(text), _not_loopback)
    return None
