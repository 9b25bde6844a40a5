"""Property tests: no text makes a parser raise or yield a negative figure."""

import math
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmon.agent.node import collect_node
from cloudmon.agent.node.diskstats import parse_diskstats, whole_disk_traffic
from cloudmon.agent.node.kernel import parse_osrelease
from cloudmon.agent.node.loadavg import parse_loadavg
from cloudmon.agent.node.meminfo import parse_meminfo
from cloudmon.agent.node.netdev import is_host_interface, parse_net_dev, sum_traffic
from cloudmon.agent.node.stat import USER_HZ, parse_stat

EXAMPLES = settings(max_examples=200, deadline=None)

U64 = st.integers(min_value=0, max_value=2**64 - 1)
# Words the parsers look for, numbers of every sign and size, and separators, so that
# generated text reaches past the first checks.
TOKENS = st.one_of(
    st.sampled_from(
        [
            "cpu",
            "cpu0",
            "cpu12",
            "btime",
            "MemTotal:",
            "MemAvailable:",
            "kB",
            "MB",
            ":",
            "/",
            "sda",
            "sda1",
            "nvme0n1",
            "dm-0",
            "eth0",
            "lo",
            "veth1",
            "nan",
            "inf",
            "1e9",
            "-0",
            "0.61",
            "-1.5",
            "+3",
            "1_000",
            "\u0663",
            "\x00",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=8),
)
SEPARATOR = st.sampled_from([" ", "  ", "\t", "\n", ":", "\n\n", "\r\n"])
LINE = st.lists(TOKENS, max_size=20).map(" ".join)
TOKEN_TEXT = st.lists(st.tuples(LINE, SEPARATOR), max_size=30).map(
    lambda parts: "".join(line + sep for line, sep in parts)
)
ANY_TEXT = st.one_of(st.text(), TOKEN_TEXT)


def _non_negative(value):
    return value is None or (value >= 0 and not (isinstance(value, float) and math.isnan(value)))


@EXAMPLES
@given(ANY_TEXT)
def test_parse_stat_never_raises_nor_goes_negative(text):
    reading = parse_stat(text)
    if reading is not None:
        assert _non_negative(reading.busy_seconds)
        assert reading.cpu_count is None or reading.cpu_count >= 1
        assert _non_negative(reading.boot_time)


@EXAMPLES
@given(st.lists(U64, min_size=4, max_size=10), st.integers(min_value=1, max_value=64), U64)
def test_parse_stat_reads_what_the_kernel_writes(columns, cpus, btime):
    cpu_line = "cpu  " + " ".join(map(str, columns))
    per_cpu = "".join(f"cpu{i} 1 2 3 4 5 6 7 8 9 10\n" for i in range(cpus))
    reading = parse_stat(f"{cpu_line}\n{per_cpu}intr 0 1\nbtime {btime}\nprocesses 9\n")
    busy = sum(columns[i] for i in (0, 1, 2, 5, 6, 7) if i < len(columns))
    assert reading.busy_seconds == busy / USER_HZ
    assert reading.cpu_count == cpus
    assert reading.boot_time == float(btime)


@EXAMPLES
@given(ANY_TEXT)
def test_parse_meminfo_never_raises_nor_goes_negative(text):
    reading = parse_meminfo(text)
    if reading is not None:
        total, available = reading
        assert _non_negative(total) and _non_negative(available)
        assert total is None or type(total) is int


@EXAMPLES
@given(U64, U64)
def test_parse_meminfo_reads_what_the_kernel_writes(total_kib, available_kib):
    text = f"MemTotal: {total_kib:>15} kB\nMemFree: 1 kB\nMemAvailable: {available_kib:>11} kB\n"
    assert parse_meminfo(text) == (total_kib * 1024, available_kib * 1024)


@EXAMPLES
@given(ANY_TEXT)
def test_parse_loadavg_never_raises_nor_goes_negative(text):
    reading = parse_loadavg(text)
    if reading is not None:
        assert all(math.isfinite(load) and load >= 0 for load in reading)


@EXAMPLES
@given(st.lists(st.integers(min_value=0, max_value=2**42), min_size=3, max_size=3))
def test_parse_loadavg_reads_what_the_kernel_writes(hundredths):
    text = " ".join(f"{h // 100}.{h % 100:02d}" for h in hundredths) + " 2/345 6789\n"
    assert parse_loadavg(text) == tuple(h / 100 for h in hundredths)


@EXAMPLES
@given(ANY_TEXT)
def test_parse_osrelease_never_raises(text):
    release = parse_osrelease(text)
    assert release is None or (release and release == release.strip() and " " not in release)


@EXAMPLES
@given(ANY_TEXT)
def test_parse_diskstats_never_raises_nor_goes_negative(text):
    disks = parse_diskstats(text)
    for disk in disks:
        assert min(disk.major, disk.minor, disk.read_bytes, disk.write_bytes) >= 0
    read, written = whole_disk_traffic(disks)
    assert read >= 0 and written >= 0


@EXAMPLES
@given(st.lists(st.tuples(U64, U64), min_size=1, max_size=8), st.sampled_from([11, 15, 17]))
def test_parse_diskstats_reads_what_the_kernel_writes(sectors, counters):
    lines = []
    for i, (read, written) in enumerate(sectors):
        values = [0] * counters
        values[2], values[6] = read, written
        lines.append(f"{8:>4} {16 * i:>7} sd{'abcdefgh'[i]} " + " ".join(map(str, values)))
    disks = parse_diskstats("\n".join(lines) + "\n")
    assert [(d.read_bytes, d.write_bytes) for d in disks] == [
        (r * 512, w * 512) for r, w in sectors
    ]


@EXAMPLES
@given(ANY_TEXT)
def test_parse_net_dev_never_raises_nor_goes_negative(text):
    interfaces = parse_net_dev(text)
    for name, (received, sent) in interfaces.items():
        assert name and received >= 0 and sent >= 0
    rx, tx = sum_traffic(interfaces, is_host_interface)
    assert rx >= 0 and tx >= 0


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=15)


@EXAMPLES
@given(st.dictionaries(NAMES, st.tuples(U64, U64), max_size=8), st.booleans())
def test_parse_net_dev_reads_what_the_kernel_writes(interfaces, glued):
    header = "Inter-|   Receive  |  Transmit\n face |bytes    packets|bytes    packets\n"
    fmt = "{:>6}:{}" if glued else "{:>6}: {}"
    lines = [
        fmt.format(name, " ".join(map(str, [rx, 1, 2, 3, 4, 5, 6, 7, tx, 8, 9, 0, 1, 2, 3, 4])))
        for name, (rx, tx) in interfaces.items()
    ]
    assert parse_net_dev(header + "".join(line + "\n" for line in lines)) == interfaces


NODE_FILES = ["stat", "meminfo", "diskstats", "1/net/dev", "loadavg", "sys/kernel/osrelease"]


@settings(max_examples=40, deadline=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(NODE_FILES, st.binary(max_size=300))))
def test_collect_node_on_arbitrary_files(files):
    with tempfile.TemporaryDirectory() as root:
        for relative, content in files.items():
            path = os.path.join(root, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as file:
                file.write(content)
        reading = collect_node(root, root)
    assert all(_non_negative(value) for value in reading.metrics.values())
