"""Usage sketches (`storage.usage.Days`): quantiles within their accuracy of numpy's over the
same values, days that add up as their values together, and BLOBs that read back whole."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cloudmon.storage.usage import ACCURACY, COUNTERS, METRICS, Days

QS = (0.0, 0.5, 0.95, 0.99, 1.0)

values = hnp.arrays(
    np.float64,
    st.integers(1, 400),
    elements=st.one_of(
        st.just(0.0),
        st.floats(1e-6, 1e3, allow_nan=False),
        st.floats(4096, 2.0**40, allow_nan=False),
    ),
)


def sketch(rows: list[np.ndarray], cpu=True, hours=1) -> Days:
    """Rows of values as the CPU (or the memory) of a sketch, no counters."""
    row = np.concatenate([np.full(len(v), at) for at, v in enumerate(rows)])
    flat = np.concatenate(rows)
    minutes = np.full((len(flat), len(METRICS)), np.nan)
    minutes[:, 0 if cpu else 1] = flat
    counters = np.full((len(flat), len(COUNTERS), 2), np.nan)
    return Days.of_minutes(row, minutes, counters, len(rows), hours)


def assert_within(answered: np.ndarray, truth: np.ndarray) -> None:
    for found, expected in zip(answered, truth, strict=True):
        if expected == 0:
            assert found == 0
        else:
            assert abs(found - expected) <= ACCURACY * expected * (1 + 1e-9), (found, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.booleans())
def test_quantiles_lie_within_the_accuracy_of_numpy(rows, cpu):
    days = sketch(rows, cpu)
    metric = 0 if cpu else 1
    answered = days.quantiles(metric, QS)
    for at, values_of_row in enumerate(rows):
        assert_within(
            answered[at], np.percentile(values_of_row, np.array(QS) * 100, method="lower")
        )
        assert days.maxima[at, metric] == values_of_row.max()
        assert days.points(metric)[at] == len(values_of_row)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=2, max_size=6), st.data())
def test_days_add_up_as_their_values_together(rows, data):
    into = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(rows), max_size=len(rows))))
    summed = sketch(rows, hours=3).summed(into, 2)
    for target in (0, 1):
        mine = [row for row, at in zip(rows, into, strict=True) if at == target]
        if not mine:
            assert summed.points(0)[target] == 0
            assert np.isnan(summed.quantiles(0, QS)[target]).all()
            continue
        together = sketch([np.concatenate(mine)])
        assert summed.quantiles(0, QS)[target].tolist() == together.quantiles(0, QS)[0].tolist()
        assert summed.maxima[target, 0] == together.maxima[0, 0]
        assert summed.hours[target] == 3


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=4))
def test_blobs_read_back_whole(rows):
    days = sketch(rows).joined(sketch(rows, cpu=False))
    back = Days.unpack(days.pack(), days.hours)
    for name in ("rows", "metric", "key", "count", "hours"):
        assert getattr(back, name).tolist() == getattr(days, name).tolist(), name
    np.testing.assert_array_equal(back.maxima, days.maxima)
    np.testing.assert_array_equal(back.counters, days.counters)


def test_counters_grow_from_the_lowest_to_the_highest_minute():
    minutes = np.array([[0.1, 4096.0]] * 4)
    counters = np.full((4, len(COUNTERS), 2), np.nan)
    periods = COUNTERS.index("cpu_periods_total")
    counters[:, periods] = [[100, 110], [110, 120], [0, 5], [5, 15]]  # rows 0-1, 2-3
    days = Days.of_minutes(np.array([0, 0, 1, 1]), minutes, counters, 2, 1)
    assert days.increases()[:, periods].tolist() == [20, 15]
    assert np.isnan(days.increases()[:, COUNTERS.index("restarts_total")]).all()
    assert days.summed(np.array([0, 0]), 1).increases()[0, periods] == 120


def test_missing_minutes_count_for_nothing():
    minutes = np.array([[0.5, np.nan], [np.nan, 8192.0], [0.25, np.nan]])
    counters = np.full((3, len(COUNTERS), 2), np.nan)
    days = Days.of_minutes(np.zeros(3, np.int64), minutes, counters, 1, 1)
    assert days.points(0).tolist() == [2] and days.points(1).tolist() == [1]
    assert days.maxima.tolist() == [[0.5, 8192.0]]


def test_a_row_without_values_has_no_quantiles():
    days = sketch([np.array([0.2]), np.array([0.3])]).taken([1])
    assert days.quantiles(0, (0.5,))[0, 0] == pytest.approx(0.3, rel=ACCURACY)
    empty = Days.of_minutes(
        np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, len(COUNTERS), 2)), 1, 0
    )
    assert np.isnan(empty.quantiles(0, QS)).all() and np.isnan(empty.maxima).all()
