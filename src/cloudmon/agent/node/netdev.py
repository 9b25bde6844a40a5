"""/proc/<pid>/net/dev: bytes received and sent per interface of one network namespace."""

import os
import re
from collections.abc import Callable

from cloudmon.agent.node._parse import counter, read_parsed

# Pod-side and virtual interfaces whose traffic is already counted on a physical one:
# Calico's DEFAULT_INTERFACES_TO_EXCLUDE plus the usual Cilium, Flannel, Weave, Antrea
# and OVS devices, and ifb devices, which shaping fills with traffic redirected from
# another interface.
_POD_SIDE = re.compile(
    r"^(lo$|veth|cali|cni|flannel|docker|cilium|lxc|tunl|vxlan|cbr|dummy|virbr|lxcbr|"
    r"kube-ipvs|kube-bridge|nodelocaldns|wireguard\.cali|wg-v6\.cali|antrea-|ovs-|"
    r"genev_sys_|weave|nerdctl|ifb)"
)

# net/core/net-procfs.c: 8 receive counters (bytes first), then 8 transmit counters.
_COUNTERS = 16
_RX_BYTES = 0
_TX_BYTES = 8


def parse_net_dev(text: str) -> dict[str, tuple[int, int]]:
    """Interface name -> (receive bytes, transmit bytes); the two header lines are skipped."""
    interfaces = {}
    for line in text.splitlines()[2:]:
        # Older kernels glue big counters to the colon ("eth0:123456"), so split on it.
        name, colon, counters = line.partition(":")
        name = name.strip()
        fields = counters.split()
        if not colon or not name or len(fields) < _COUNTERS:
            continue
        try:
            interfaces[name] = (counter(fields[_RX_BYTES]), counter(fields[_TX_BYTES]))
        except ValueError:
            continue
    return interfaces


def is_host_interface(name: str) -> bool:
    """True for an interface that carries the node's own traffic (not lo, not pod-side)."""
    return _POD_SIDE.match(name) is None


def sum_traffic(
    interfaces: dict[str, tuple[int, int]], keep: Callable[[str], bool]
) -> tuple[int, int]:
    """(receive, transmit) bytes summed over the interfaces for which keep(name) is true."""
    rx = tx = 0
    for name, (received, sent) in interfaces.items():
        if keep(name):
            rx += received
            tx += sent
    return rx, tx


def read_host_traffic(proc_root: str) -> tuple[int, int] | None:
    """(receive, transmit) bytes of the host's own interfaces, from <proc_root>/1/net/dev.

    <proc_root>/net/dev is the reader's network namespace; pid 1's is the host's.
    """
    interfaces = read_parsed(os.path.join(proc_root, "1", "net", "dev"), parse_net_dev)
    return None if interfaces is None else sum_traffic(interfaces, is_host_interface)
