"""The row header, pinned: a kind of at most 31 columns keeps layout 1 (a 32-bit mask), a
wider one sets bit 31 and carries the rest of its mask in a 64-bit word."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from cloudmon.storage.base import STATS
from cloudmon.storage.sqlite.codec import (
    NARROW,
    WIDEST,
    pack,
    pack_stats,
    prefix,
    read_header,
    stored_values,
    unpack,
    unpack_figures,
    unpack_stats,
)

VALUE = st.one_of(st.none(), st.floats(allow_nan=False, width=64))


def test_a_narrow_row_is_layout_1():
    assert pack([1.5, None, 2.0]) == struct.pack("<I2d", 0b101, 1.5, 2.0)
    assert pack([0.0] * NARROW)[:4] == struct.pack("<I", (1 << NARROW) - 1)


def test_a_wide_row_carries_its_mask_past_bit_31_in_a_word():
    values = [None] * 40
    values[0], values[31], values[39] = 1.0, 2.0, 3.0
    blob = pack(values)
    assert blob == struct.pack("<IQ3d", 1 | 1 << 31, 1 | 1 << 8, 1.0, 2.0, 3.0)
    assert read_header(blob) == (1 | 1 << 31 | 1 << 39, 12)
    # The values stay on 8-byte words after the 4-byte header the chunks set apart.
    assert (len(blob) - 4) % 8 == 0


@given(st.integers(1, WIDEST).flatmap(lambda n: st.lists(VALUE, min_size=n, max_size=n)))
def test_rows_of_any_width_read_back(values):
    width = len(values)
    blob = pack(values)
    assert unpack(blob, width) == values
    assert stored_values(blob) == sum(v is not None for v in values)
    stats = [None if v is None else (v, 1.0, v, v, v) for v in values]
    rolled = pack_stats(stats)
    assert unpack_stats(rolled, width) == stats
    assert unpack_figures(rolled, width, [0, 4]) == [
        [None if s is None else s[0] for s in stats],
        [None if s is None else s[4] for s in stats],
    ]
    # The prefix of a row holds all it has of its first columns.
    for columns in {1, width // 2 or 1, width}:
        cut = unpack_stats(rolled[: prefix(columns, len(STATS), width)], width)
        assert cut[:columns] == stats[:columns]
