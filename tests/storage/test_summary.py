"""A period's rollups computed for many entities at once equal, to the bit, those computed
value by value (`base.stats_of`, `base.merged_stats`)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmon.storage.base import merged_stats, stats_of
from cloudmon.storage.sqlite import summary
from cloudmon.storage.sqlite.codec import pack, pack_stats, unpack_stats

VALUE = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(0, 1 << 40).map(float),
    st.sampled_from([0.0, -0.0, 0.1, 4096.0]),
)


@st.composite
def entities(draw, depth: int):
    """Rows of up to `depth` values of each column, per entity."""
    width = draw(st.integers(1, 12))
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
