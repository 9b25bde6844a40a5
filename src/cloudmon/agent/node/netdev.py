"""/proc/<pid>/net/dev: bytes received and sent per interface of one network namespace."""

import re

# Pod-side and virtual interfaces whose traffic is already counted on a physical one:
# Calico's DEFAULT_INTERFACES_TO_EXCLUDE plus the usual Cilium, Flannel, Weave, Antrea
# and OVS devices.
_POD_SIDE = re.compile(
    r"^(lo$|veth|cali|cni|flannel|docker|cilium|lxc|tunl|vxlan|cbr|dummy|virbr|lxcbr|"
    r"kube-ipvs|kube-bridge|nodelocaldns|wireguard\.cali|wg-v6\.cali|antrea-|ovs-|"
    r"genev_sys_|weave|nerdctl)"
)


def parse_net_dev(text: str) -> dict[str, tuple[int, int]]:
    """Interface name -> (receive bytes, transmit bytes); the two header lines are skipped."""
    interfaces = {}
    for line in text.splitlines()[2:]:
        # Older kernels glue big counters to the colon ("eth0:123456"), so split on it.
        name, colon, counters = line.partition(":")
        if not colon:
            continue
        fields = counters.split()
        if len(fields) < 16:
            continue
        try:
            interfaces[name.strip()] = (int(fields[0]), int(fields[8]))
        except ValueError:
            continue
    return interfaces


def is_host_interface(name: str) -> bool:
    """True for an interface that carries the node's own traffic (not lo, not pod-side)."""
    return _POD_SIDE.match(name) is None


def sum_traffic(interfaces: dict[str, tuple[int, int]], keep) -> tuple[int, int]:
    """(receive, transmit) bytes summed over the interfaces for which keep(name) is true."""
    rx = tx = 0
    for name, (received, sent) in interfaces.items():
        if keep(name):
            rx += received
            tx += sent
    return rx, tx
