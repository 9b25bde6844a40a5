"""/proc/loadavg: the 1, 5 and 15 minute load averages."""

import os
import re

from cloudmon.agent.node._parse import read_parsed

# The kernel prints each average as "%lu.%02lu" of a fixed-point unsigned long with 11
# fractional bits (include/linux/sched/loadavg.h, FSHIFT), so the integer part is below 2**53.
_LOAD = re.compile(r"\d{1,16}(\.\d{1,16})?")
_LOAD_MAX = 2**53


def _load(field: str) -> float | None:
    if not field.isascii() or _LOAD.fullmatch(field) is None:
        return None
    value = float(field)
    return value if value < _LOAD_MAX else None


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    """(load1, load5, load15); None when the first three fields are not load averages."""
    # "load1 load5 load15 running/total last_pid": the fourth field shows that the third
    # one was not cut short.
    fields = text.split(maxsplit=4)
    if len(fields) < 4:
        return None
    load1, load5, load15 = (_load(field) for field in fields[:3])
    if load1 is None or load5 is None or load15 is None:
        return None
    return load1, load5, load15


def read_loadavg(proc_root: str) -> tuple[float, float, float] | None:
    """<proc_root>/loadavg, parsed."""
    return read_parsed(os.path.join(proc_root, "loadavg"), parse_loadavg)
