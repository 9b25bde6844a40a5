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

A chunk may be encoded against another entity's rows (a container's against its pod's, whose
figures it mostly repeats: `encode`'s `reference`): a column whose values lie close to the
reference's same figure is kept as its integers less the reference's, rounded to the
column's decimals, and the chunk keeps which rows had a reference and a checksum of what
they were, so that decoding it against rows that have changed since is an error, not a
wrong answer. Its reader passes the same reference to `decode_many`.

A query reads a chunk of each entity it answers for (200 deployments: 200 chunks), so
`decode_many` decodes many at once, the columns of all of them together: what a chunk costs
beside its rows is then little more than its decompression and header.
"""

import operator
import struct
import zlib
from array import array
from collections.abc import Callable, Sequence
from itertools import compress
from typing import NamedTuple

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
_BATCH_WORDS = 1 << 16  # words of chunks decoded at once
_REFERENCED = 1 << 31  # flag of a block's width: its columns referenced follow its codes
_CHECKSUM = struct.Struct("<I")

# The reference of a block of a chunk's rows: given their buckets and header, the words
# (doubles) each row's values are to be kept against, a row of NaN where it has none.
Reference = Callable[[np.ndarray, bytes], np.ndarray]


def encode(
    rows: Sequence[tuple[int, bytes, bytes | None]],
    header: int,
    reference: Reference | None = None,
) -> bytes:
    """Rows (bucket, v, extra) in bucket order, whose v are `header` bytes then words, as a
    chunk. Group rows (header 1) hold integers, the others doubles; theirs may be kept
    against a `reference`."""
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
    shape_array = np.frombuffer(shape_of.tobytes(), np.uint16)
    for (head, width), shape in shapes.items():
        matrix = np.frombuffer(b"".join(bodies[shape]), "<u8").reshape(len(bodies[shape]), width)
        against = None
        if reference is not None and header != 1:
            against = reference(np.array(buckets, np.int64)[shape_array == shape], head)
        codes, encoded, referenced = _encode_columns(matrix, header == 1, against)
        if referenced is None:
            parts += [struct.pack("<II", len(head), width), head, codes.tobytes()]
        else:
            columns, had, checksum = referenced
            parts += [struct.pack("<II", len(head), width | _REFERENCED), head, codes.tobytes()]
            parts += [columns.tobytes(), had.tobytes(), _CHECKSUM.pack(checksum)]
        words += encoded
    parts.append(_shuffle(np.concatenate(words)))
    return bytes(cramjam.zstd.compress(b"".join(parts), level=_LEVEL))


class Rows(NamedTuple):
    """Rows of many chunks decoded at once, in chunk then bucket order."""

    chunk: np.ndarray  # each row's chunk: its place among the chunks decoded
    buckets: np.ndarray
    values: list[bytes]
    extras: list[bytes | None]


def decode(
    chunk: bytes, size: int | None = None, reference: Reference | None = None
) -> list[tuple[int, bytes, bytes | None]]:
    """The rows (bucket, v, extra) `encode` packed (against `reference`, if it was); with
    `size`, the first `size` bytes of each row's v, of which only the words they hold are
    decoded."""
    rows = decode_many([chunk], size, references=[reference])
    return list(zip(rows.buckets.tolist(), rows.values, rows.extras, strict=True))


def decode_many(
    chunks: Sequence[bytes],
    size: int | None = None,
    between=None,
    references: Sequence[Reference | None] | None = None,
) -> Rows:
    """The rows of many chunks as `decode` gives them, those of buckets `between` first and
    last (all: None), the columns of all the chunks decoded at once: what a chunk costs
    beside its rows is little more than unpacking its header. A chunk encoded against a
    reference is decoded against `references` (one per chunk, or None)."""
    parsed = [_Parsed(chunk) for chunk in chunks]
    blocks = [block for chunk in parsed for block in chunk.blocks]
    wanted = [
        width if size is None else max(0, min(width, -(-(size - len(head)) // _WORD)))
        for head, width, *_ in blocks
    ]
    counts = np.array([chunk.count for chunk in parsed], np.int64)
    steps = np.concatenate([chunk.steps for chunk in parsed] + [np.zeros(0, np.int64)])
    buckets = _segmented(steps, counts[counts > 0], np.add, np.subtract)
    against = _references(parsed, buckets, wanted, references or [None] * len(parsed))
    inside = np.ones(len(buckets), bool)
    if between is not None:
        inside = (buckets >= between[0]) & (buckets <= between[1])
    matrices = iter(_decoded(parsed, blocks, wanted, against))
    values: list[bytes] = []
    extras: list[bytes | None] = []
    for chunk, end in zip(parsed, np.cumsum(counts).tolist(), strict=True):
        kept = inside[end - chunk.count : end]
        values += _kept_rows(chunk, [next(matrices) for _ in chunk.blocks], kept, size)
        extras += chunk.extras
    return Rows(
        np.repeat(np.arange(len(parsed)), counts)[inside],
        buckets[inside],
        values,
        list(compress(extras, inside.tolist())),
    )


def decode_blocks(chunks: Sequence[bytes]) -> list[tuple[int, np.ndarray, bytes, np.ndarray]]:
    """The rows of chunks of doubles, kept against no reference, block by block, their
    columns decoded at once and left as numbers: per block, its chunk's place among `chunks`,
    its rows' buckets, their header and the matrix (row, word) of their words (where a
    header holds more than a block's head, its rest is the first words)."""
    parsed = [_Parsed(chunk) for chunk in chunks]
    blocks = [block for chunk in parsed for block in chunk.blocks]
    if any(chunk.verbatim for chunk in parsed) or any(block[4] is not None for block in blocks):
        raise ValueError("chunks of whole rows of doubles, kept against no reference, only")
    counts = np.array([chunk.count for chunk in parsed], np.int64)
    steps = np.concatenate([chunk.steps for chunk in parsed] + [np.zeros(0, np.int64)])
    buckets = _segmented(steps, counts[counts > 0], np.add, np.subtract)
    wanted = [width for _, width, *_ in blocks]
    matrices = _decoded(parsed, blocks, wanted, [None] * len(blocks))
    found = []
    for at, (chunk, end) in enumerate(zip(parsed, np.cumsum(counts).tolist(), strict=True)):
        rows = buckets[end - chunk.count : end]
        for shape, (head, *_) in enumerate(chunk.blocks):
            mine = rows if len(chunk.blocks) == 1 else rows[chunk.shape_of == shape]
            found.append((at, mine, head, next(matrices)))
    return found


def _references(parsed: list, buckets: np.ndarray, wanted: list[int], references) -> list:
    """Per block of parsed chunks, the reference words of its rows that had one (NaN where a
    row had none), or None for a block kept without one (or none of whose columns is
    wanted); checked against the checksum its chunk keeps."""
    found: list = []
    end = 0
    for chunk, reference in zip(parsed, references, strict=True):
        rows = buckets[end : end + chunk.count]
        end += chunk.count
        for at, (head, _, _, _, referenced) in enumerate(chunk.blocks):
            if referenced is None or not wanted[len(found)]:
                found.append(None)
                continue
            if reference is None:
                raise ValueError("a chunk kept against a reference, decoded without one")
            _, had, checksum = referenced
            mine = rows if len(chunk.blocks) == 1 else rows[chunk.shape_of == at]
            words = _reference_words(reference(mine, head), had > 0)
            if zlib.crc32(words.tobytes()) != checksum:
                raise ValueError("a chunk's reference rows have changed since it was encoded")
            found.append(words)
    return found


def _kept_rows(chunk, matrices: list[np.ndarray], kept: np.ndarray, size: int | None):
    """A parsed chunk's rows that are `kept`, in their order, from the decoded matrices of
    its blocks and its verbatim rows, each cut to `size` bytes."""
    if len(matrices) == 1 and not chunk.verbatim:
        return _row_bytes(chunk.blocks[0][0], matrices[0][kept], size)
    shape_of = chunk.shape_of
    bodies = [
        _row_bytes(head, matrix[kept[shape_of == at]], size)
        for at, ((head, *_), matrix) in enumerate(zip(chunk.blocks, matrices, strict=True))
    ]
    verbatim = [row[:size] for row in compress(chunk.verbatim, kept[shape_of == _VERBATIM])]
    shapes = [iter(body) for body in bodies]
    others = iter(verbatim)
    return [next(others) if at == _VERBATIM else next(shapes[at]) for at in shape_of[kept].tolist()]


def _decoded(parsed: list, blocks: list[tuple], wanted: list[int], against: list):
    """The matrices of the blocks of parsed chunks (`_decode_blocks`), decoded some chunks at
    a time: arrays past the processor's caches take longer to go over than to decode."""
    block = start = taken = 0
    for at, chunk in enumerate(parsed, 1):
        taken += len(chunk.words)
        if taken < _BATCH_WORDS and at < len(parsed):
            continue
        end = block + sum(len(other.blocks) for other in parsed[start:at])
        words = np.concatenate([other.words for other in parsed[start:at]])
        yield from _decode_blocks(words, blocks[block:end], wanted[block:end], against[block:end])
        block, start, taken = end, at, 0


class _Parsed:
    """A chunk decompressed and its header unpacked: its rows' steps (the first bucket,
    then the gaps after it), shapes and extras, its verbatim rows, and the blocks (head,
    width, codes, height, referenced) of each shape's words: referenced None, or the columns
    kept against a reference, which rows had one and the checksum of their reference."""

    def __init__(self, chunk: bytes) -> None:
        data = memoryview(cramjam.zstd.decompress(chunk))
        count, first, shape_count, _ = _HEAD.unpack_from(data)
        at = _HEAD.size
        self.count, self.steps = count, np.zeros(count, np.int64)
        if count:
            self.steps[0] = first
            self.steps[1:] = np.frombuffer(data, "<i4", count - 1, at)
            at += 4 * (count - 1)
        self.shape_of = np.frombuffer(data, "<u2", count, at)
        at += 2 * count
        present = bytes(data[at : at + count])
        at += count
        extras, at = _blobs(data, at, count)
        self.extras = [None] * count
        if present.count(1):
            self.extras = [
                extra if has else None for extra, has in zip(extras, present, strict=True)
            ]
        self.verbatim: list[bytes] = []
        heights = [count]
        if shape_count != 1 or _VERBATIM in self.shape_of:
            self.verbatim, at = _blobs(data, at, int((self.shape_of == _VERBATIM).sum()))
            heights = np.bincount(self.shape_of[self.shape_of != _VERBATIM], minlength=shape_count)
        self.blocks = []
        for height in heights:
            head_size, width = struct.unpack_from("<II", data, at)
            at += 8
            head = bytes(data[at : at + head_size])
            at += head_size
            referenced = None
            if width & _REFERENCED:
                width ^= _REFERENCED
                columns = np.frombuffer(data, np.uint8, width, at + width)
                had = np.frombuffer(data, np.uint8, height, at + 2 * width)
                (checksum,) = _CHECKSUM.unpack_from(data, at + 2 * width + height)
                referenced = (columns, had, checksum)
            codes = np.frombuffer(data, np.uint8, width, at)
            self.blocks.append((head, width, codes, int(height), referenced))
            at += width
            if referenced is not None:
                at += width + int(height) + _CHECKSUM.size
        self.words = np.frombuffer(_unshuffle(data[at:]), "<u8")


def _decode_blocks(
    words: np.ndarray, blocks: list[tuple], wanted: list[int], against: list
) -> list[np.ndarray]:
    """The matrices of the first `wanted` columns of blocks (head, width, codes, height,
    referenced) whose columns `_encode_columns` encoded, one block after another in `words`,
    each against its reference words (`_references`) where it has some. A column of a block
    is a run of words, its height long (then a second run, of distances, for decimals that
    are near): all the runs are decoded at once, every word each way its run's code may
    ask, then each keeps the one its code says."""
    heights = np.array([height for _, _, _, height, _ in blocks], np.int64)
    widths = np.array([width for _, width, *_ in blocks], np.int64)
    codes = np.concatenate([codes for _, _, codes, *_ in blocks] + [np.zeros(0, np.uint8)])
    near = (codes != _XOR) & (codes & _NEAR > 0)
    column = np.repeat(np.arange(len(codes)), np.where(near, 2, 1))  # of each run
    lengths = np.repeat(heights, widths)[column]
    distances = np.zeros(len(column), bool)  # the second run of a near column
    distances[1:] = column[1:] == column[:-1]
    added = _added(blocks, against, column, lengths, distances)
    kept = (np.arange(len(codes)) < np.repeat(np.cumsum(widths) - widths + wanted, widths))[column]
    if not kept.all():
        starts = np.cumsum(lengths) - lengths
        picked = _ranges(starts[kept], lengths[kept])
        words = words[picked]
        added = None if added is None else added[picked]
        column, lengths, distances = column[kept], lengths[kept], distances[kept]
    codes, near = codes[column], near[column] & ~distances
    xor = codes == _XOR
    whole = ~xor & ~near & ~distances
    integers = _unzigzag(words, lengths)
    # A column of integers less those of the column before it (whose run is the one before):
    # each run of such columns added up from the run's first, the column they follow.
    beside = whole & (codes & _BESIDE > 0)
    run = np.arange(len(column))
    depth = run - np.maximum.accumulate(np.where(beside, 0, run))
    for step in range(1, int(depth.max(initial=0)) + 1):
        at = np.flatnonzero(np.repeat(depth == step, lengths))
        integers[at] += integers[at - np.repeat(lengths[depth == step], lengths[depth == step])]
    if added is not None:
        integers += added
    divided = near | whole & (codes & _NOT_BESIDE != _INTEGERS)
    decimals = np.where(divided, codes & _NOT_NEAR & _NOT_BESIDE, 0)
    doubles = _divided(
        np.where(np.repeat(divided, lengths), integers, 0), np.repeat(decimals, lengths)
    )
    kind = np.repeat(
        np.select([xor, whole & (codes & _NOT_BESIDE == _INTEGERS)], [0, 1], 2), lengths
    )
    decoded = np.where(kind == 1, integers.view(np.uint64), doubles)
    if xor.any():
        decoded = np.where(
            kind == 0, _segmented(words, lengths, np.bitwise_xor, np.bitwise_xor), decoded
        )
    if near.any():
        at = np.flatnonzero(np.repeat(near, lengths))
        shifted = at + np.repeat(lengths[near], lengths[near])
        decoded[at] = (doubles[at].view(np.int64) + integers[shifted]).view(np.uint64)
        decoded = decoded[~np.repeat(distances, lengths)]
    ends = np.cumsum(heights * wanted)
    return [
        decoded[end - height * columns : end].reshape(columns, height).T
        for end, height, columns in zip(ends.tolist(), heights.tolist(), wanted, strict=True)
    ]


def _added(blocks: list[tuple], against: list, column, lengths, distances) -> np.ndarray | None:
    """What each run's integers are kept less of (the first run of a column kept against a
    reference: the reference's integers of the column's decimals; 0 elsewhere), or None
    where no block has a reference."""
    if all(words is None for words in against):
        return None
    added = np.zeros(int(lengths.sum()), np.int64)
    starts = np.cumsum(lengths) - lengths
    first_run = np.flatnonzero(~distances)  # the first run of each column, column after column
    at = 0
    for (_, width, codes, height, referenced), words in zip(blocks, against, strict=True):
        if words is not None:
            columns = np.flatnonzero(referenced[0])
            integers = _reference_integers(words[:, columns], codes[columns])
            for k, local in enumerate(columns.tolist()):
                start = starts[first_run[at + local]]
                added[start : start + height] = integers[:, k]
        at += width
    return added


def _reference_integers(words: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Reference words (doubles) as integers of the decimals of the columns they are kept
    against (`codes`: whole or near decimals): 0 where a row has no reference, or one too
    large."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.rint(words * _SCALES_DOUBLE[np.minimum(codes & 0x0F, _MAX_DECIMALS)])
        return np.where(np.isfinite(scaled) & (np.abs(scaled) < 2.0**62), scaled, 0).astype(
            np.int64
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indexes of runs of `lengths` from `starts`, run after run."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()))


def _segmented(values: np.ndarray, lengths: np.ndarray, operation, inverse) -> np.ndarray:
    """Runs of `lengths` values, one after another, each accumulated by a ufunc on its own:
    `inverse` takes out what the runs before added."""
    accumulated = operation.accumulate(values)
    before = np.zeros(len(lengths), values.dtype)
    before[1:] = accumulated[np.cumsum(lengths)[:-1] - 1]
    return inverse(accumulated, np.repeat(before, lengths))


def _unzigzag(encoded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Runs of `lengths` integers, one after another, each `_zigzag` encoded on its own."""
    deltas = (encoded >> np.uint64(1)).view(np.int64) ^ -(encoded & np.uint64(1)).view(np.int64)
    return _segmented(deltas, lengths, np.add, np.subtract)


def _row_bytes(head: bytes, words: np.ndarray, size: int | None) -> list[bytes]:
    """Rows of words as BLOBs, each `head` then its words, cut to `size` bytes."""
    height, width = words.shape
    row_size = len(head) + _WORD * width
    kept = row_size if size is None else min(size, row_size)
    if not kept or not height:
        return [b""] * height
    rows = np.empty((height, row_size), np.uint8)
    rows[:, : len(head)] = np.frombuffer(head, np.uint8)
    rows[:, len(head) :] = np.ascontiguousarray(words, "<u8").view(np.uint8).reshape(height, -1)
    flat = rows[:, :kept].tobytes()
    return [flat[at : at + kept] for at in range(0, len(flat), kept)]


def _encode_columns(matrix: np.ndarray, integers: bool, reference: np.ndarray | None):
    """The codes of a matrix's columns of words (rows of one shape) and their words encoded,
    column after column, and None or what `_Parsed` reads of the columns kept against
    `reference` (its words of each row, a row of NaN where it has none); its words are
    integers, else doubles."""
    width = matrix.shape[1]
    codes = np.full(width, _XOR, np.uint8)
    if integers:
        codes[:] = _INTEGERS
        values = matrix.view(np.int64)
    else:
        decimals, values = _decimals(matrix.view(np.float64))
        codes[decimals >= 0] = decimals[decimals >= 0]
    whole = codes != _XOR  # the columns held as integers
    had = None if reference is None else ~np.isnan(reference).all(axis=1)
    against = np.zeros(width, bool)  # the columns kept against the reference
    if had is not None and had.any():
        reference = _reference_words(reference, had)
        candidates = np.flatnonzero(whole)
        against[candidates] = _less_reference(values, candidates, reference, codes[candidates])
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
    near_against = np.zeros(len(xored), bool)
    if had is not None and had.any():
        found = np.flatnonzero(near >= 0)
        near_against[found] = _less_reference(scaled, found, reference[:, xored], near[found])
    firsts, seconds = _zigzag(scaled), _zigzag(apart)
    cheaper = (near >= 0) & (_bits(firsts) + _bits(seconds) < _bits(encoded[:, xored]))
    for at in np.flatnonzero(cheaper):
        column = xored[at]
        codes[column] = near[at] | _NEAR
        encoded[:, column] = firsts[:, at]
        distances[column] = seconds[:, at]
        against[column] = near_against[at]
    columns = []
    for column, words in enumerate(encoded.T):
        columns.append(words)
        if column in distances:
            columns.append(distances[column])
    if not against.any():
        return codes, columns, None
    checksum = zlib.crc32(reference.tobytes())
    return codes, columns, (against.astype(np.uint8), had.astype(np.uint8), checksum)


def _reference_words(words: np.ndarray, had: np.ndarray) -> np.ndarray:
    """Reference words of the rows that had one, NaN elsewhere: what a chunk's checksum is
    of."""
    return np.where(had[:, None] & ~np.isnan(words), words, np.nan)


def _less_reference(integers: np.ndarray, columns: np.ndarray, reference, places) -> np.ndarray:
    """Of these columns of integers (of `places` decimals), those cheaper kept less the
    reference's integers of their decimals: made so in place; a mask of them."""
    less = integers[:, columns] - _reference_integers(reference[:, columns], places)
    cheaper = _bits(_zigzag(less)) < _bits(_zigzag(integers[:, columns]))
    integers[:, columns[cheaper]] = less[:, cheaper]
    return cheaper


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


def _divided(integers: np.ndarray, places: np.ndarray) -> np.ndarray:
    """Integers of `places` decimals each as the words of their doubles, `integer /
    10**places` as Python divides them (correctly rounded)."""
    doubles = integers / _SCALES_DOUBLE[places]  # exact where the integers are doubles exactly
    if len(integers) and (integers.max() >= 2**53 or integers.min() <= -(2**53)):
        large = np.flatnonzero((integers >= 2**53) | (integers <= -(2**53)))
        exact = zip(integers[large].tolist(), places[large].tolist(), strict=True)
        doubles[large] = [value / _SCALES[place] for value, place in exact]
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
