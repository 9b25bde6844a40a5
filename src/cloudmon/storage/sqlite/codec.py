"""The row codec: how one entity's bucket or period is packed into a row's BLOB and read back.

A node's, pod's or container's 10 s row (`pack`, `unpack`) is a mask of the columns present
(bit i: the i-th of the kind's stored columns, `model.STORED_COLUMNS`; `header`) followed by
those values as little-endian doubles; a group's 10 s row (`pack_sum`, `unpack_sum`) is the
integers of its `model.GroupSum` vector; a rollup row (`pack_stats`, `unpack_stats`,
`unpack_figures`) holds the `STATS` of each present column instead. A node's row also lists
its pods' ids (`pack_ids`). Pure functions of bytes and values: `writer` and `sums` pack,
`reader`, `sums` and `upkeep` unpack.
"""

import json
import struct
from collections.abc import Sequence

from cloudmon.storage.base import STATS
from cloudmon.storage.model import GROUP_SUM, STORED_COLUMNS, EntityKind, derive

# A row's header, layout 2: a 32-bit mask of its present columns; in a kind of more than
# NARROW columns bit 31 is set and the mask's bits from 31 on follow in a 64-bit word (which
# keeps the values on 8-byte words for the chunks). Layout 1 was the 32-bit mask alone, with
# at most 31 columns in use: its rows read the same.
_MASK = struct.Struct("<I")
_HIGH = struct.Struct("<Q")
_WIDE = 1 << 31
NARROW = 31
WIDEST = 64  # the most columns a kind may have: `summary.packed` makes masks of 64-bit words
# A group's vector is a tag byte and its integers: little-endian int64 (tag 0), or, where one
# lies beyond them, JSON (tag 1).
_INT64, _JSON = b"\0", b"\1"
_STRUCTS: dict[int, struct.Struct] = {}


def _doubles(count: int) -> struct.Struct:
    """The layout of `count` values."""
    packer = _STRUCTS.get(count)
    if packer is None:
        packer = _STRUCTS[count] = struct.Struct(f"<{count}d")
    return packer


def header(mask: int, width: int) -> bytes:
    """The header of a row of a kind of `width` columns whose present columns are `mask`."""
    if width <= NARROW:
        return _MASK.pack(mask)
    return _MASK.pack(mask & (_WIDE - 1) | _WIDE) + _HIGH.pack(mask >> NARROW)


def read_header(blob: bytes) -> tuple[int, int]:
    """A packed row's mask and where its values start."""
    (low,) = _MASK.unpack_from(blob)
    if not low & _WIDE:
        return low, _MASK.size
    return low & (_WIDE - 1) | _HIGH.unpack_from(blob, _MASK.size)[0] << NARROW, 12


def _values(blob: bytes) -> tuple[int, tuple]:
    """A packed row's mask and values."""
    mask, at = read_header(blob)
    return mask, _doubles((len(blob) - at) // 8).unpack_from(blob, at)


def pack(values: Sequence) -> bytes:
    """A row's values (None for missing) as mask + present doubles."""
    width = len(values)
    if None not in values:
        return header((1 << width) - 1, width) + _doubles(width).pack(*values)
    mask = 0
    present = []
    for i, value in enumerate(values):
        if value is not None:
            mask |= 1 << i
            present.append(value)
    return header(mask, width) + _doubles(len(present)).pack(*present)


def prefix(columns: int, each: int, width: int) -> int:
    """The bytes of a packed row of a kind of `width` columns (`pack`: each 1; `pack_stats`:
    each len(STATS)) that hold all it has of its first `columns` columns."""
    return len(header(0, width)) + 8 * each * columns


def stored_values(blob: bytes) -> int:
    """How many values a packed row holds."""
    return (len(blob) - read_header(blob)[1]) // 8


def unpack(blob: bytes, width: int) -> list:
    """The values of a packed row, None where missing."""
    mask, values = _values(blob)
    present = iter(values)
    return [next(present) if mask >> i & 1 else None for i in range(width)]


def pack_sum(vector: Sequence[int]) -> bytes:
    """A group's `model.GroupSum` vector as its 10 s row."""
    try:
        return _INT64 + struct.pack(f"<{len(vector)}q", *vector)
    except struct.error:
        return _JSON + json.dumps(vector).encode()


def unpack_sum(blob: bytes) -> list[int]:
    """The vector `pack_sum` packed."""
    if blob[:1] == _INT64:
        return list(struct.unpack_from(f"<{(len(blob) - 1) // 8}q", blob, 1))
    return json.loads(blob[1:])


def row_values(kind: EntityKind, blob: bytes) -> list:
    """The values an entity of this kind answers with, from its packed 10 s row."""
    if kind in GROUP_SUM:
        return derive(kind, GROUP_SUM[kind].answer(unpack_sum(blob)))
    return derive(kind, unpack(blob, len(STORED_COLUMNS[kind])))


def pack_stats(values: Sequence) -> bytes:
    """A rollup row: mask + the STATS of each present column."""
    mask = 0
    present = []
    for i, stats in enumerate(values):
        if stats is not None:
            mask |= 1 << i
            present += stats
    return header(mask, len(values)) + _doubles(len(present)).pack(*present)


def unpack_stats(blob: bytes, width: int) -> list:
    """The STATS tuples of a rollup row, None where missing."""
    mask, flat = _values(blob)
    out: list = [None] * width
    at = 0
    for i in range(width):
        if mask >> i & 1:
            out[i] = flat[at : at + len(STATS)]
            at += len(STATS)
    return out


def unpack_figures(blob: bytes, width: int, figures: Sequence[int]) -> list:
    """Per figure (a position in STATS), its values in a rollup row; None where missing."""
    mask, values = _values(blob)
    flat = list(values)
    if len(flat) == width * len(STATS):
        return [flat[figure :: len(STATS)] for figure in figures]
    found = []
    for figure in figures:
        present = flat[figure :: len(STATS)]
        if len(present) == width:
            found.append(present)
        else:
            values = iter(present)
            found.append([next(values) if mask >> i & 1 else None for i in range(width)])
    return found


def pack_ids(ids: Sequence[int]) -> bytes:
    """Entity ids (a node's pods) as a BLOB."""
    return struct.pack(f"<{len(ids)}I", *ids)


def unpack_ids(blob: bytes) -> tuple[int, ...]:
    """The ids `pack_ids` packed."""
    return struct.unpack(f"<{len(blob) // 4}I", blob)
