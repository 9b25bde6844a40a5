import pytest

from cloudmon.agent.node.netdev import (
    is_host_interface,
    parse_net_dev,
    read_host_traffic,
    sum_traffic,
)

HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs"
    " drop fifo colls carrier compressed\n"
)
MODERN = HEADER + (
    "    lo:  0    0    0    0    0     0          0         0   0    0    0    0    0     0"
    "       0          0\n"
    "   em1:  315849    1172    0    0    0     0          0         0   315850    1173    0"
    "    0    0     0       0          0\n"
)
# Kernels before 2.6.x printed "%6s:%8lu", gluing big counters to the colon.
GLUED = HEADER + (
    "    lo:12345678   10    0    0    0     0          0         0 12345678   10    0    0"
    "    0     0       0          0\n"
    "  eth0:123456789012 1172 0 0 0 0 0 0 987654321 1173 0 0 0 0 0 0\n"
)


def test_modern_format():
    assert parse_net_dev(MODERN) == {"lo": (0, 0), "em1": (315849, 315850)}


def test_old_glued_format():
    assert parse_net_dev(GLUED) == {"lo": (12345678, 12345678), "eth0": (123456789012, 987654321)}


def test_long_names_and_no_padding():
    text = HEADER + "cali1234567890ab: 5 1 0 0 0 0 0 0 6 1 0 0 0 0 0 0\n"
    assert parse_net_dev(text) == {"cali1234567890ab": (5, 6)}


@pytest.mark.parametrize(
    "line",
    [
        "  eth0: 1 2 3",  # truncated
        "  eth0 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0",  # no colon
        "      : 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0",  # no name
        "  eth0: -1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0",
        "  eth0: 1 0 0 0 0 0 0 0 x 0 0 0 0 0 0 0",
    ],
)
def test_malformed_lines_are_skipped(line):
    assert parse_net_dev(HEADER + line + "\n") == {}


def test_header_lines_are_never_interfaces():
    assert parse_net_dev(HEADER) == {}


@pytest.mark.parametrize("name", ["eth0", "ens5", "enp0s3", "eno1", "bond0", "wlan0", "em1"])
def test_host_interfaces(name):
    assert is_host_interface(name)


@pytest.mark.parametrize(
    "name",
    [
        "lo",
        "veth1a2b3c4",
        "cali1234567890a",
        "cni0",
        "flannel.1",
        "docker0",
        "cilium_host",
        "cilium_vxlan",
        "lxc12345",
        "tunl0",
        "vxlan.calico",
        "kube-ipvs0",
        "nodelocaldns",
        "ifb0",
    ],
)
def test_pod_side_and_virtual_interfaces(name):
    assert not is_host_interface(name)


def test_sum_traffic_keeps_what_is_asked():
    interfaces = {"eth0": (10, 1), "eth1": (20, 2), "veth9": (400, 4), "lo": (8000, 8)}
    assert sum_traffic(interfaces, is_host_interface) == (30, 3)
    assert sum_traffic(interfaces, lambda name: name != "lo") == (430, 7)
    assert sum_traffic({}, is_host_interface) == (0, 0)


def test_host_traffic_is_read_from_pid_1_not_the_own_namespace(tmp_path, write_tree):
    host = HEADER + "  eth0: 100 0 0 0 0 0 0 0 200 0 0 0 0 0 0 0\n"
    own = HEADER + "  eth0: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n"
    root = write_tree(tmp_path, {"1/net/dev": host, "net/dev": own})
    assert read_host_traffic(root) == (100, 200)
    assert read_host_traffic(str(tmp_path / "nowhere")) is None
