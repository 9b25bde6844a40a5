"""How the server's processes take memory from the C library.

glibc serves a large allocation (an answer's JSON, a list of a thousand pods' rows) from
mmap and gives it back when freed, but after the first such free it raises that threshold
(up to 32 MiB), so that the next ones come from the heap, where freed memory stays with the
process for as long as anything lies above it. A worker answering lists of a large cluster
then keeps the largest answers' memory for good: about 150 MiB a worker in the soak (200
nodes x 50 pods). Fixed thresholds keep the large allocations in mmap and give the heap's
free top back. Each thread that allocates (the upkeep's, a worker's) would also get an arena
of its own, whose freed memory glibc keeps: two arenas serve all threads.

Python's cycle collector runs once 700 more container objects (lists, tuples, dicts) are
alive than at its last run. Ingest makes thousands a request that die with it: at that
threshold a worker collected about ten times a request, its full collections walking the
writer's caches of every pod, some 10 % of its CPU while agents drained a backlog. The
server's objects make few cycles, and those few wait for a higher threshold.
"""

import ctypes
import ctypes.util
import gc

_M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 256 << 10  # bytes from which an allocation is its own mapping
TRIM_THRESHOLD = 1 << 20  # free bytes at the heap's top given back to the system
COLLECT_AFTER = 10_000  # container objects more than at the last collection, before the next


def give_back_large_allocations() -> bool:
    """Set glibc's thresholds for this process and those it forks; False where the C library
    is not glibc (it has no mallopt, or refuses the setting)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_ARENA_MAX, ARENAS),
    )
    return all(mallopt(parameter, value) for parameter, value in settings)


def collect_cycles_less_often() -> None:
    """Raise the cycle collector's first threshold, for this process and those it forks."""
    gc.set_threshold(COLLECT_AFTER, *gc.get_threshold()[1:])
