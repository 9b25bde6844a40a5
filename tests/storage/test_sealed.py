"""Sealed spans: rows packed into compressed chunks (`chunks`) give back every bit, and a
store whose finished spans are sealed answers exactly as one whose are not — before and
after late samples, a bucket sent again without some of its pods, a pod that changes
namespace, rollups done again, expiry and the size bound."""

import math
import sqlite3
import struct

import numpy as np
import pytest
from cramjam import zstd
from hypothesis import given, settings
from hypothesis import strategies as st
from store_payloads import H0, Clock, node_payload, payloads
from test_group_sums import kept, taken_at_once

from cloudmon.storage.base import BUCKET, Span
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import SqliteStorage, chunks, sealed
from cloudmon.storage.sqlite.codec import pack, pack_ids, pack_stats, pack_sum

NODES = 3
PODS = 4
HOURS = 3
NAMES = ("cpu_cores", "memory_working_set_bytes", "cpu_limit_cores", "network_rx_bps")

# A rollup's sum of decimals: a few ulps from a decimal, each addition rounding.
NEAR_DECIMALS = st.lists(
    st.integers(-(10**12), 10**12).map(lambda n: n / 10**9), min_size=2, max_size=60
).map(sum)
DOUBLES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 1 << 50).map(float),
    st.integers(0, 10**12).map(lambda n: n / 10**6),  # a counter of microseconds, in seconds
    st.integers(0, 10**10).map(lambda n: round(n / 10**9, 9)),  # cores, in nanocores
    NEAR_DECIMALS,
)
SAMPLE_ROW = st.lists(DOUBLES, min_size=1, max_size=20).map(pack)
SUM_ROW = st.one_of(
    st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=1, max_size=12).map(pack_sum),
    st.lists(st.integers(-(1 << 80), 1 << 80), min_size=1, max_size=4).map(pack_sum),  # JSON
)
STATS_ROW = st.lists(
    st.one_of(
        st.none(),
        st.tuples(*[st.floats(allow_nan=False)] * 5),
        st.tuples(NEAR_DECIMALS, *[st.integers(0, 10**12).map(lambda n: n / 10**6)] * 4),
    ),
    min_size=1,
    max_size=6,
).map(pack_stats)
EXTRA = st.one_of(st.none(), st.lists(st.integers(0, (1 << 32) - 1), max_size=40).map(pack_ids))


def rows_of(blobs):
    return st.lists(st.tuples(blobs, EXTRA), max_size=40).map(
        lambda rows: [(H0 + 10 * i, v, extra) for i, (v, extra) in enumerate(rows)]
    )


@settings(max_examples=150, deadline=None)
@given(st.one_of(rows_of(SAMPLE_ROW), rows_of(STATS_ROW)))
def test_a_chunk_gives_back_every_bit_of_its_rows(rows):
    assert chunks.decode(chunks.encode(rows, 4)) == rows


@settings(max_examples=150, deadline=None)
@given(st.one_of(rows_of(SAMPLE_ROW), rows_of(STATS_ROW)), st.integers(0, 200))
def test_a_chunk_gives_back_the_first_bytes_of_its_rows(rows, size):
    chunk = chunks.encode(rows, 4)
    assert chunks.decode(chunk, size) == [(bucket, v[:size], extra) for bucket, v, extra in rows]


@settings(max_examples=100, deadline=None)
@given(rows_of(SUM_ROW))
def test_a_chunk_gives_back_every_bit_of_group_rows(rows):
    assert chunks.decode(chunks.encode(rows, 1)) == rows


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(rows_of(SAMPLE_ROW), rows_of(STATS_ROW)), max_size=6),
    st.one_of(st.none(), st.integers(0, 200)),
    st.one_of(st.none(), st.tuples(st.integers(0, 40), st.integers(0, 40))),
)
def test_chunks_decoded_at_once_give_back_the_rows_of_each(spans, size, between):
    # Their columns are decoded together, each chunk's on its own all the same.
    if between is not None:
        between = (H0 + 10 * min(between), H0 + 10 * max(between))
    rows = chunks.decode_many([chunks.encode(span, 4) for span in spans], size, between)
    expected = [
        (at, bucket, v[:size], extra)
        for at, span in enumerate(spans)
        for bucket, v, extra in span
        if between is None or between[0] <= bucket <= between[1]
    ]
    found = zip(rows.chunk.tolist(), rows.buckets.tolist(), rows.values, rows.extras, strict=True)
    assert list(found) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(rows_of(SAMPLE_ROW), max_size=4))
def test_chunks_decoded_block_by_block_give_back_the_words_of_their_rows(spans):
    found = {}
    for at, buckets, head, words in chunks.decode_blocks([chunks.encode(s, 4) for s in spans]):
        for bucket, row in zip(buckets.tolist(), words, strict=True):
            found[at, bucket] = head + row.astype("<u8").tobytes()
    assert found == {(at, bucket): v for at, span in enumerate(spans) for bucket, v, _ in span}


def against(rows, shifts, header=4):
    """A reference for rows: each row's own words, each moved by a shift (in units of 10^-6),
    except the rows whose shift is None, which have none."""
    words = {}
    for (bucket, v, _), shift in zip(rows, shifts, strict=False):
        if shift is not None and (len(v) - header) % 8 == 0:
            own = np.frombuffer(v[header:], "<f8")
            words[bucket] = own + shift / 10**6

    def reference(buckets, head):
        own = [words.get(bucket) for bucket in buckets.tolist()]
        width = max((len(found) for found in own if found is not None), default=0)
        rows = [
            found if found is not None and len(found) == width else [np.nan] * width
            for found in own
        ]
        return np.array(rows, float).reshape(len(own), width)

    return reference


SHIFTS = st.lists(st.one_of(st.none(), st.integers(-(10**7), 10**7)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.one_of(rows_of(SAMPLE_ROW), rows_of(STATS_ROW)), SHIFTS, st.integers(0, 200))
def test_a_chunk_kept_against_a_reference_gives_back_every_bit_of_its_rows(rows, shifts, size):
    reference = against(rows, shifts)
    chunk = chunks.encode(rows, 4, reference)
    assert chunks.decode(chunk, reference=reference) == rows
    assert chunks.decode(chunk, size, reference) == [(b, v[:size], e) for b, v, e in rows]


def counters_and_their_pod(count=120):
    """A container's counters and gauges (microseconds, bytes, nanocores) and its pod's: the
    same plus what the pod's pause process adds."""
    random = np.random.default_rng(5)
    usage = np.cumsum(random.integers(100_000, 200_000, count)) / 10**6
    memory = 50_000_000 + np.cumsum(random.integers(-4096, 4096, count)) // 4096 * 4096
    cores = random.integers(10**7, 2 * 10**7, count) / 10**9
    container = [
        (H0 + 10 * i, pack([usage[i], float(memory[i]), cores[i]]), None) for i in range(count)
    ]
    pod = {H0 + 10 * i: [usage[i] + 0.5, memory[i] + 700_000.0, cores[i]] for i in range(count)}

    def reference(buckets, head):
        return np.array([pod.get(b, [np.nan] * 3) for b in buckets.tolist()])

    return container, pod, reference


def test_a_container_kept_against_its_pod_costs_a_fraction_and_refuses_a_changed_pod():
    rows, pod, reference = counters_and_their_pod()
    alone, kept = chunks.encode(rows, 4), chunks.encode(rows, 4, reference)
    assert len(kept) < len(alone) / 3
    assert chunks.decode(kept, reference=reference) == rows
    # Only which buckets it holds is read without the reference.
    assert [b for b, _, _ in chunks.decode(kept, 0)] == [b for b, _, _ in rows]
    with pytest.raises(ValueError, match="without one"):
        chunks.decode(kept)
    pod[H0 + 50][0] += 0.000001
    with pytest.raises(ValueError, match="changed"):
        chunks.decode(kept, reference=reference)
    del pod[H0 + 50]
    with pytest.raises(ValueError, match="changed"):
        chunks.decode(kept, reference=reference)
    # A pod row added where the container's had none does not change what it was kept against.
    rows, pod, reference = counters_and_their_pod()
    del pod[H0 + 70]
    kept = chunks.encode(rows, 4, reference)
    pod[H0 + 70] = [1.0, 2.0, 3.0]
    assert chunks.decode(kept, reference=reference) == rows


def test_decimals_and_counters_compress_and_odd_doubles_survive():
    # A CPU counter of microseconds that grows by about 1.2 s every 10 s, in seconds, and a
    # working set in pages that wanders.
    usec = [1000 * i * 1234 + (i * 7919) % 100_000 for i in range(360)]
    counter = [
        (H0 + 10 * i, pack([usec[i] / 1e6, 4096.0 * (1000 + (i * 31) % 17)]), None)
        for i in range(360)
    ]
    odd = [(H0, pack([-0.0, math.nan, math.inf, -math.inf, 5e-324]), None)]
    ((_, blob, _),) = chunks.decode(chunks.encode(odd, 4))
    assert blob == odd[0][1]
    assert math.copysign(1, struct.unpack_from("<d", blob, 4)[0]) == -1
    size = len(chunks.encode(counter, 4))
    # 20 bytes a row as the head holds them; here at most 3 bytes a value
    assert size < 360 * 2 * 3, f"{size} bytes for 360 rows of a counter and a gauge"


def test_sums_of_decimals_cost_less_than_their_bits_xored(monkeypatch):
    # A 1 min rollup's sums of six samples of cores in nanocores: no decimals (each addition
    # rounds), but a few ulps from them.
    cores = [round(0.15 + 0.05 * math.sin(i / 30) + (i * 7919 % 1000) / 1e5, 9) for i in range(720)]
    sums = [sum(cores[i : i + 6]) for i in range(0, 720, 6)]
    assert any(round(value, 9) != value for value in sums)
    rows = [(H0 + 60 * i, pack([value]), None) for i, value in enumerate(sums)]
    near = chunks.encode(rows, 4)
    assert chunks.decode(near) == rows

    def never_near(doubles, _decimals):
        return np.zeros(doubles.shape[1], bool), None, None

    monkeypatch.setattr(chunks, "_near", never_near)
    xored = chunks.encode(rows, 4)
    assert len(near) < 0.7 * len(xored), (len(near), len(xored))


def pinned_rows():
    """Rows of each kind of column: decimals, minima and maxima beside their sums, sums near
    decimals, doubles XORed, -0.0, a missing column, a node's pods, a row kept as it is; and
    a group's integers."""
    rows = []
    for i in range(6):
        usec = (1000 * i * 1234 + (i * 7919) % 100_000) / 1e6
        sums = sum(round(0.15 + i / 1e4 + k / 1e5, 9) for k in range(6))
        if i % 3:
            v = pack_stats([(usec, 6.0, usec, usec + 1, usec + 0.5), (sums, 6.0, 0.1, 0.3, 0.2)])
        else:
            v = pack([usec, 4096.0 * (1000 + i), math.pi * i, None if i == 4 else -0.0])
        rows.append((H0 + 10 * i, v, pack_ids([7, 8, 9 + i]) if i % 2 else None))
    rows.append((H0 + 70, b"\x01\x02\x03", None))
    group = [(H0 + 10 * i, pack_sum([1000 * i, 3, -5 * i, 1 << 62]), None) for i in range(4)]
    return rows, group


# Chunks as the store has written them since it began to seal (zstd at level 19): files hold
# them, so that a change of the format, or of what the encoder chooses, shows here.
PINNED = bytes.fromhex(
    "28b52ffd604a01050500e24c1e23a0ab3928776ef5f45bd30000ff10cfffc482ba6bcfc6ca6c1fdf97ecf17f"
    "97bda54c0114c4c2cec8c977eb83afc5756d58e2a8b9e295b58da64dc8887977e9ef957bcf3d3c8fcc0fa7ac"
    "b24f96cd3964c2b9160c934a874e3ddab6d2ad478fa0e70e3d5051077cbafaaeeb6e9bebbe606af47de3fa5c"
    "3e050f20f0721703ca265e8417e189f045980121d867451e97776c1a718c63fb2b64a7f98401"
)
PINNED_GROUP = bytes.fromhex(
    "28b52ffd20c58d010062c30811e0690d30430b7c60e0c204c212ec1dc81437cdecdfdd078450f2e0b558ebcb"
    "48e7200400094819001008907bc3"
)


# A container's counters, gauge and rate kept against its pod's (`counters_and_their_pod`).
PINNED_KEPT = bytes.fromhex(
    "28b52ffd20fa050200f2830b17c0a7357bb9bf0afdff2657b5be165ffde0a9ad5c9bcb14893f44fed1f9c603"
    "294b05ef0073ba2db4f5491135bf0620b00f2171c861e2dd41a0598601"
)


def test_the_chunk_format_is_pinned():
    rows, group = pinned_rows()
    kept, _, reference = counters_and_their_pod(6)
    assert chunks.decode(PINNED) == rows
    assert chunks.decode(PINNED_GROUP) == group
    assert chunks.decode(PINNED_KEPT, reference=reference) == kept
    # The same bytes, compressed at whatever level.
    assert zstd.decompress(chunks.encode(rows, 4)) == zstd.decompress(PINNED)
    assert zstd.decompress(chunks.encode(group, 1)) == zstd.decompress(PINNED_GROUP)
    assert zstd.decompress(chunks.encode(kept, 4, reference)) == zstd.decompress(PINNED_KEPT)


class Cluster:
    """The same writes into two stores: one seals its finished spans, the other never."""

    def __init__(self, tmp_path, monkeypatch):
        self.monkeypatch = monkeypatch
        self.clock = Clock(H0)
        self.sealing = SqliteStorage(tmp_path / "sealing.db", clock=self.clock)
        self.open = SqliteStorage(tmp_path / "open.db", clock=self.clock)

    def write(self, *bodies):
        for store in (self.sealing, self.open):
            store.write(payloads(*bodies))

    def roll_up(self):
        """Rounds of the upkeep until sealing is done: a span is sealed by the round that
        finds no new row in it since the one before, within a budget of time a round."""
        for _ in range(2):
            self.sealing.roll_up()
            with self.monkeypatch.context() as patch:
                patch.setattr(sealed, "SEAL_AFTER", 10**9)
                self.open.roll_up()
        while self.sealing.upkeep.seal():
            pass

    def close(self):
        self.sealing.close()
        self.open.close()


def hour(cluster, h, skip=()):
    for b in range(0, 360, 3):
        for n in range(NODES):
            if (n, b) in skip:
                continue
            pods = [
                (f"p{n}-{i}", f"ns{i % 2}", round((h * 360 + b) * 0.001 + n + i / 7, 9))
                for i in range(PODS)
            ]
            body = node_payload(
                f"n{n}",
                H0 + h * 3600 + 10 * b + n,
                pods,
                cpu_cores=round(b / 360 + n, 9),
                memory_used_bytes=4096 * (1000 + b % 13),
            )
            for pod in body["pods"]:
                # Its one container's figures are most of the pod's (so that its chunks are
                # kept against the pod's).
                memory = 4096 * (5000 + (b * 7 + n) % 11)
                (container,) = pod["containers"]
                container["cpu_cores"] = round(max(0.0, pod["cpu_cores"] - 0.000125), 9)
                container["memory_working_set_bytes"] = memory
                pod["memory_working_set_bytes"] = memory + 712_704
            cluster.write(body)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    cluster = Cluster(tmp_path, monkeypatch)
    for h in range(HOURS):
        # a gap: node 1 down for the last ten minutes of the first hour
        hour(cluster, h, skip={(1, b) for b in range(300, 360, 3)} if h == 0 else ())
        cluster.clock.now = H0 + (h + 1) * 3600 + 120
        cluster.roll_up()
    cluster.clock.now = H0 + HOURS * 3600 + 3600  # the last hour ended long enough ago
    cluster.roll_up()
    yield cluster
    cluster.close()


def answers(store):
    """Every kind's entities, latest values and series over raw, 1 min and 1 h spans."""
    found = []
    spans = [
        Span(H0, H0 + HOURS * 3600, 10),
        Span(H0 + 3000, H0 + 3900, 30, "max"),
        Span(H0, H0 + HOURS * 3600, 60, "avg"),
        Span(H0, H0 + HOURS * 3600, 300, "last"),
        Span(H0, H0 + HOURS * 3600, 3600, "min"),
        Span(H0 + 3300, H0 + 3500, 10),  # node 1's gap
    ]
    for kind in EntityKind:
        entities = store.entities(kind)
        names = tuple(n for n in NAMES if n in columns(kind))
        found.append([(e.kind, e.id, e.identity, e.last_bucket) for e in entities])
        found.append(store.latest(entities, names))
        for span in spans:
            found.append(store.entities(kind, span=span))
            found.append(store.series(entities, names, span))
    return found


def sealed_spans(store, table, res=BUCKET):
    conn = store.db.reader()
    return conn.execute(
        "SELECT count(*) FROM chunk WHERE tbl = ? AND res = ?", (table, res)
    ).fetchone()[0]


def test_sealed_spans_answer_as_open_ones(cluster):
    for table in ("node_sample", "pod_sample", "ctr_sample", "grp_sample"):
        assert sealed_spans(cluster.sealing, table) > 0, table
        assert sealed_spans(cluster.open, table) == 0
    assert sealed_spans(cluster.sealing, "pod_rollup", 60) > 0
    # The containers' chunks are kept against their pods': they take less than the same rows
    # alone.
    conn = cluster.sealing.db.reader()
    for table, res in (("ctr_sample", BUCKET), ("ctr_rollup", 60)):
        query = "SELECT id, start, v FROM chunk WHERE tbl = ? AND res = ?"
        stored = {(eid, start): v for eid, start, v in conn.execute(query, (table, res))}
        rows = sealed.sealed_rows(conn, table, res, H0, H0 + HOURS * 3600)
        alone = [
            chunks.encode(
                sorted(
                    (bucket, *row)
                    for (of, bucket), row in rows.items()
                    if of == eid and start <= bucket < start + sealed.SPAN[res]
                ),
                4,
            )
            for eid, start in stored
        ]
        assert sum(map(len, stored.values())) < sum(map(len, alone)), (table, res)
    # /metrics counts sealed bytes in their tiers
    figures = cluster.sealing.size.measure()
    assert figures["bytes_raw"] > 0 and figures["bytes_1m"] > 0 and figures["bytes_1h"] > 0
    assert answers(cluster.sealing) == answers(cluster.open)
    assert kept(cluster.sealing) == taken_at_once(cluster.sealing) == kept(cluster.open)


def write_late(cluster):
    """Node 1's gap filled, late; node 0 sends a bucket again without two of its pods; a pod
    of node 2 moves to another namespace."""
    for b in range(300, 306):
        cluster.write(node_payload("n1", H0 + 10 * b + 1, [("p1-0", "ns0", 9.5)], cpu_cores=3.0))
    cluster.write(node_payload("n0", H0 + 600, [("p0-0", "ns0", 7.25)], cpu_cores=0.5))
    cluster.write(node_payload("n2", H0 + 7200 + 2, [("p2-1", "moved", 1.0)]))


def test_late_samples_into_sealed_spans_count_as_in_open_ones(cluster):
    write_late(cluster)
    assert answers(cluster.sealing) == answers(cluster.open)
    assert kept(cluster.sealing) == taken_at_once(cluster.sealing)
    cluster.roll_up()  # the late rows rolled up again and merged into their chunks
    conn = cluster.sealing.db.reader()
    for table in ("node_sample", "pod_sample", "ctr_sample", "grp_sample"):
        query = f"SELECT count(*) FROM {table} WHERE bucket < ?"
        (left,) = conn.execute(query, (H0 + HOURS * 3600,)).fetchone()
        assert left == 0, table
    assert answers(cluster.sealing) == answers(cluster.open)
    assert kept(cluster.sealing) == taken_at_once(cluster.sealing) == kept(cluster.open)


def test_one_pass_over_a_span_answers_as_a_lookup_per_entity(cluster, monkeypatch):
    # Many entities of a table are read in one pass over the span, a few by a lookup of each
    # one's each bucket; either way a late row in the head takes the place of its sealed one.
    write_late(cluster)
    found = {}
    for one_pass in (False, True):
        monkeypatch.setattr(sealed, "_most_of", lambda *_, one_pass=one_pass: one_pass)
        found[one_pass] = answers(cluster.sealing), answers(cluster.open)
    assert found[True] == found[False]
    assert found[True][0] == found[True][1]


def test_sealed_spans_expire_whole(cluster):
    for store in (cluster.sealing, cluster.open):
        store.retention[BUCKET] = 2 * 3600
    cluster.clock.now = H0 + 4 * 3600 + 5
    for store in (cluster.sealing, cluster.open):
        store.expire()
    oldest, _ = sealed.held(cluster.sealing.db.reader(), "pod_sample", BUCKET)
    assert oldest == H0 + 7200
    assert answers(cluster.sealing) == answers(cluster.open)


def test_chunks_are_dropped_a_budget_of_bytes_at_a_time(cluster):
    # A budget that one chunk spends drops one chunk a call; the calls that follow drop the
    # rest, trimmed or deleted, exactly as one call given room for all.
    store = cluster.sealing
    chunks_of = "SELECT tbl, res, id, start, first, last, v FROM chunk ORDER BY 1, 2, 3, 4"
    for trim, upto in ((True, H0 + 1800), (False, H0 + 7200)):
        whole = sqlite3.connect(":memory:")
        store.db.reader().backup(whole)
        sealed.drop_before(whole, "pod_sample", BUCKET, upto, 1 << 40, trim)
        (due,) = (
            store.db.reader()
            .execute(
                f"SELECT count(*) FROM chunk WHERE tbl = 'pod_sample' AND res = 10"
                f" AND {'first' if trim else 'last'} < ?",
                (upto,),
            )
            .fetchone()
        )
        calls, taken = 0, 1
        while taken >= 1:
            _, taken = store.db.transaction(
                lambda conn, trim=trim, upto=upto: sealed.drop_before(
                    conn, "pod_sample", BUCKET, upto, 1, trim
                )
            )
            calls += 1
        assert due > 1 and calls == due + 1
        assert (
            store.db.reader().execute(chunks_of).fetchall() == whole.execute(chunks_of).fetchall()
        )
        whole.close()


def test_a_span_still_taking_rows_waits_to_be_sealed(tmp_path):
    clock = Clock(H0 + 2 * 3600)
    store = SqliteStorage(tmp_path / "s.db", clock=clock)
    try:

        def send(b):
            store.write(payloads(node_payload("n1", H0 + 10 * b, [("p", "ns", b / 10)])))

        send(0)
        store.roll_up()  # the first round finds the span's rows
        send(1)  # a backlog still arriving
        store.roll_up()
        assert sealed_spans(store, "pod_sample") == 0
        store.roll_up()  # nothing new since the last round
        while store.upkeep.seal():  # the rounds after it, where its budget ran out
            pass
        assert sealed_spans(store, "pod_sample") == 1
        (head,) = store.db.reader().execute("SELECT count(*) FROM pod_sample").fetchone()
        assert head == 0
    finally:
        store.close()
