"""The chunk codec: one entity's rows of a span (`sealed` keeps them), packed column by column
and compressed, and read back exactly as they were written.

A row is a bucket, its BLOB `v` (a header, then 8-byte words: `codec`'s mask and doubles, or
a group's tag and integers) and, for a node, its pods' ids. Rows with the same header and
width make a matrix, each of whose columns is encoded the way that suits it best (numpy
chooses and encodes them all at once):

- doubles that are decimals of few digits (bytes, kernel counters in microseconds, rates in
  nanocores, as the agent sends them: 0.155451434) as integers scaled by 10^e, their
  differences zigzagged, so that a counter that grows steadily costs a few bytes a value;
- a group's integers as their differences, zigzagged;
- doubles a few ulps from such decimals (a rollup's sum of them: each addition rounds) as
  those integers plus, in a second run of words, each value's distance from its decimal in
  ulps (its bits less the decimal's), zigzagged;
- any other double as its bits XORed with the previous value's (as Gorilla and Prometheus do).

Every transform is checked to give back the same bits, NaN and -0.0 included, or the column
is XORed instead. The words are then byte-shuffled (a column's high bytes together) and the
whole chunk compressed with zstd, which finds the repeats: limits that never change, pods
lists that rarely do.
"""

import itertools
import operator
import struct
from array import array
from collections.abc import Sequence

import cramjam
import numpy as np

# zstd's level: 19 makes chunks 0.3 % smaller than 15 for 4 to 5 times its CPU, which
# sealing spends on every row the store keeps.
_LEVEL = 15
_WORD = 8
_XOR, _INTEGERS = 0xFF, 0x3F  # column codes; 0..9: doubles as integers of 10^-code
_BESIDE = 0x40  # flag of a code: the column's integers less those of the column before it
_NEAR = 0x80  # flag of a decimals code: each value's distance from its decimal follows
_NOT_BESIDE, _NOT_NEAR = 0xFF ^ _BESIDE, 0xFF ^ _NEAR
_NEAR_ULPS = 1 << 12  # the farthest a value may lie from its decimal (a sum of 60 sums: 60 ulps)
_MAX_DECIMALS = 9
_SCALES = [10**e for e in range(_MAX_DECIMALS + 1)]
_SCALES_DOUBLE = np.array(_SCALES, np.float64)
_VERBATIM = 0xFFFF  # shape of a row stored as it is (its body is not a multiple of words)
_HEAD = struct.Struct("<IqHH")  # rows, first bucket, shapes, header size


def encode(rows: Sequence[tuple[int, bytes, bytes | None]], header: int) -> bytes:
    """Rows (bucket, v, extra) in bucket order, whose v are `header` bytes then words, as a
    chunk. Group rows (header 1) hold integers, the others doubles."""
    shapes: dict[tuple[bytes, int], int] = {}
    bodies: list[list[bytes]] = []
    shape_of = array("H")
    verbatim = []
    for _, v, _ in rows:
        head, width = v[:header], len(v) - header
        if width % _WORD:
            shape_of.append(_VERBATIM)
            verbatim.append(v)
            continue
        shape = shapes.setdefault((head, width // _WORD), len(shapes))
        if shape == len(bodies):
            bodies.append([])
        bodies[shape].append(v[header:])
        shape_of.append(shape)
    buckets = [bucket for bucket, _, _ in rows]
    gaps = array("i", map(operator.sub, buckets[1:], buckets))
    extras = [b"" if extra is None else extra for _, _, extra in rows]
    present = bytes(extra is not None for _, _, extra in rows)
    parts = [
        _HEAD.pack(len(rows), buckets[0] if rows else 0, len(shapes), header),
        gaps.tobytes(),
        shape_of.tobytes(),
        present,
        array("I", map(len, extras)).tobytes(),
        b"".join(extras),
        array("I", map(len, verbatim)).tobytes(),
        b"".join(verbatim),
    ]
    words = [np.empty(0, np.uint64)]
    for (head, width), shape in shapes.items():
        matrix = np.frombuffer(b"".join(bodies[shape]), "<u8").reshape(len(bodies[shape]), width)
        codes, encoded = _encode_columns(matrix, header == 1)
        parts += [struct.pack("<II", len(head), width), head, codes.tobytes()]
        words += encoded
    parts.append(_shuffle(np.concatenate(words)))
    return bytes(cramjam.zstd.compress(b"".join(parts), level=_LEVEL))


def decode(chunk: bytes, size: int | None = None) -> list[tuple[int, bytes, bytes | None]]:
    """The rows `encode` packed; with `size`, the first `size` bytes of each row's v, of
    which only the words they hold are decoded."""
    data = memoryview(bytes(cramjam.zstd.decompress(chunk)))
    count, first, shape_count, _ = _HEAD.unpack_from(data)
    at = _HEAD.size
    gaps = _array("i", data[at : at + 4 * (count - 1)]) if count else array("i")
    at += 4 * len(gaps)
    shape_of = _array("H", data[at : at + 2 * count])
    at += 2 * count
    present = data[at : at + count]
    at += count
    extras, at = _blobs(data, at, count)
    verbatim, at = _blobs(data, at, shape_of.count(_VERBATIM))
    shapes = []
    for _ in range(shape_count):
        head_size, width = struct.unpack_from("<II", data, at)
        at += 8
        head = bytes(data[at : at + head_size])
        at += head_size
        shapes.append((head, width, np.frombuffer(data[at : at + width], np.uint8)))
        at += width
    words = np.frombuffer(_unshuffle(data[at:]), "<u8")
    bodies = []
    offset = 0
    for head, width, codes in shapes:
        height = shape_of.count(len(bodies))
        wanted = width if size is None else max(0, min(width, -(-(size - len(head)) // _WORD)))
        matrix, offset = _decode_columns(words, offset, codes, height, wanted)
        row_size = _WORD * wanted
        flat = matrix.tobytes()
        offsets = range(0, len(flat), row_size) if wanted else [0] * height
        rows = [head + flat[i : i + row_size] for i in offsets]
        if size is not None and len(head) + row_size > size:
            rows = [row[:size] for row in rows]
        bodies.append(iter(rows))
    buckets = list(itertools.accumulate(gaps, initial=first)) if count else []
    verbatim_rows = iter(verbatim if size is None else [v[:size] for v in verbatim])
    return [
        (
            bucket,
            next(verbatim_rows) if shape == _VERBATIM else next(bodies[shape]),
            extra if has_extra else None,
        )
        for bucket, shape, extra, has_extra in zip(buckets, shape_of, extras, present, strict=True)
    ]


def _encode_columns(matrix: np.ndarray, integers: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """The codes of a matrix's columns of words (rows of one shape) and their words encoded,
    column after column; its words are integers, else doubles."""
    width = matrix.shape[1]
    codes = np.full(width, _XOR, np.uint8)
    if integers:
        codes[:] = _INTEGERS
        values = matrix.view(np.int64)
    else:
        decimals, values = _decimals(matrix.view(np.float64))
        codes[decimals >= 0] = decimals[decimals >= 0]
    whole = codes != _XOR  # the columns held as integers
    encoded = np.where(whole, _zigzag(values), matrix ^ _previous(matrix))
    # A column close to the one before it (a minimum, maximum and last value of the same
    # figure) is cheaper as its difference from it.
    after = np.flatnonzero(whole[1:] & (codes[1:] == codes[:-1])) + 1
    beside = _zigzag(values[:, after] - values[:, after - 1])
    cheaper = _bits(beside) < _bits(encoded[:, after])
    encoded[:, after[cheaper]] = beside[:, cheaper]
    codes[after[cheaper]] |= _BESIDE
    distances = {}
    xored = np.flatnonzero(~whole)
    near, scaled, apart = _near_decimals(matrix.view(np.float64)[:, xored])
    firsts, seconds = _zigzag(scaled), _zigzag(apart)
    cheaper = (near >= 0) & (_bits(firsts) + _bits(seconds) < _bits(encoded[:, xored]))
    for at in np.flatnonzero(cheaper):
        column = xored[at]
        codes[column] = near[at] | _NEAR
        encoded[:, column] = firsts[:, at]
        distances[column] = seconds[:, at]
    columns = []
    for column, words in enumerate(encoded.T):
        columns.append(words)
        if column in distances:
            columns.append(distances[column])
    return codes, columns


def _decode_columns(words: np.ndarray, offset: int, codes: np.ndarray, height: int, wanted: int):
    """The matrix (height, first `wanted` columns) of words whose columns `_encode_columns`
    encoded from `offset` in `words`, and the offset after all of them."""
    near = (codes != _XOR) & (codes & _NEAR > 0)
    sizes = np.where(near, 2 * height, height)
    after = offset + int(sizes.sum())
    starts = (offset + np.cumsum(sizes) - sizes)[:wanted]
    codes, near = codes[:wanted], near[:wanted]
    xor = codes == _XOR
    whole = ~xor & ~near
    down = np.arange(height)[:, None]
    encoded = words[starts + down]
    matrix = np.bitwise_xor.accumulate(encoded, axis=0)  # right for the XORed columns
    values = _unzigzag(encoded)
    # A column of integers less those of the column before it: each run of such columns
    # added up from the run's first, the column they follow.
    column = np.arange(len(codes))
    run = np.maximum.accumulate(np.where(whole & (codes & _BESIDE > 0), 0, column))
    totals = np.cumsum(values, axis=1)
    values = totals - np.where(run > 0, totals[:, run - 1], 0)
    integer = whole & (codes & _NOT_BESIDE == _INTEGERS)
    matrix[:, integer] = values[:, integer].view(np.uint64)
    decimals = whole & ~integer
    matrix[:, decimals] = _divided(values[:, decimals], codes[decimals] & _NOT_BESIDE)
    if near.any():
        apart = _unzigzag(words[starts[near] + height + down])
        nearest = _divided(values[:, near], codes[near] & _NOT_NEAR).view(np.int64)
        matrix[:, near] = (nearest + apart).view(np.uint64)
    return matrix, after


def _decimals(doubles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the fewest decimals that give back every value's bits (-1 when none up
    to 9 do, or when the integers they make pass 64 bits), and the matrix of those integers."""
    height, width = doubles.shape
    found = np.full(width, -1)
    integers = np.zeros((height, width), np.int64)
    bits = doubles.view(np.int64)
    left = np.flatnonzero(np.isfinite(doubles).all(axis=0))
    with np.errstate(over="ignore", invalid="ignore"):
        for decimals, scale in enumerate(_SCALES):
            if not len(left):
                break
            # As Python's round() rounds: to an integer, half to even, no -0.0.
            rounded = np.rint(doubles[:, left] * scale) + 0.0
            exact = ((rounded / scale).view(np.int64) == bits[:, left]).all(axis=0)
            fits = ((rounded >= -(2.0**63)) & (rounded < 2.0**63)).all(axis=0)
            done = left[exact & fits]
            found[done] = decimals
            integers[:, done] = rounded[:, exact & fits].astype(np.int64)
            left = left[~exact]
    return found, integers


def _near_decimals(doubles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column, the fewest decimals every value lies within `_NEAR_ULPS` of (-1 when no
    decimals up to 9 do), the values as integers of them and their distances in ulps. A
    value near a decimal of d places is near one of more: 9 is tried first (a column of
    other doubles fails there), then fewer, halving the range."""
    finite = np.isfinite(doubles).all(axis=0)
    near = np.array([finite & _near(doubles, decimals)[0] for decimals in range(len(_SCALES))])
    found = np.where(near[_MAX_DECIMALS], _MAX_DECIMALS, -1)
    low, high = np.zeros_like(found), np.full_like(found, _MAX_DECIMALS)
    while ((found >= 0) & (low < high)).any():
        searching = (found >= 0) & (low < high)
        middle = (low + high) // 2
        fewer = searching & near[middle, np.arange(len(found))]
        found = np.where(fewer, middle, found)
        high = np.where(fewer, middle, high)
        low = np.where(searching & ~fewer, middle + 1, low)
    integers = np.zeros(doubles.shape, np.int64)
    distances = np.zeros(doubles.shape, np.int64)
    for decimals in np.unique(found[found >= 0]):
        columns = found == decimals
        _, integers[:, columns], distances[:, columns] = _near(doubles[:, columns], decimals)
    return found, integers, distances


def _near(doubles: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column, whether its values lie within `_NEAR_ULPS` of integers of `decimals`
    places small enough to be doubles exactly (as `value / scale` decodes them); those
    integers and the values' distances from them in ulps."""
    scale = _SCALES[decimals]
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.rint(doubles * scale)
        inside = (np.abs(scaled) < 2.0**53).all(axis=0)
        integers = scaled.astype(np.int64)
    distances = doubles.view(np.int64) - (integers.astype(np.float64) / scale).view(np.int64)
    return inside & (np.abs(distances) <= _NEAR_ULPS).all(axis=0), integers, distances


def _divided(integers: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """Integers (row, column) of each column's decimals as the words of their doubles,
    `integer / 10**decimals` as Python divides them (correctly rounded)."""
    scales = _SCALES_DOUBLE[decimals]
    doubles = integers / scales  # exact where the integers are doubles exactly
    large = ((integers >= 2**53) | (integers <= -(2**53))).any(axis=0)
    for column in np.flatnonzero(large):
        scale = _SCALES[decimals[column]]
        doubles[:, column] = [value / scale for value in integers[:, column].tolist()]
    return doubles.view(np.uint64)


def _previous(matrix: np.ndarray) -> np.ndarray:
    """Each column's words moved down a row, 0 first."""
    before = np.zeros_like(matrix)
    before[1:] = matrix[:-1]
    return before


def _zigzag(values: np.ndarray) -> np.ndarray:
    """Columns of signed 64-bit integers as their differences down the column, zigzagged
    (small either side of zero: small), modulo 2^64 so that any fits."""
    deltas = values - _previous(values)
    return (deltas.view(np.uint64) << np.uint64(1)) ^ (deltas >> 63).view(np.uint64)


def _unzigzag(encoded: np.ndarray) -> np.ndarray:
    deltas = (encoded >> np.uint64(1)).view(np.int64) ^ -(encoded & np.uint64(1)).view(np.int64)
    return np.cumsum(deltas, axis=0)


def _bits(encoded: np.ndarray) -> np.ndarray:
    """About what each column of zigzagged integers costs once compressed: their bits."""
    high = (encoded >> np.uint64(32)).astype(np.float64)
    low = (encoded & np.uint64(0xFFFFFFFF)).astype(np.float64)
    return np.where(high > 0, 32 + np.frexp(high)[1], np.frexp(low)[1]).sum(axis=0)


def _blobs(data: memoryview, at: int, count: int) -> tuple[list[bytes], int]:
    """`count` BLOBs packed as their lengths then their bytes, from `at`; where they end."""
    lengths = _array("I", data[at : at + 4 * count])
    at += 4 * count
    if not any(lengths):
        return [b""] * count, at
    blobs = []
    for length in lengths:
        blobs.append(bytes(data[at : at + length]))
        at += length
    return blobs, at


def _array(code: str, data) -> array:
    """An array of the items packed in a bytes-like object."""
    items = array(code)
    items.frombytes(data)
    return items


def _shuffle(words: np.ndarray) -> bytes:
    """Words' bytes regrouped by their place in the word: first bytes, second bytes, ..."""
    return np.ascontiguousarray(words, "<u8").view(np.uint8).reshape(-1, _WORD).T.tobytes()


def _unshuffle(data: memoryview) -> bytes:
    return np.frombuffer(data, np.uint8).reshape(_WORD, -1).T.tobytes()
