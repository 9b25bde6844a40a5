import os

import pytest

# A small but real-looking node: two CPUs, a virtio disk with a partition, LVM and loop
# devices, and a host network namespace with a physical NIC and pod-side interfaces.
STAT = """\
cpu  1000 200 300 5000 400 50 60 70 80 90
cpu0 500 100 150 2500 200 25 30 35 40 45
cpu1 500 100 150 2500 200 25 30 35 40 45
intr 123456 0 9 0 0 0 0 0 0 0 0
ctxt 987654
btime 1764000000
processes 4242
procs_running 2
procs_blocked 0
softirq 55555 0 1 2 3 4 5 6 7 8 9
"""
MEMINFO = """\
MemTotal:        8000000 kB
MemFree:         1000000 kB
MemAvailable:    6000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""
DISKSTATS = """\
 252       0 vda 9271 5048 1000 3470 1159 7538 2000 913 0 1332 5011 0 0 0 0 46 9
 252       1 vda1 9000 5000 999 3400 1100 7500 1999 900 0 1300 5000 0 0 0 0 0 0
   7       0 loop0 10 0 77 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 253       0 dm-0 100 0 800 10 100 0 1500 10 0 20 20 0 0 0 0 0 0
 259       0 nvme0n1 12345 0 3000 4321 23456 0 4000 8765 0 9876 13086 0 0 0 0 345 210
"""
NET_DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs"
    " drop fifo colls carrier compressed\n"
)
HOST_NET_DEV = NET_DEV_HEADER + (
    "    lo: 777 7 0 0 0 0 0 0 777 7 0 0 0 0 0 0\n"
    "  eth0: 100000 1172 0 0 0 0 0 0 20000 1173 0 0 0 0 0 0\n"
    "  eth1: 5000 1172 0 0 0 0 0 0 300 1173 0 0 0 0 0 0\n"
    "cali1234abcd: 999999 1 0 0 0 0 0 0 999999 1 0 0 0 0 0 0\n"
    "  cni0: 888888 1 0 0 0 0 0 0 888888 1 0 0 0 0 0 0\n"
)
# The reader's own network namespace, which must not be read for the node.
OWN_NET_DEV = NET_DEV_HEADER + "  eth0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
LOADAVG = "0.61 1.20 0.55 3/828 22084\n"
# /proc/vmstat has some 180 lines; oom_kill sits among the event counters.
VMSTAT = """\
nr_free_pages 1402350
nr_zone_inactive_anon 2044
nr_zone_active_anon 403771
pgfault 92837465
pgmajfault 4021
oom_kill 7
numa_pte_updates 0
unevictable_pgs_culled 0
"""
OSRELEASE = "6.1.0-18-amd64\n"

# /proc/pressure: CPU's "full" line is zeros at the node's level (Linux 5.13+).
PRESSURE = {
    "cpu": "some avg10=1.25 avg60=0.54 avg300=2.78 total=2836053732\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "memory": "some avg10=0.00 avg60=0.00 avg300=0.00 total=7329\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=5756\n",
    "io": "some avg10=0.31 avg60=0.12 avg300=0.05 total=1002726664\n"
    "full avg10=0.20 avg60=0.09 avg300=0.03 total=827998878\n",
}

NODE_FILES = {
    "stat": STAT,
    "meminfo": MEMINFO,
    "diskstats": DISKSTATS,
    "1/net/dev": HOST_NET_DEV,
    "net/dev": OWN_NET_DEV,
    "loadavg": LOADAVG,
    "vmstat": VMSTAT,
    **{f"pressure/{name}": text for name, text in PRESSURE.items()},
    "sys/kernel/osrelease": OSRELEASE,
}


def _write_tree(root, files: dict[str, str | bytes]) -> str:
    for relative, content in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as file:
            file.write(content)
    return str(root)


@pytest.fixture
def node_files() -> dict[str, str]:
    """The files of the fixture /proc above, by path relative to the proc root."""
    return dict(NODE_FILES)


@pytest.fixture
def write_tree():
    """write_tree(root, {relative path: content}) -> root, written."""
    return _write_tree


@pytest.fixture
def proc_root(tmp_path):
    """A complete fixture /proc of the node above."""
    return _write_tree(tmp_path / "proc", NODE_FILES)
