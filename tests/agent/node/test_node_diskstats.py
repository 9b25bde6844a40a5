import pytest

from cloudmon.agent.node.diskstats import (
    SECTOR_BYTES,
    DiskStat,
    is_whole_disk,
    parse_diskstats,
    read_diskstats,
    stacked_device_numbers,
    whole_disk_traffic,
)

# 11 counters (2.6.25 - 4.17), 15 (4.18+: discards), 17 (5.5+: flushes).
ELEVEN = (
    "   8       0 sda 446216 784926 9550688 4382310 424847 312726 5922052 19310380 0 3376340"
    " 23705160"
)
FIFTEEN = ELEVEN + " 5 6 7 8"
SEVENTEEN = FIFTEEN + " 9 10"


@pytest.mark.parametrize("line", [ELEVEN, FIFTEEN, SEVENTEEN])
def test_sectors_for_each_kernel_variant(line):
    assert parse_diskstats(line + "\n") == [
        DiskStat(8, 0, "sda", 9550688 * SECTOR_BYTES, 5922052 * SECTOR_BYTES)
    ]


def test_sector_is_512_bytes():
    assert SECTOR_BYTES == 512


def test_old_partition_lines_with_four_counters_are_skipped():
    # Before 2.6.25 partitions had: reads, sectors read, writes, sectors written.
    text = f"{ELEVEN}\n   8       1 sda1 35486 38030 38030 38030\n"
    assert [d.name for d in parse_diskstats(text)] == ["sda"]


def test_malformed_lines_are_skipped():
    text = "\n".join(
        [
            "   8 0 sdb 1 2 x 4 5 6 7 8 9 10 11",
            "   8 0 sdc 1 2 -3 4 5 6 7 8 9 10 11",
            "   8 0 sdd 1 2 3",
            "   major minor name",
            SEVENTEEN,
        ]
    )
    assert [d.name for d in parse_diskstats(text)] == ["sda"]


@pytest.mark.parametrize(
    "name", ["sda", "sdaa", "vda", "xvdf", "hda", "nvme0n1", "nvme1n10", "mmcblk0", "sr0", "nbd0"]
)
def test_whole_disks(name):
    assert is_whole_disk(name)


@pytest.mark.parametrize(
    "name",
    [
        # partitions
        "sda1",
        "sdaa12",
        "vda1",
        "xvda1",
        "hda2",
        "nvme0n1p1",
        "mmcblk0p1",
        "loop0p1",
        "md0p1",
        # devices that are not disks, or stacked on disks
        "loop0",
        "loop12",
        "ram0",
        "zram0",
        "fd0",
        "dm-0",
        "dm-12",
        "md0",
        "md127",
        "zd0",
        "drbd1",
        "bcache0",
    ],
)
def test_partitions_and_stacked_devices_are_not_whole_disks(name):
    assert not is_whole_disk(name)


SAMPLE = """\
   8       0 sda 1 0 100 0 1 0 200 0 0 0 0 0 0 0 0 0 0
   8       1 sda1 1 0 90 0 1 0 180 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 1 0 1000 0 1 0 2000 0 0 0 0 0 0 0 0 0 0
 259       1 nvme0n1p1 1 0 1000 0 1 0 2000 0 0 0 0 0 0 0 0 0 0
 253       0 dm-0 1 0 5000 0 1 0 5000 0 0 0 0 0 0 0 0 0 0
   7       0 loop0 1 0 7000 0 1 0 0 0 0 0 0 0 0 0 0 0 0
 252       0 zram0 1 0 9000 0 1 0 9000 0 0 0 0 0 0 0 0 0 0
   9       0 md0 1 0 3000 0 1 0 3000 0 0 0 0 0 0 0 0 0 0
"""


def test_whole_disk_traffic_counts_each_byte_once():
    assert whole_disk_traffic(parse_diskstats(SAMPLE)) == (1100 * 512, 2200 * 512)


def test_stacked_device_numbers():
    assert stacked_device_numbers(parse_diskstats(SAMPLE)) == {
        "8:1",
        "259:1",
        "253:0",
        "7:0",
        "252:0",
        "9:0",
    }


def test_read_through_the_proc_root(tmp_path, write_tree):
    root = write_tree(tmp_path, {"diskstats": SAMPLE})
    assert len(read_diskstats(root)) == 8
    assert read_diskstats(str(tmp_path / "nowhere")) == []
