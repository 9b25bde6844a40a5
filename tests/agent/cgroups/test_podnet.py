"""A pod's network traffic from /proc/<pid>/net/dev."""

import os

import pytest

from cloudmon.agent import podnet
from cloudmon.agent.podnet import read_pod_network

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0:  315849    1172    0    0    0     0          0         0   315850    1173    0    0    0     0       0          0
  net1:1000000000    10    0    0    0     0          0         0        7       1    0    0    0     0       0          0
"""  # noqa: E501 (real /proc/<pid>/net/dev lines)


def process(proc, pid, same_namespace_as=None, net_dev=NET_DEV):
    """A process whose net/dev is that of `same_namespace_as`, or of a namespace of its own."""
    directory = proc / str(pid) / "net"
    directory.mkdir(parents=True)
    if same_namespace_as is not None:
        (directory / "dev").hardlink_to(proc / str(same_namespace_as) / "net" / "dev")
    elif net_dev is not None:
        (directory / "dev").write_text(net_dev)


@pytest.fixture
def proc(tmp_path):
    process(tmp_path, 1, net_dev="host interfaces\n\n")
    return tmp_path


def test_all_interfaces_but_lo(proc):
    process(proc, 4242)
    assert read_pod_network(str(proc), [4242]) == (315849 + 1000000000, 315850 + 7)


def test_first_readable_process(proc):
    process(proc, 10, net_dev=None)  # net/dev gone meanwhile
    process(proc, 11)
    assert read_pod_network(str(proc), [9, 10, 11]) == (1000315849, 315857)
    assert read_pod_network(str(proc), [9, 10]) is None
    assert read_pod_network(str(proc), []) is None


def test_host_network(proc):
    process(proc, 20, same_namespace_as=1)
    assert read_pod_network(str(proc), [20]) is None
    # A process in the host namespace (CRI-O's conmon) is passed over.
    process(proc, 21)
    assert read_pod_network(str(proc), [20, 21]) == (1000315849, 315857)


def test_processes_of_one_namespace_share_it(proc):
    process(proc, 30)
    process(proc, 31, same_namespace_as=30)
    assert read_pod_network(str(proc), [31]) == (1000315849, 315857)


def test_host_namespace_unknown_gives_none(tmp_path, caplog):
    process(tmp_path, 30)
    assert read_pod_network(str(tmp_path), [30]) is None
    assert "no pod network figures" in caplog.text


def test_permission_denied_is_reported_and_gives_none(proc, monkeypatch, caplog):
    process(proc, 40)
    real = os.stat

    def denied(path, *args, **kwargs):
        if str(path).endswith("/40/net/dev"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(podnet.os, "stat", denied)
    assert read_pod_network(str(proc), [40]) is None
    assert "Permission denied" in caplog.text
