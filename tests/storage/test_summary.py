"""A period's rollups, and series, computed for many entities at once equal, to the bit, those
computed value by value (`base.stats_of`, `base.merged_stats`, `base.fold`)."""

import math
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmon.storage.base import Span, fold, merged_stats, stats_of
from cloudmon.storage.model import GROUP_SUM, EntityKind, columns
from cloudmon.storage.sqlite import summary
from cloudmon.storage.sqlite.codec import pack, pack_stats, pack_sum, row_values, unpack_stats

VALUE = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(0, 1 << 40).map(float),
    st.sampled_from([0.0, -0.0, 0.1, 4096.0]),
)


T0 = 1_700_000_000  # steps start at multiples of their length, not here


@st.composite
def entities(draw, depth: int):
    """Rows of up to `depth` values of each column, per entity."""
    # Up to 12 columns, or past 31: rows whose header is wide (`codec.header`).
    width = draw(st.one_of(st.integers(1, 12), st.integers(30, 40)))
    rows = draw(
        st.dictionaries(
            st.integers(0, 1 << 20),
            st.lists(st.lists(VALUE, min_size=width, max_size=width), min_size=1, max_size=depth),
            min_size=1,
            max_size=8,
        )
    )
    return width, rows


def summarised(rows: list[list], width: int) -> bytes:
    return pack_stats([stats_of(column) for column in zip(*rows, strict=True)])


@settings(max_examples=300)
@given(entities(6))
def test_rows_summarised_at_once_are_summarised_value_by_value(found):
    width, rows = found
    packed = {eid: [pack(values) for values in each] for eid, each in rows.items()}
    expected = {eid: summarised(each, width) for eid, each in rows.items()}
    assert summary.of_rows(packed, width) == expected


@settings(max_examples=200)
@given(entities(6), st.lists(st.integers(1, 6), min_size=1, max_size=60))
def test_rollups_merged_at_once_are_merged_period_by_period(found, periods):
    width, rows = found
    # Each entity's finer periods: its rows, in runs of the drawn lengths.
    finer = {}
    for eid, each in rows.items():
        runs, at = [], 0
        for length in periods:
            run = (each * 60)[at : at + length]
            at += length
            if any(v is not None for values in run for v in values):
                runs.append(summarised(run, width))
        finer[eid] = runs or [summarised(each, width)]
    expected = {
        eid: pack_stats(
            [merged_stats(c) for c in zip(*(unpack_stats(b, width) for b in blobs), strict=True)]
        )
        for eid, blobs in finer.items()
    }
    assert summary.of_rollups(finer, width) == expected


ROWS = st.dictionaries(
    st.integers(0, 40),  # bucket, in tens of seconds
    st.lists(VALUE, min_size=2, max_size=2),
    max_size=30,
)


@settings(max_examples=300)
@given(
    st.lists(ROWS, min_size=1, max_size=4),
    st.sampled_from(["avg", "sum", "min", "max", "last"]),
    st.sampled_from([10, 20, 60, 120]),
)
def test_series_folded_at_once_are_folded_as_base_folds_them(entities, agg, step):
    span = Span(T0, T0 + 400, step, agg)
    steps = span.steps()
    places, values = [], []
    for e, rows in enumerate(entities):
        for bucket, row in sorted(rows.items()):
            places.append(e * len(steps) + (T0 + 10 * bucket - steps.start) // step)
            values.append(row)
    values = np.array(values, dtype=float).reshape(len(values), 2)
    folded = summary.fold(
        np.array(places, dtype=int), values, (~np.isnan(values)).astype(float), agg,
        len(entities) * len(steps),
    )  # fmt: skip
    for e, rows in enumerate(entities):
        expected = fold([(T0 + 10 * bucket, row) for bucket, row in rows.items()], ("a", "b"), span)
        got = folded[e * len(steps) : (e + 1) * len(steps)].T.tolist()
        for name, column in zip(("a", "b"), got, strict=True):
            assert [None if v != v else v for v in column] == expected[name]


@st.composite
def group_vectors(draw, layout):
    """`GroupSum` vectors of members: some without a value in a column, some sums past 2**53."""
    members = draw(st.integers(0, 5))
    big = draw(st.booleans())
    sums = st.integers(-(1 << 60), 1 << 60) if big else st.integers(0, 10**13)
    vector = [draw(sums) for _ in layout.summed]
    counts = [draw(st.integers(0, members)) for _ in layout.summed]
    return [*vector, *counts, members]


@settings(max_examples=200)
@given(st.data())
def test_group_rows_answer_at_once_as_one_by_one(data):
    kind = data.draw(st.sampled_from(list(GROUP_SUM)))
    vectors = data.draw(st.lists(group_vectors(GROUP_SUM[kind]), max_size=20))
    assert_answered_as_one_by_one(kind, [pack_sum(vector) for vector in vectors])


def test_group_sums_past_2_53_are_divided_as_python_divides_them():
    layout = GROUP_SUM[EntityKind.NAMESPACE]
    # as a double first, then divided by 10**9, this sum of nanocores ends a bit lower
    vector = [665254580340503029] * len(layout.summed) + [1] * len(layout.summed) + [1]
    assert_answered_as_one_by_one(EntityKind.NAMESPACE, [pack_sum(vector)])


def assert_answered_as_one_by_one(kind, blobs):
    expected = [[math.nan if v is None else float(v) for v in row_values(kind, b)] for b in blobs]
    found = summary.group_values(kind, blobs)
    assert found.shape == (len(blobs), len(columns(kind)))
    assert [struct.pack(f"<{len(row)}d", *row) for row in found.tolist()] == [
        struct.pack(f"<{len(row)}d", *row) for row in expected
    ]
