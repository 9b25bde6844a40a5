"""/proc/vmstat: the processes the kernel's OOM killer has killed since boot."""

import os
from typing import NamedTuple

from cloudmon.agent.cgroups.parse import keyed_uint
from cloudmon.agent.node._parse import read_parsed


class VmStat(NamedTuple):
    oom_kills: int | None  # None before Linux 4.13, which added the oom_kill line


def parse_vmstat(text: str) -> VmStat | None:
    """The figures cloudmon takes from vmstat's "name value" lines; None when the text is
    not such lines."""
    first = text.split("\n", 1)[0].split()
    if len(first) != 2 or not first[1].isdigit():
        return None
    return VmStat(keyed_uint(text, "oom_kill"))


def read_vmstat(proc_root: str) -> VmStat | None:
    """<proc_root>/vmstat, parsed."""
    return read_parsed(os.path.join(proc_root, "vmstat"), parse_vmstat)
