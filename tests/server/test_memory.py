"""The server's processes give large freed allocations back to the system (glibc)."""

import subprocess
import sys
import textwrap

import pytest

from cloudmon.server import memory

# A worker's life in small: a large answer freed (glibc raises its threshold past it), then
# many large allocations, each with a small one after it that stays, then the large ones freed.
PROGRAM = textwrap.dedent(
    """
    import sys
    from cloudmon.server import memory
    if sys.argv[1] == "fixed":
        assert memory.give_back_large_allocations()
    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    bytearray(1 << 20)
    large, small = [], []
    for _ in range(200):
        large.append(bytearray(1 << 20))
        small.append(bytearray(2048))
    before = rss()
    large.clear()
    print(before - rss())
    """
)


def _given_back(mode: str) -> int:
    answer = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return int(answer.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_large_allocations_are_given_back_once_freed():
    if not memory.give_back_large_allocations():
        pytest.skip("the C library is not glibc: it has no mallopt")
    # glibc's own thresholds keep the freed 200 MiB in the heap; the fixed ones give it back.
    assert _given_back("dynamic") < 20 << 20
    assert _given_back("fixed") > 180 << 20
