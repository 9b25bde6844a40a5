"""The rollup of many entities' rows at once: a period's `STATS` of each column, computed with
numpy over all the entities of a chunk together instead of value by value.

`of_rows` summarises 10 s rows (`codec.pack`: a mask, then the present values), `of_rollups`
merges finer rollup rows (`codec.pack_stats`: a mask, then the STATS of each present column)
into a coarser period's; both give each entity's rollup row packed as `codec.pack_stats`
packs it. The figures are those of `base.stats_of` and `base.merged_stats`, to the bit: an
entity's rows are stacked in their order and its sums added row after row, as Python's
`sum` adds them (a missing value adds nothing), so that a period rolled up here equals one
rolled up value by value.
"""

import struct

import numpy as np

from cloudmon.storage.base import STATS

_MASK = struct.Struct("<I")
_SUM, _COUNT, _MIN, _MAX, _LAST = (STATS.index(name) for name in STATS)


# Sums past the largest double are infinite, as Python's are, without a warning.
_AS_PYTHON = np.errstate(over="ignore", invalid="ignore")


@_AS_PYTHON
def of_rows(rows: dict[int, list[bytes]], width: int) -> dict[int, bytes]:
    """Per entity, its period's rollup row from its 10 s rows (of `width` columns)."""
    values = _stack(rows, width, 1)[..., 0]  # entity, row, column; NaN where missing
    present = ~np.isnan(values)
    figures = np.empty((len(rows), width, len(STATS)))
    figures[..., _SUM] = _sum_in_order(np.where(present, values, 0.0))
    figures[..., _COUNT] = present.sum(axis=1)
    figures[..., _MIN] = _extreme(values, np.less)
    figures[..., _MAX] = _extreme(values, np.greater)
    figures[..., _LAST] = _last(values, present)
    return _packed(rows, figures)


@_AS_PYTHON
def of_rollups(rows: dict[int, list[bytes]], width: int) -> dict[int, bytes]:
    """Per entity, the rollup row of a coarser period from its finer periods' rows."""
    stats = _stack(rows, width, len(STATS))  # entity, period, column, STATS
    present = ~np.isnan(stats[..., _COUNT])
    figures = np.empty((len(rows), width, len(STATS)))
    for figure in (_SUM, _COUNT):
        figures[..., figure] = _sum_in_order(np.where(present, stats[..., figure], 0.0))
    figures[..., _MIN] = _extreme(stats[..., _MIN], np.less)
    figures[..., _MAX] = _extreme(stats[..., _MAX], np.greater)
    figures[..., _LAST] = _last(stats[..., _LAST], present)
    return _packed(rows, figures)


def _stack(rows: dict[int, list[bytes]], width: int, each: int) -> np.ndarray:
    """The rows as an array (entity, row, column, figure), NaN where a column is missing."""
    depth = max(map(len, rows.values()))
    stacked = np.full((len(rows), depth, width, each), np.nan)
    by_mask: dict[int, list] = {}
    for e, blobs in enumerate(rows.values()):
        for j, blob in enumerate(blobs):
            (mask,) = _MASK.unpack_from(blob)
            by_mask.setdefault(mask, []).append((e, j, blob))
    for mask, found in by_mask.items():
        columns = [i for i in range(width) if mask >> i & 1]
        body = b"".join(blob[_MASK.size :] for _, _, blob in found)
        block = np.frombuffer(body, "<f8").reshape(len(found), len(columns), each)
        at = np.array([(e, j) for e, j, _ in found])
        stacked[at[:, 0, None], at[:, 1, None], columns] = block
    return stacked


def _sum_in_order(values: np.ndarray) -> np.ndarray:
    """The sums over axis 1 of (entity, row, column), added row after row (numpy's own sum
    adds them in pairs, which can differ in the last bit)."""
    total = np.zeros(values.shape[::2])
    for j in range(values.shape[1]):
        total = total + values[:, j]
    return total


def _extreme(values: np.ndarray, beats) -> np.ndarray:
    """Over axis 1, the least (`beats` np.less) or greatest present value: the first of equal
    ones, as Python's min and max keep it (0.0 before -0.0)."""
    found = values[:, 0]
    for j in range(1, values.shape[1]):
        found = np.where(beats(values[:, j], found) | np.isnan(found), values[:, j], found)
    return found


def _last(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Over axis 1, the last present value."""
    last = values[:, 0]
    for j in range(1, values.shape[1]):
        last = np.where(present[:, j], values[:, j], last)
    return last


def _packed(rows: dict[int, list[bytes]], figures: np.ndarray) -> dict[int, bytes]:
    """Each entity's figures (column, STATS) as `codec.pack_stats` packs them."""
    held = figures[..., _COUNT] > 0
    masks = held.astype(np.uint64) @ (np.uint64(1) << np.arange(held.shape[1], dtype=np.uint64))
    ids = list(rows)
    packed = {}
    for mask in np.unique(masks).tolist():
        which = np.flatnonzero(masks == mask)
        columns = np.flatnonzero(held[which[0]])
        body = figures[which][:, columns].astype("<f8").tobytes()
        size = len(body) // len(which)
        head = _MASK.pack(mask)
        for k, e in enumerate(which.tolist()):
            packed[ids[e]] = head + body[k * size : (k + 1) * size]
    return {eid: packed[eid] for eid in ids}
