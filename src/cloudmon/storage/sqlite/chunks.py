"""The chunk codec: one entity's rows of a span (`sealed` keeps them), packed column by column
and compressed, and read back exactly as they were written.

A row is a bucket, its BLOB `v` (a header, then 8-byte words: `codec`'s mask and doubles, or
a group's tag and integers) and, for a node, its pods' ids. Rows with the same header and
width make a matrix whose columns are encoded one by one, each the way that suits it best:

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

_LEVEL = 19
_WORD = 8
_HALF = 1 << 63
_XOR, _INTEGERS = 0xFF, 0x3F  # column codes; 0..9: doubles as integers of 10^-code
_BESIDE = 0x40  # flag of a code: the column's integers less those of the column before it
_NEAR = 0x80  # flag of a decimals code: each value's distance from its decimal follows
_NEAR_ULPS = 1 << 12  # the farthest a value may lie from its decimal (a sum of 60 sums: 60 ulps)
_MAX_DECIMALS = 9
_SCALES = [10**e for e in range(_MAX_DECIMALS + 1)]
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
    words = []
    for (head, width), shape in shapes.items():
        matrix = array("Q", b"".join(bodies[shape]))
        codes = bytearray()
        before: tuple = (None, None)  # the previous column's code and integers
        for column in range(width):
            code, integers, encoded = _encode_column(matrix[column::width], header == 1)
            if integers is not None and before[0] == code:
                # A column close to the one before it (a minimum, maximum and last value
                # of the same figure) is cheaper as its difference from it.
                beside = _zigzag(list(map(operator.sub, integers, before[1])))
                if _bits(beside) < _bits(_zigzag(integers)):
                    code, encoded = code | _BESIDE, array("Q", beside).tobytes()
            before = (code & ~_BESIDE, integers)
            codes.append(code)
            words.append(encoded)
        parts += [struct.pack("<II", len(head), width), head, codes]
    parts.append(_shuffle(b"".join(words)))
    return bytes(cramjam.zstd.compress(b"".join(parts), level=_LEVEL))


def decode(chunk: bytes) -> list[tuple[int, bytes, bytes | None]]:
    """The rows `encode` packed."""
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
        shapes.append((head, width, bytes(data[at : at + width])))
        at += width
    rows_of = [shape_of.count(shape) for shape in range(shape_count)]
    words = _unshuffle(data[at:])
    bodies = []
    offset = 0
    for (head, width, codes), height in zip(shapes, rows_of, strict=True):
        matrix = array("Q", bytes(_WORD * width * height))
        integers: list[int] = []
        for column, code in enumerate(codes):
            size = _WORD * height * (2 if code != _XOR and code & _NEAR else 1)
            encoded = _array("Q", words[offset : offset + size])
            offset += size
            matrix[column::width], integers = _decode_column(code, encoded, integers)
        row_size = _WORD * width
        flat = matrix.tobytes()
        offsets = range(0, len(flat), row_size) if width else [0] * height
        bodies.append(iter([head + flat[i : i + row_size] for i in offsets]))
    buckets = list(itertools.accumulate(gaps, initial=first)) if count else []
    verbatim_rows = iter(verbatim)
    return [
        (
            bucket,
            next(verbatim_rows) if shape == _VERBATIM else next(bodies[shape]),
            extra if has_extra else None,
        )
        for bucket, shape, extra, has_extra in zip(buckets, shape_of, extras, present, strict=True)
    ]


def _encode_column(bits: array, integers: bool) -> tuple[int, list[int] | None, bytes]:
    """A column's code, its integers (None for XORed doubles) and its words encoded."""
    if integers:
        values = list(array("q", bits.tobytes()))
        return _INTEGERS, values, array("Q", _zigzag(values)).tobytes()
    doubles = array("d", bits.tobytes())
    decimals = _decimals(doubles)
    if decimals is not None:
        scale = _SCALES[decimals]
        scaled = array("q")
        try:
            scaled.extend(round(value * scale) for value in doubles)
        except OverflowError:
            pass
        else:
            values = list(scaled)
            return decimals, values, array("Q", _zigzag(values)).tobytes()
    xored = list(map(operator.xor, bits, [0, *bits[:-1]]))
    near = _near_decimals(doubles)
    if near is not None:
        decimals, scaled, distances = near
        words = _zigzag(scaled) + _zigzag(distances)
        if _bits(words) < _bits(xored):
            return decimals | _NEAR, None, array("Q", words).tobytes()
    return _XOR, None, array("Q", xored).tobytes()


def _near_decimals(doubles: array) -> tuple[int, list[int], list[int]] | None:
    """The fewest decimals every value lies within `_NEAR_ULPS` of, the values as integers
    of them and their distances in ulps; None when no decimals up to 9 do. A value near a
    decimal of d places is near one of more: 9 is tried first (a column of other doubles
    fails there), then fewer, halving the range."""
    values = np.frombuffer(doubles, dtype=np.float64)
    if not np.isfinite(values).all():
        return None
    found = _near(values, _MAX_DECIMALS)
    low, high = 0, _MAX_DECIMALS
    while found is not None and low < high:
        middle = (low + high) // 2
        fewer = _near(values, middle)
        if fewer is None:
            low = middle + 1
        else:
            found, high = fewer, middle
    return found


def _near(values: np.ndarray, decimals: int) -> tuple[int, list[int], list[int]] | None:
    """The values as integers of `decimals` places and their distances in ulps, if all lie
    within `_NEAR_ULPS`."""
    scale = _SCALES[decimals]
    with np.errstate(over="ignore"):  # past 2**53 anyway
        scaled = np.rint(values * scale)
    if not (np.abs(scaled) < 2.0**53).all():  # as exact as `value / scale` decodes them
        return None
    integers = scaled.astype(np.int64)
    distances = values.view(np.int64) - (integers.astype(np.float64) / scale).view(np.int64)
    if not (np.abs(distances) <= _NEAR_ULPS).all():
        return None
    return decimals, integers.tolist(), distances.tolist()


def _decode_column(code: int, encoded: array, before: list[int]) -> tuple[array, list[int]]:
    """A column's words and integers, from its code, its words encoded and the integers of
    the column before it."""
    if code == _XOR:
        return array("Q", itertools.accumulate(encoded, operator.xor)), []
    if code & _NEAR:
        scale = _SCALES[code & ~_NEAR]
        height = len(encoded) // 2
        decimals = array("d", [value / scale for value in _unzigzag(encoded[:height])])
        bits = map(operator.add, array("q", decimals.tobytes()), _unzigzag(encoded[height:]))
        return array("Q", array("q", bits).tobytes()), []
    integers = _unzigzag(encoded)
    if code & _BESIDE:
        code &= ~_BESIDE
        integers = _wrapped(list(map(operator.add, integers, before)))
    if code == _INTEGERS:
        return array("Q", array("q", integers).tobytes()), integers
    scale = _SCALES[code]
    return array("Q", array("d", [value / scale for value in integers]).tobytes()), integers


def _decimals(doubles: array) -> int | None:
    """The fewest decimals that give back every value's bits, None when none up to 9 do."""
    decimals = 0
    data = doubles.tobytes()
    while decimals <= _MAX_DECIMALS:
        scale = _SCALES[decimals]
        try:
            exact = array("d", [round(v * scale) / scale for v in doubles])
        except (ValueError, OverflowError):  # NaN, infinity
            return None
        if exact.tobytes() == data:
            return decimals
        wrong = next((v for v, e in zip(doubles, exact, strict=True) if v != e), None)
        if wrong is None:  # only the sign of a zero differs: -0.0 has no decimals
            return None
        # Straight to the decimals of the first value these do not give back.
        decimals = _decimals_of(wrong, decimals + 1)
    return None


def _decimals_of(value: float, fewest: int) -> int:
    for decimals in range(fewest, _MAX_DECIMALS + 1):
        scale = _SCALES[decimals]
        if round(value * scale) / scale == value:
            return decimals
    return _MAX_DECIMALS + 1


def _zigzag(values: list[int]) -> list[int]:
    """Signed 64-bit integers as their differences, zigzagged (small either side of zero:
    small), modulo 2^64 so that any fits."""
    deltas = _wrapped(list(map(operator.sub, values, [0, *values[:-1]])))
    return [(delta << 1) ^ (delta >> 63) for delta in deltas]


def _unzigzag(encoded: array) -> list[int]:
    return _wrapped(list(itertools.accumulate([(z >> 1) ^ -(z & 1) for z in encoded])))


def _wrapped(values: list[int]) -> list[int]:
    """Integers brought into signed 64 bits, modulo 2^64."""
    if values and not -_HALF <= min(values) <= max(values) < _HALF:
        return [(value + _HALF) % (1 << 64) - _HALF for value in values]
    return values


def _bits(encoded: list[int]) -> int:
    """About what a column's zigzagged integers cost once compressed: their bits."""
    return sum(map(int.bit_length, encoded))


def _blobs(data: memoryview, at: int, count: int) -> tuple[list[bytes], int]:
    """`count` BLOBs packed as their lengths then their bytes, from `at`; where they end."""
    lengths = _array("I", data[at : at + 4 * count])
    at += 4 * count
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


def _shuffle(data: bytes) -> bytes:
    """Words' bytes regrouped by their place in the word: first bytes, second bytes, ..."""
    return b"".join(data[i::_WORD] for i in range(_WORD))


def _unshuffle(data: memoryview) -> bytes:
    plane = len(data) // _WORD
    out = bytearray(len(data))
    for i in range(_WORD):
        out[i::_WORD] = data[i * plane : (i + 1) * plane]
    return bytes(out)
