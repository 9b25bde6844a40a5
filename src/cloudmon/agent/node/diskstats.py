"""/proc/diskstats: bytes read and written by whole disks."""

import re
from dataclasses import dataclass

# Documentation/admin-guide/iostats.rst: diskstats sectors are always 512 bytes,
# whatever the device's logical block size.
SECTOR_BYTES = 512

# Not whole disks, or stacked on top of disks whose IO is already counted: ram, zram,
# loop and floppy devices, device-mapper and md RAID devices, and partitions
# (sda1, vda1, xvda1, nvme0n1p1, mmcblk0p1). Extends node_exporter's default pattern.
_NOT_WHOLE_DISK = re.compile(
    r"^(z?ram\d+|loop\d+|fd\d+|dm-\d+|md\d+|(h|s|v|xv)d[a-z]+\d+|(nvme\d+n\d+|mmcblk\d+)p\d+)$"
)


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
        # major minor name, then reads completed, merged, sectors read, ms, writes
        # completed, merged, sectors written, ...: at least 11 counters since 2.6.
        if len(fields) < 14:
            continue
        try:
            disks.append(
                DiskStat(
                    int(fields[0]),
                    int(fields[1]),
                    fields[2],
                    int(fields[5]) * SECTOR_BYTES,
                    int(fields[9]) * SECTOR_BYTES,
                )
            )
        except ValueError:
            continue
    return disks


def stacked_device_numbers(disks: list[DiskStat]) -> frozenset[str]:
    """'major:minor' of every device that is not a whole disk, for cgroup IO accounting."""
    return frozenset(f"{d.major}:{d.minor}" for d in disks if not is_whole_disk(d.name))
