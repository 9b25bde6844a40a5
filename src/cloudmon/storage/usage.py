"""Usage sketches: how a pod's or container's CPU and memory were spread over each day, kept
small enough that right-sizing reads a week of every pod of a large cluster at once.

Per entity and UTC day, from its 1 min rollups (the upkeep adds each hour as it rolls the
hour up), a `Days` row keeps:

- the 1 min averages of its CPU (`cpu_cores`) and the 1 min maxima of its working set
  (`memory_working_set_bytes`), each as counts in log-spaced buckets, as DDSketch keeps them
  (Masson, Rim and Lee, VLDB 2019): a value x counts in key ceil(log_γ x), γ = (1 + α) /
  (1 − α), and the bucket's value 2γ^k / (γ + 1) lies within α of every value in it, so that
  a quantile answered from the counts is within ACCURACY of the value at its rank. Values
  up to SMALLEST (an idle container's 0) count in a bucket of their own, answered as 0;
- the largest of each, exactly;
- the lowest and highest value of the counters right-sizing reads as increases over a
  window (`COUNTERS`: CFS periods and throttled periods, OOM kills, restarts), which, as
  counters only grow, are the first and last of the day.

Days add up: the counts of each key, the larger maximum, the lower low, the higher high. A
window's sketch is the sum of its days', and `quantiles` answers a percentile of many
entities' sums at once. The sketch is DDSketch's mapping with numpy, rather than the
`ddsketch` package, because that package adds values and merges sketches one at a time in
Python: a week of 10,000 pods is 70,000 day sketches to merge per question.
"""

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ACCURACY = 0.01  # relative: a quantile's value lies within 1 % of the value at its rank
SMALLEST = 1e-9  # values up to this count as zero
ZERO_KEY = -(2**15)
_LOG_GAMMA = math.log((1 + ACCURACY) / (1 - ACCURACY))
METRICS = ("cpu_cores", "memory_working_set_bytes")  # sketched: 1 min averages, 1 min maxima
COUNTERS = (
    "cpu_periods_total",
    "cpu_throttled_periods_total",
    "memory_oom_kills_total",
    "restarts_total",
)
_HEAD = struct.Struct("<HH2d8d")  # records of each metric, maxima, counters' (low, high)
_RECORD = np.dtype([("key", "<i2"), ("count", "<u2")])  # a day has 1,440 minutes: u2 holds them


def keys(values: np.ndarray) -> np.ndarray:
    """The bucket key of each value (NaN: left out by the caller)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        found = np.ceil(np.log(values) / _LOG_GAMMA)
    return np.where(values > SMALLEST, found, ZERO_KEY).astype(np.int64)


def value_of(found: np.ndarray) -> np.ndarray:
    """The value each key answers: its bucket's middle, within ACCURACY of all it holds."""
    middle = 2 * np.exp(found * _LOG_GAMMA) / (1 + math.exp(_LOG_GAMMA))
    return np.where(found == ZERO_KEY, 0.0, middle)


@dataclass
class Days:
    """Sketches of `len(hours)` entity-days (or of entities over windows), as columns:
    `records` the (row, metric, key) of each counted bucket with its count, sorted and
    unique; per row `maxima` (row, metric; NaN: none), `counters` (row, counter, low/high;
    NaN: none) and `hours`, the hours of the day it holds (a bit each)."""

    rows: np.ndarray  # of each record
    metric: np.ndarray
    key: np.ndarray
    count: np.ndarray
    maxima: np.ndarray
    counters: np.ndarray
    hours: np.ndarray

    @property
    def size(self) -> int:
        return len(self.hours)

    @classmethod
    def of_minutes(
        cls, row: np.ndarray, minutes: np.ndarray, counters: np.ndarray, size: int, hours
    ) -> "Days":
        """The sketches of `size` rows from their 1 min figures: `row` each minute's row,
        `minutes` (minute, metric) its CPU average and working set maximum (NaN: none),
        `counters` (minute, counter, low/high) its counters' lowest and highest."""
        metric = np.broadcast_to(np.arange(len(METRICS)), minutes.shape)
        rows = np.broadcast_to(row[:, None], minutes.shape)
        present = ~np.isnan(minutes)
        maxima = np.full((size, len(METRICS)), -np.inf)
        np.maximum.at(maxima, (rows[present], metric[present]), minutes[present])
        low = np.full((size, len(COUNTERS)), np.inf)
        high = np.full((size, len(COUNTERS)), -np.inf)
        np.fmin.at(low, row, counters[..., 0])
        np.fmax.at(high, row, counters[..., 1])
        return cls._combined(
            rows[present],
            metric[present],
            keys(minutes[present]),
            np.ones(int(present.sum()), np.int64),
            _none_for_infinite(maxima),
            _none_for_infinite(np.stack([low, high], axis=-1)),
            np.asarray(hours, np.int64) + np.zeros(size, np.int64),
        )

    @classmethod
    def _combined(cls, rows, metric, key, count, maxima, counters, hours) -> "Days":
        """Records of the same (row, metric, key) added up, in that order."""
        where = (rows.astype(np.int64) * len(METRICS) + metric) << 16 | (key - ZERO_KEY)
        unique, inverse = np.unique(where, return_inverse=True)
        counts = np.bincount(inverse, weights=count, minlength=len(unique)).astype(np.int64)
        row_metric = unique >> 16
        return cls(
            row_metric // len(METRICS),
            row_metric % len(METRICS),
            (unique & 0xFFFF) + ZERO_KEY,
            counts,
            maxima,
            counters,
            hours,
        )

    def summed(self, into: np.ndarray, size: int) -> "Days":
        """These rows added up into `size` rows: row i into `into[i]`."""
        maxima = np.full((size, len(METRICS)), np.nan)
        np.fmax.at(maxima, into, self.maxima)
        counters = np.full((size, len(COUNTERS), 2), np.nan)
        np.fmin.at(counters[..., 0], into, self.counters[..., 0])
        np.fmax.at(counters[..., 1], into, self.counters[..., 1])
        hours = np.zeros(size, np.int64)
        np.bitwise_or.at(hours, into, self.hours)
        rows = np.asarray(into, np.int64)[self.rows]
        return Days._combined(rows, self.metric, self.key, self.count, maxima, counters, hours)

    def joined(self, other: "Days") -> "Days":
        """These rows then `other`'s."""
        return Days(
            np.concatenate([self.rows, other.rows + self.size]),
            np.concatenate([self.metric, other.metric]),
            np.concatenate([self.key, other.key]),
            np.concatenate([self.count, other.count]),
            np.concatenate([self.maxima, other.maxima]),
            np.concatenate([self.counters, other.counters]),
            np.concatenate([self.hours, other.hours]),
        )

    def taken(self, picked: Sequence[int]) -> "Days":
        """The picked rows, in that order."""
        picked = np.asarray(picked, np.int64)
        place = np.full(self.size, -1)
        place[picked] = np.arange(len(picked))
        kept = place[self.rows] >= 0
        order = np.lexsort((self.key[kept], self.metric[kept], place[self.rows][kept]))
        return Days(
            place[self.rows][kept][order],
            self.metric[kept][order],
            self.key[kept][order],
            self.count[kept][order],
            self.maxima[picked],
            self.counters[picked],
            self.hours[picked],
        )

    def points(self, metric: int) -> np.ndarray:
        """Per row, the minutes counted of a metric."""
        mine = self.metric == metric
        return np.bincount(self.rows[mine], weights=self.count[mine], minlength=self.size)

    def quantiles(self, metric: int, qs: Sequence[float]) -> np.ndarray:
        """Per row, the quantiles `qs` (0-1) of a metric: the value of the bucket holding the
        minute of rank floor(q (n - 1)) in its order (numpy's method "lower"), within
        ACCURACY of that minute's; NaN for a row with none."""
        mine = np.flatnonzero(self.metric == metric)
        rows, counts = self.rows[mine], self.count[mine]
        totals = np.bincount(rows, weights=counts, minlength=self.size).astype(np.int64)
        before = np.cumsum(totals) - totals  # minutes of the rows before each
        ends = np.cumsum(counts)
        found = np.full((self.size, len(qs)), np.nan)
        has = totals > 0
        for at, q in enumerate(qs):
            rank = np.floor(q * (totals[has] - 1)).astype(np.int64)
            record = np.searchsorted(ends, before[has] + rank, side="right")
            found[has, at] = value_of(self.key[mine][record])
        return found

    def increases(self) -> np.ndarray:
        """Per row and counter, how much it grew (high less low; NaN: unknown)."""
        return self.counters[..., 1] - self.counters[..., 0]

    def pack(self) -> list[bytes]:
        """Each row as the BLOB a store keeps (`unpack` reads them back)."""
        starts = np.searchsorted(
            self.rows * len(METRICS) + self.metric, np.arange(self.size * 2 + 1)
        )
        packed = np.empty(len(self.key), _RECORD)
        packed["key"], packed["count"] = self.key, self.count
        blobs = []
        for row in range(self.size):
            cpu, memory, end = starts[2 * row : 2 * row + 3]
            head = _HEAD.pack(
                int(memory - cpu), int(end - memory), *self.maxima[row], *self.counters[row].ravel()
            )
            blobs.append(head + packed[cpu:end].tobytes())
        return blobs

    @classmethod
    def unpack(cls, blobs: Sequence[bytes], hours: Sequence[int]) -> "Days":
        """Rows from their BLOBs (`pack`) and hours, in their order."""
        heads = [_HEAD.unpack_from(blob) for blob in blobs]
        sizes = np.array([head[:2] for head in heads], np.int64).reshape(-1, 2)
        figures = np.array([head[2:] for head in heads], np.float64).reshape(-1, 10)
        body = b"".join(memoryview(blob)[_HEAD.size :] for blob in blobs)
        records = np.frombuffer(body, _RECORD)
        return cls(
            np.repeat(np.arange(len(blobs)), sizes.sum(axis=1)),
            np.repeat(np.tile([0, 1], len(blobs)), sizes.ravel()),
            records["key"].astype(np.int64),
            records["count"].astype(np.int64),
            figures[:, :2].copy(),
            figures[:, 2:].reshape(-1, len(COUNTERS), 2).copy(),
            np.asarray(hours, np.int64),
        )


def _none_for_infinite(figures: np.ndarray) -> np.ndarray:
    """Figures never set (the ±inf they started as) as NaN."""
    return np.where(np.isinf(figures), np.nan, figures)
