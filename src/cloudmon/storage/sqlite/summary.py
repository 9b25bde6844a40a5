"""Many entities' rows at once, with numpy instead of value by value: a period's `STATS` of
each column (the rollups), and the steps of a series (`fold`, as `base.fold` folds them).

`of_rows` summarises 10 s rows (`codec.pack`: a mask, then the present values), `of_rollups`
merges finer rollup rows (`codec.pack_stats`: a mask, then the STATS of each present column)
into a coarser period's; both give each entity's rollup row packed as `codec.pack_stats`
packs it. The figures are those of `base.stats_of` and `base.merged_stats`, to the bit: an
entity's rows are stacked in their order and its sums added row after row, as Python's
`sum` adds them (a missing value adds nothing), so that a period rolled up here equals one
rolled up value by value.
"""

from collections.abc import Sequence

import numpy as np

from cloudmon.storage.base import STATS
from cloudmon.storage.model import GROUP_SUM, EntityKind, GroupSum, columns
from cloudmon.storage.sqlite.codec import header, read_header, row_values

_SUM, _COUNT, _MIN, _MAX, _LAST = (STATS.index(name) for name in STATS)


def _as_python():
    """Sums past the largest double infinite, as Python's are, without a warning."""
    return np.errstate(over="ignore", invalid="ignore")


def of_rows(rows: dict[int, list[bytes]], width: int) -> dict[int, bytes]:
    """Per entity, its period's rollup row from its 10 s rows (of `width` columns)."""
    values = _stack(rows, width, 1)[..., 0]  # entity, row, column; NaN where missing
    present = ~np.isnan(values)
    figures = np.empty((len(rows), width, len(STATS)))
    with _as_python():
        figures[..., _SUM] = _sum_in_order(np.where(present, values, 0.0))
    figures[..., _COUNT] = present.sum(axis=1)
    figures[..., _MIN] = _extreme(values, np.less)
    figures[..., _MAX] = _extreme(values, np.greater)
    figures[..., _LAST] = _last(values, present)
    return _packed(rows, figures)


def of_rollups(rows: dict[int, list[bytes]], width: int) -> dict[int, bytes]:
    """Per entity, the rollup row of a coarser period from its finer periods' rows."""
    stats = _stack(rows, width, len(STATS))  # entity, period, column, STATS
    present = ~np.isnan(stats[..., _COUNT])
    figures = np.empty((len(rows), width, len(STATS)))
    with _as_python():
        for figure in (_SUM, _COUNT):
            figures[..., figure] = _sum_in_order(np.where(present, stats[..., figure], 0.0))
    figures[..., _MIN] = _extreme(stats[..., _MIN], np.less)
    figures[..., _MAX] = _extreme(stats[..., _MAX], np.greater)
    figures[..., _LAST] = _last(stats[..., _LAST], present)
    return _packed(rows, figures)


def decode(blobs: list[bytes], width: int, each: int, wanted: Sequence[int] | None = None):
    """Packed rows (a mask, then `each` doubles per present column of `width`) as an array
    (row, column, figure) of the wanted columns (all: None), NaN where a column is missing."""
    wanted = range(width) if wanted is None else wanted
    decoded = np.full((len(blobs), len(wanted), each), np.nan)
    if len(set(map(len, blobs))) == 1:  # all of one size: one mask, mostly
        mask, start = read_header(blobs[0])
        values = (len(blobs[0]) - start) // 8
        rows = np.frombuffer(b"".join(blobs), [("head", f"V{start}"), ("values", "<f8", values)])
        if (rows["head"] == rows["head"][0]).all():
            block = rows["values"].reshape(len(blobs), -1, each)
            _place(decoded, slice(None), mask, block, wanted)
            return decoded
    by_mask: dict[tuple[int, int], list[int]] = {}
    for at, blob in enumerate(blobs):
        by_mask.setdefault(read_header(blob), []).append(at)
    for (mask, start), rows in by_mask.items():
        body = b"".join(blobs[at][start:] for at in rows)
        block = np.frombuffer(body, "<f8").reshape(len(rows), -1, each)
        _place(decoded, np.array(rows)[:, None], mask, block, wanted)
    return decoded


def group_values(kind: EntityKind, blobs: list[bytes]) -> np.ndarray:
    """Groups' 10 s rows (`codec.pack_sum`) as an array (row, column) of the values
    `codec.row_values` answers, NaN for None."""
    layout = GROUP_SUM[kind]
    size = 1 + 8 * layout.width
    # Integers below 2**53 are doubles exactly, so that a sum over its unit is divided as
    # Python divides them; the cluster's percentages and larger sums are left to Python.
    if kind is not EntityKind.CLUSTER and all(len(b) == size and b[0] == 0 for b in blobs):
        rows = np.frombuffer(b"".join(blobs), [("tag", "u1"), ("vector", "<i8", layout.width)])
        vectors = rows["vector"]
        if not len(vectors) or np.abs(vectors).max() < 2**53:
            return _answers(layout, vectors)
    found = [row_values(kind, blob) for blob in blobs]
    return np.array(found, dtype=float).reshape(len(blobs), len(columns(kind)))


def _answers(layout: GroupSum, vectors: np.ndarray) -> np.ndarray:
    """`GroupSum.answer` of each vector (row) at once."""
    width = len(layout.summed)
    totals, counts, members = vectors[:, :width], vectors[:, width:-1], vectors[:, -1:]
    values = totals / np.array(layout.scales, dtype=float)
    values[counts == 0] = np.nan
    limits = list(layout.limits)
    values[:, limits] = np.where(counts[:, limits] < members, np.nan, values[:, limits])
    return np.hstack([values, members.astype(float)])


def _place(decoded: np.ndarray, rows, mask: int, block: np.ndarray, wanted: Sequence[int]):
    """Rows of one mask (`rows` indexes `decoded`), as (row, present column, figure), put where
    `decode` answers the wanted columns."""
    present = [column for column in range(max(wanted, default=0) + 1) if mask >> column & 1]
    have = [at for at, column in enumerate(wanted) if mask >> column & 1]
    if have:
        decoded[rows, have] = block[:, [present.index(wanted[at]) for at in have]]


def fold(places: np.ndarray, values: np.ndarray, counts: np.ndarray, agg: str, size: int):
    """Values (row, name) combined per place (an entity's step), as `base.fold` combines
    them (agg avg: their sum over their `counts`' sum); rows of a place in their order. An
    array (place, name) of `size` places, NaN where a place has no value."""
    folded = np.full((size, values.shape[1]), np.nan)
    if not len(places):
        return folded
    order = np.argsort(places, kind="stable")
    places, values, counts = places[order], values[order], counts[order]
    # Each place's rows, one run after another.
    starts = np.flatnonzero(np.r_[True, places[1:] != places[:-1]])
    lengths = np.diff(np.r_[starts, len(places)])
    where = places[starts]
    if agg in ("max", "min"):
        beating = _beating(np.greater if agg == "max" else np.less)
        folded[where] = _in_order(values, starts, lengths, beating)
        return folded
    if agg == "last":
        folded[where] = _in_order(values, starts, lengths, _later)
        return folded
    present = ~np.isnan(values)
    with _as_python():
        total = _in_order(np.where(present, values, 0.0), starts, lengths, np.add, 0.0)
        if agg == "sum":
            folded[where] = np.where(np.logical_or.reduceat(present, starts), total, np.nan)
            return folded
        count = _in_order(np.where(present, counts, 0.0), starts, lengths, np.add, 0.0)
        mean = total / np.where(count > 0, count, 1.0)
        folded[where] = np.where(count > 0, mean, np.nan)
    return folded


def _in_order(values: np.ndarray, starts, lengths, combine, first=None) -> np.ndarray:
    """Per run of rows (`values[start : start + length]`), its rows combined one after
    another (`combine(so_far, row)`), from its first row, or from `first` combined with it."""
    found = values[starts] if first is None else combine(first, values[starts])
    for rank in range(1, int(lengths.max())):
        runs = np.flatnonzero(lengths > rank)
        found[runs] = combine(found[runs], values[starts[runs] + rank])
    return found


def _beating(beats):
    """Of a value so far and the next, the least (`beats` np.less) or greatest present one:
    the first of equal ones, as Python's min and max keep it (0.0 before -0.0)."""
    return lambda found, value: np.where(beats(value, found) | np.isnan(found), value, found)


def _later(last, value):
    """Of a value so far and the next, the later present one."""
    return np.where(np.isnan(value), last, value)


def _stack(rows: dict[int, list[bytes]], width: int, each: int) -> np.ndarray:
    """The rows as an array (entity, row, column, figure), NaN where a column is missing."""
    lengths = np.fromiter(map(len, rows.values()), int, len(rows))
    stacked = np.full((len(rows), lengths.max(), width, each), np.nan)
    entity = np.repeat(np.arange(len(rows)), lengths)
    rank = np.arange(len(entity)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    stacked[entity, rank] = decode([blob for blobs in rows.values() for blob in blobs], width, each)
    return stacked


def _sum_in_order(values: np.ndarray) -> np.ndarray:
    """The sums over axis 1 of (entity, row, column), added row after row (numpy's own sum
    adds them in pairs, which can differ in the last bit)."""
    total = np.zeros(values.shape[::2])
    for j in range(values.shape[1]):
        total = total + values[:, j]
    return total


def _extreme(values: np.ndarray, beats) -> np.ndarray:
    """Over axis 1, the least (`beats` np.less) or greatest present value (`_beating`)."""
    found, beating = values[:, 0], _beating(beats)
    for j in range(1, values.shape[1]):
        found = beating(found, values[:, j])
    return found


def _last(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Over axis 1, the last present value."""
    last = values[:, 0]
    for j in range(1, values.shape[1]):
        last = np.where(present[:, j], values[:, j], last)
    return last


def _packed(rows: dict[int, list[bytes]], figures: np.ndarray) -> dict[int, bytes]:
    """Each entity's figures (column, STATS) as `codec.pack_stats` packs them."""
    return dict(zip(rows, packed(figures, figures[..., _COUNT] > 0), strict=True))


def packed(values: np.ndarray, present: np.ndarray) -> list[bytes]:
    """Rows (row, column) of values, or (row, column, figure), packed as `codec.pack` and
    `codec.pack_stats` pack them: a mask of the present columns, then their values."""
    width = present.shape[1]
    bits = np.uint64(1) << np.arange(width, dtype=np.uint64)
    masks = present.astype(np.uint64) @ bits
    found: list = [None] * len(values)
    for mask in np.unique(masks).tolist():
        which = np.flatnonzero(masks == mask)
        columns = np.flatnonzero(present[which[0]])
        body = values[which][:, columns].astype("<f8").tobytes()
        size = len(body) // len(which)
        head = header(mask, width)
        for k, at in enumerate(which.tolist()):
            found[at] = head + body[k * size : (k + 1) * size]
    return found
