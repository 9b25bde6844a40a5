"""/proc/diskstats: bytes read and written by whole disks."""

import os
import re
from dataclasses import dataclass

from cloudmon.agent.node._parse import counter, read_parsed

# Documentation/admin-guide/iostats.rst: diskstats sectors are always 512 bytes,
# whatever the device's logical block size.
SECTOR_BYTES = 512

# Not whole disks, or stacked on top of disks whose IO is already counted: ram, zram,
# loop and floppy devices, device-mapper, md RAID, ZFS zvol, DRBD and bcache devices,
# and partitions. A partition's name is its disk's name plus the number, with a "p"
# between when the disk's name ends in a digit (the kernel's disk_name()): sda1, vda1,
# xvda1, nvme0n1p1, mmcblk0p1, loop0p1, md0p1. Extends node_exporter's default pattern.
_NOT_WHOLE_DISK = re.compile(
    r"^(z?ram\d+|loop\d+|fd\d+|dm-\d+|md\d+|zd\d+|drbd\d+|bcache\d+"
    r"|(h|s|v|xv)d[a-z]+\d+|.*\dp\d+)$"
)

# major minor name, then reads completed, merged, sectors read, ms reading, writes
# completed, merged, sectors written, ms writing, in flight, io ms, weighted io ms: 11
# counters since 2.6 (partitions since 2.6.25), then 4 discard counters since 4.18 and
# 2 flush counters since 5.5.
_MIN_FIELDS = 3 + 11
_SECTORS_READ = 5
_SECTORS_WRITTEN = 9


@dataclass(frozen=True, slots=True)
class DiskStat:
    major: int
    minor: int
    name: str
    read_bytes: int
    write_bytes: int


def is_whole_disk(name: str) -> bool:
    """True for a physical whole disk, whose IO is counted once."""
    return _NOT_WHOLE_DISK.match(name) is None


def parse_diskstats(text: str) -> list[DiskStat]:
    """Every device line of /proc/diskstats (11, 15 or 17 counters); malformed lines are skipped."""
    disks = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < _MIN_FIELDS:
            continue
        try:
            disks.append(
                DiskStat(
                    counter(fields[0]),
                    counter(fields[1]),
                    fields[2],
                    counter(fields[_SECTORS_READ]) * SECTOR_BYTES,
                    counter(fields[_SECTORS_WRITTEN]) * SECTOR_BYTES,
                )
            )
        except ValueError:
            continue
    return disks


def read_diskstats(proc_root: str) -> list[DiskStat]:
    """Every device of <proc_root>/diskstats; empty when the file is missing or unreadable."""
    return read_parsed(os.path.join(proc_root, "diskstats"), parse_diskstats) or []


def whole_disk_traffic(disks: list[DiskStat]) -> tuple[int, int]:
    """(read, written) bytes summed over the whole disks."""
    read = written = 0
    for disk in disks:
        if is_whole_disk(disk.name):
            read += disk.read_bytes
            written += disk.write_bytes
    return read, written


def stacked_device_numbers(disks: list[DiskStat]) -> frozenset[str]:
    """'major:minor' of every device that is not a whole disk, for cgroup IO accounting."""
    return frozenset(f"{d.major}:{d.minor}" for d in disks if not is_whole_disk(d.name))
