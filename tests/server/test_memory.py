"""The server's processes give large freed allocations back to the system, their threads
share two arenas (glibc), and a request's objects do not set off the cycle collector."""

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


# Threads allocating at once, then the arenas glibc made for them counted (malloc_info's XML).
ARENAS = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, tempfile, threading
    from cloudmon.server import memory
    if sys.argv[1] == "fixed":
        assert memory.give_back_large_allocations()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    together = threading.Barrier(8)
    def allocate():
        together.wait()
        kept = [bytearray(100_000) for _ in range(200)]
        together.wait()
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with tempfile.NamedTemporaryFile("r") as info:
        out = libc.fopen(info.name.encode(), b"w")
        libc.malloc_info(0, out)
        libc.fclose(out)
        print(info.read().count("<heap nr="))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_info")
def test_threads_share_two_arenas():
    if not memory.give_back_large_allocations():
        pytest.skip("the C library is not glibc: it has no mallopt")

    def arenas(mode: str) -> int:
        answer = subprocess.run(
            [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, check=True
        )
        return int(answer.stdout)

    assert arenas("dynamic") > memory.ARENAS  # an arena a thread, up to 8 a core
    assert arenas("fixed") == memory.ARENAS


# A request's container objects, alive until it is answered, in a process forked as gunicorn
# forks its workers; prints the collections they set off.
COLLECTIONS = textwrap.dedent(
    """
    import gc, os, sys
    from cloudmon.server import memory
    if sys.argv[1] == "fixed":
        memory.collect_cycles_less_often()
    if os.fork() == 0:
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
        kept = [[n] for n in range(5000)]
        os._exit(len(collections))
    print(os.waitstatus_to_exitcode(os.wait()[1]))
    """
)


def test_a_request_s_objects_set_off_no_collection():
    def collections(mode: str) -> int:
        answer = subprocess.run(
            [sys.executable, "-c", COLLECTIONS, mode], capture_output=True, text=True, check=True
        )
        return int(answer.stdout)

    assert collections("default") >= 5  # one each 700 objects
    assert collections("fixed") == 0
