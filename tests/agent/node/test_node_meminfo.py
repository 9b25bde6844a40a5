import pytest

from cloudmon.agent.node.meminfo import parse_meminfo

MODERN = """\
MemTotal:       32488372 kB
MemFree:        21697264 kB
MemAvailable:   25975132 kB
Buffers:          123456 kB
HugePages_Total:       0
"""
# Kernels before 3.14 have no MemAvailable.
OLD = """\
MemTotal:        2048000 kB
MemFree:          512000 kB
Buffers:           10000 kB
Cached:           300000 kB
"""


def test_modern_kernel_in_bytes():
    assert parse_meminfo(MODERN) == (32488372 * 1024, 25975132 * 1024)


def test_old_kernel_has_no_available_and_no_estimate():
    assert parse_meminfo(OLD) == (2048000 * 1024, None)


def test_order_does_not_matter():
    text = "MemAvailable:  10 kB\nMemFree: 3 kB\nMemTotal: 20 kB\n"
    assert parse_meminfo(text) == (20 * 1024, 10 * 1024)


@pytest.mark.parametrize(
    "line",
    [
        "MemTotal:       32488372",  # truncated before the unit
        "MemTotal:       32488372 MB",
        "MemTotal:       -5 kB",
        "MemTotal:       12x kB",
        "MemTotal:",
    ],
)
def test_garbled_total_is_none(line):
    assert parse_meminfo(f"{line}\nMemAvailable: 4 kB\n") == (None, 4096)


@pytest.mark.parametrize("text", ["", "MemFree: 4 kB\n", "random words\n"])
def test_nothing_recognised_is_none(text):
    assert parse_meminfo(text) is None


def test_values_are_ints():
    total, available = parse_meminfo(MODERN)
    assert type(total) is int and type(available) is int
