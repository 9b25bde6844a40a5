"""The pure cgroup parsers, on inline text and on anything hypothesis makes up."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudmon.agent.cgroups.parse import keyed_uint, parse_uint, working_set
from cloudmon.agent.cgroups.v1 import parse_blkio, parse_cfs_limit, parse_memory_limit
from cloudmon.agent.cgroups.v2 import parse_cpu_max, parse_io_stat, parse_memory_max

STACKED = frozenset({"253:0"})

CPU_STAT_V2 = """\
usage_usec 8532164
user_usec 6120033
system_usec 2412131
nr_periods 4120
nr_throttled 37
throttled_usec 1830212
nr_bursts 0
burst_usec 0
"""
MEMORY_STAT_V1 = """\
cache 49627136
rss 59940864
inactive_file 0
hierarchical_memory_limit 134217728
total_cache 49627136
total_inactive_file 35459072
total_active_file 14168064
"""


def test_keyed_uint():
    assert keyed_uint(CPU_STAT_V2, "usage_usec") == 8532164
    assert keyed_uint(CPU_STAT_V2, "throttled_usec") == 1830212
    assert keyed_uint(CPU_STAT_V2, "burst_usec") == 0
    assert keyed_uint(CPU_STAT_V2, "usage") is None
    assert keyed_uint(CPU_STAT_V2, "usec") is None
    assert keyed_uint(MEMORY_STAT_V1, "inactive_file") == 0
    assert keyed_uint(MEMORY_STAT_V1, "total_inactive_file") == 35459072
    assert keyed_uint("usage_usec 12", "usage_usec") == 12
    assert keyed_uint("usage_usec -12\n", "usage_usec") is None
    assert keyed_uint("usage_usec twelve\n", "usage_usec") is None
    assert keyed_uint("", "usage_usec") is None


def test_parse_uint():
    assert parse_uint(" 42\n") == 42
    for garbage in ("", "-1", "1_000", "4.2", "max", "١٢", "12 13"):
        assert parse_uint(garbage) is None


def test_cpu_max():
    assert parse_cpu_max("50000 100000\n") == 0.5
    assert parse_cpu_max("20000 100010\n") == pytest.approx(0.19998)
    assert parse_cpu_max("max 100000\n") is None
    for garbage in ("", "50000", "50000 0", "a b", "1 2 3"):
        assert parse_cpu_max(garbage) is None


def test_memory_limits():
    assert parse_memory_max("max\n") is None
    assert parse_memory_max("536870912\n") == 536870912
    assert parse_memory_limit("9223372036854771712\n") is None
    assert parse_memory_limit("9223372036854775807\n") is None  # Linux 3.10
    assert parse_memory_limit(f"{1 << 62}\n") == 1 << 62
    assert parse_memory_limit("268435456\n") == 268435456
    assert parse_memory_limit("-1\n") is None


def test_cfs_limit():
    assert parse_cfs_limit("150000\n", "100000\n") == 1.5
    assert parse_cfs_limit("-1\n", "100000\n") is None
    assert parse_cfs_limit("50000\n", "0\n") is None
    assert parse_cfs_limit("", "100000") is None


def test_io_stat():
    text = (
        "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"
        "253:0 rbytes=6901432320 wbytes=14245535744 rios=263278 wios=248603 dbytes=0 dios=0\n"
        "259:0 rbytes=1000 wbytes=2000 rios=2 wios=3 dbytes=0 dios=0 cost.vrate=100.00"
        " cost.usage=1 cost.wait=0 cost.indebt=0 cost.indelay=0\n"
    )
    assert parse_io_stat(text, STACKED) == (1459200 + 1000, 314773504 + 2000)
    assert parse_io_stat(text, frozenset()) == (
        1459200 + 6901432320 + 1000,
        314773504 + 14245535744 + 2000,
    )
    assert parse_io_stat("", STACKED) == (0, 0)
    assert parse_io_stat("\n", STACKED) == (0, 0)
    assert parse_io_stat("garbage\n", STACKED) is None
    assert parse_io_stat("8:0 rbytes=12\n", STACKED) is None  # truncated
    assert parse_io_stat("253:0 rbytes=1 wbytes=2 rios=1 wios=1\n", STACKED) == (0, 0)


def test_blkio():
    text = (
        "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 300\n"
        "253:0 Read 100\n253:0 Write 200\n253:0 Sync 300\n253:0 Async 0\n253:0 Total 300\n"
        "Total 600\n"
    )
    assert parse_blkio(text, STACKED) == (100, 200)
    assert parse_blkio(text, frozenset()) == (200, 400)
    assert parse_blkio("Total 0\n", STACKED) == (0, 0)
    assert parse_blkio("", STACKED) is None
    assert parse_blkio("garbage here now\n", STACKED) is None
    assert parse_blkio("8:0 Read\n", STACKED) is None


def test_working_set():
    assert working_set(100, 30) == 70
    assert working_set(100, 130) == 0
    assert working_set(100, None) == 100
    assert working_set(None, 30) is None


numbers = st.integers(min_value=0, max_value=2**64).map(str)
noise = st.text(max_size=30)
word = st.one_of(numbers, noise, st.sampled_from(["max", "-1", "Total", "Read", "Write", "=", ":"]))
devices = st.one_of(st.builds("{}:{}".format, st.integers(0, 300), st.integers(0, 300)), noise)
io_lines = st.builds(
    lambda d, pairs: d + " " + " ".join(f"{k}={v}" for k, v in pairs),
    devices,
    st.lists(st.tuples(st.sampled_from(["rbytes", "wbytes", "rios", "x"]), word), max_size=5),
)
blkio_lines = st.one_of(
    st.builds(
        "{} {} {}".format, devices, st.sampled_from(["Read", "Write", "Total", "Sync"]), word
    ),
    st.builds("Total {}".format, word),
    noise,
)
flat_lines = st.builds("{} {}".format, st.sampled_from(["usage_usec", "inactive_file", "x"]), word)


def non_negative(value):
    if value is None:
        return True
    if isinstance(value, tuple):
        return all(v >= 0 for v in value)
    return value >= 0


@given(st.lists(io_lines, max_size=6), st.frozensets(devices, max_size=3))
def test_io_stat_never_fails(lines, stacked):
    assert non_negative(parse_io_stat("\n".join(lines), stacked))


@given(st.lists(blkio_lines, max_size=8), st.frozensets(devices, max_size=3))
def test_blkio_never_fails(lines, stacked):
    assert non_negative(parse_blkio("\n".join(lines), stacked))


@given(
    st.lists(st.one_of(flat_lines, noise), max_size=8),
    st.sampled_from(["usage_usec", "inactive_file"]),
)
def test_flat_keyed_files_never_fail(lines, key):
    assert non_negative(keyed_uint("\n".join(lines), key))


@given(st.lists(word, max_size=3).map(" ".join))
def test_limits_never_fail(text):
    assert non_negative(parse_cpu_max(text))
    assert non_negative(parse_memory_max(text))
    assert non_negative(parse_memory_limit(text))
    assert non_negative(parse_cfs_limit(text, text))


@given(st.integers(0, 2**64), st.one_of(st.none(), st.integers(0, 2**64)))
def test_working_set_is_never_negative(usage, inactive):
    assert 0 <= working_set(usage, inactive) <= usage
