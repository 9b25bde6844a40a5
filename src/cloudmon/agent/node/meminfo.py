"""/proc/meminfo: total and available memory."""

import os

from cloudmon.agent.node._parse import counter, read_parsed

# meminfo's "kB" means KiB (fs/proc/meminfo.c shifts pages by PAGE_SHIFT - 10).
_KIB = 1024


def _kib_field(line: str) -> int | None:
    fields = line.split()
    if len(fields) != 3 or fields[2] != "kB":
        return None
    try:
        return counter(fields[1]) * _KIB
    except ValueError:
        return None


def parse_meminfo(text: str) -> tuple[int | None, int | None] | None:
    """(MemTotal, MemAvailable) in bytes, each None when absent; None when neither is found.

    MemAvailable exists since kernel 3.14; before it the field is None, not an estimate.
    """
    total = available = None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            total = _kib_field(line)
        elif line.startswith("MemAvailable:"):
            available = _kib_field(line)
        else:
            continue
        if total is not None and available is not None:
            break
    if total is None and available is None:
        return None
    return total, available


def read_meminfo(proc_root: str) -> tuple[int | None, int | None] | None:
    """<proc_root>/meminfo, parsed."""
    return read_parsed(os.path.join(proc_root, "meminfo"), parse_meminfo)
