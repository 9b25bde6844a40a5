"""Sizes as people write them (500MiB, 8GiB): the units of Prometheus's
`--storage.tsdb.retention.size`, for the command line's options, free of the server."""

import re

# Prometheus parses sizes as powers of 2 (alecthomas/units' Base2Bytes): 1KB is 1024 B, as
# is 1KiB; both spellings are accepted, meaning the same.
UNITS = {
    "B": 1,
    "KB": 1 << 10,
    "MB": 1 << 20,
    "GB": 1 << 30,
    "TB": 1 << 40,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}
SMALLEST = 1 << 20  # bytes: less does not hold a store's tables and one minute of samples
_SIZE = re.compile(r"^([0-9]{1,15}(?:\.[0-9]{1,6})?)\s*([A-Za-z]+)$")


def parse_size(text: str) -> int:
    """Bytes of a size such as 500MiB or 8GB; raises ValueError saying what is wrong."""
    match = _SIZE.match(text.strip())
    if not match or match[2].upper() not in UNITS:
        raise ValueError(
            f"{text!r} is not a size such as 500MiB or 8GiB (units: B, KB, MB, GB, TB, "
            "KiB, MiB, GiB, TiB, all powers of 1024)"
        )
    size = int(float(match[1]) * UNITS[match[2].upper()])
    if size < SMALLEST:
        raise ValueError(f"{text!r} is less than 1MiB, too small for a store")
    return size


def format_size(size: float) -> str:
    """A size in its largest unit of at least one: 8.0 GiB, 40.0 MiB, 512 B."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if abs(size) >= UNITS[unit.upper()]:
            return f"{size / UNITS[unit.upper()]:.1f} {unit}"
    return f"{size:.0f} B"
