"""Namespace, deployment and cluster sums: kept as their members' rows are written, replaced
and dropped, and always equal, to the last bit, to the sums of the same rows taken at once
(`sums.bucket_sums`) — late samples, a bucket sent again, a pod that changes its groups, two
writers, a file migrated from float sums."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_payloads import T0, Clock, node_payload, payloads

from cloudmon.storage.base import BUCKET, Span
from cloudmon.storage.model import GROUP_SUM, EntityKind
from cloudmon.storage.sqlite import SqliteStorage, sealed
from cloudmon.storage.sqlite.codec import pack, pack_sum, unpack_sum
from cloudmon.storage.sqlite.schema import GROUP_KIND
from cloudmon.storage.sqlite.sums import bucket_sums

SPAN = Span(T0, T0 + 50, 10)


def awkward(i: int) -> float:
    return 1 / (i + 3) + 0.1  # float sums of these depend on the order they are added in


@pytest.fixture
def clock():
    return Clock(T0 + 55)  # after what `fill` writes


@pytest.fixture
def store(tmp_path, clock):
    store = SqliteStorage(tmp_path / "s.db", clock=clock)
    yield store
    store.close()


def fill(store, namespaces=2):
    """Three nodes, six buckets, pods of some namespaces spread over the nodes."""
    for b in range(6):
        for n in range(3):
            pods = [(f"p{n}-{i}", f"ns{i % namespaces}", awkward(b + n + i)) for i in range(5)]
            store.write(payloads(node_payload(f"n{n}", T0 + 10 * b + n, pods, awkward(b * n))))


def rows(store, table: str) -> dict[int, dict[int, bytes]]:
    """Every bucket's rows of a table, {bucket: {id: v}}, sealed or not."""
    conn = store.db.reader()
    oldest, newest = sealed.held(conn, table, BUCKET)
    found: dict[int, dict[int, bytes]] = {}
    if oldest is None:
        return found
    for (eid, bucket), (v, _) in sealed.sealed_rows(conn, table, BUCKET, oldest, newest).items():
        found.setdefault(bucket, {})[eid] = v
    for bucket, eid, v in conn.execute(f"SELECT bucket, id, v FROM {table}"):
        found.setdefault(bucket, {})[eid] = v
    return found


def kept(store) -> dict[int, dict[int, list[int]]]:
    """Every bucket's group vectors as the store keeps them (sealed or not)."""
    return {
        bucket: {gid: unpack_sum(blob) for gid, blob in groups.items()}
        for bucket, groups in rows(store, "grp_sample").items()
    }


def taken_at_once(store) -> dict[int, dict[int, list[int]]]:
    """Every bucket's group vectors taken from its members' rows at once."""
    conn = store.db.reader()
    ids = {
        (kind, ns, name): gid
        for gid, kind, ns, name in conn.execute("SELECT id, kind, namespace, name FROM grp")
    }

    def group_id(kind, namespace, name):
        return ids[GROUP_KIND[kind], namespace, name]

    members = {table: rows(store, table) for table in ("node_sample", "pod_sample")}
    found = {}
    for bucket in members["node_sample"]:

        def rows_of(table, bucket=bucket):
            return members[table].get(bucket, {}).items()

        found[bucket] = bucket_sums(conn, bucket, group_id, rows_of)
    return found


def exact(values) -> float:
    """A sum of cores as a group's sum is defined: each value in nanocores."""
    return sum(round(v * 10**9) for v in values) / 10**9


def namespace_cpu(store, namespace: str) -> list:
    entities = store.entities("namespace", {"namespace": namespace})
    return store.series(entities, ("cpu_cores",), SPAN)[0]["cpu_cores"]


def test_kept_sums_are_the_sums_taken_at_once_and_answered_at_once(store):
    fill(store)  # nothing rolled up, nothing closed: answered from the kept rows
    assert kept(store) == taken_at_once(store)
    assert namespace_cpu(store, "ns0")[0] == exact(
        awkward(n + i) for n in range(3) for i in range(5) if i % 2 == 0
    )
    (latest,) = store.latest(store.entities("cluster"), ("node_count", "pod_count", "cpu_cores"))
    assert latest["metrics"] == {
        "node_count": 3,
        "pod_count": 15,
        "cpu_cores": exact(awkward(5 * n) for n in range(3)),
    }


def test_a_one_pod_group_answers_its_pod_to_the_nanocore(store):
    store.write(payloads(node_payload("n1", T0, [("a", "solo", 0.123456789012345)])))
    assert namespace_cpu(store, "solo")[0] == 0.123456789


def test_a_late_sample_counts_at_once(store, clock):
    fill(store)
    clock.now = T0 + 3600
    store.roll_up()
    store.write(payloads(node_payload("n9", T0 + 5, [("late", "ns0", 100.0)], cpu_cores=50.0)))
    assert namespace_cpu(store, "ns0")[0] == exact(
        [100.0, *(awkward(n + i) for n in range(3) for i in range(5) if i % 2 == 0)]
    )
    assert kept(store) == taken_at_once(store)


def test_a_node_sending_a_bucket_again_replaces_its_part(store):
    fill(store)
    first = namespace_cpu(store, "ns1")[0]
    store.write(payloads(node_payload("n0", T0, [("p0-1", "ns1", 1000.0)])))  # p0-3 is gone
    expected = first - awkward(1) - awkward(3) + 1000.0
    assert namespace_cpu(store, "ns1")[0] == pytest.approx(expected)
    assert kept(store) == taken_at_once(store)


def test_a_group_left_without_members_has_no_row(store):
    store.write(payloads(node_payload("n1", T0, [("a", "gone", 1.0), ("b", "kept", 1.0)])))
    store.write(payloads(node_payload("n1", T0, [("b", "kept", 2.0)])))
    assert namespace_cpu(store, "gone")[0] is None
    assert kept(store) == taken_at_once(store)


def test_a_pod_that_changes_its_groups_takes_its_rows_along(store, clock):
    quiet = node_payload("n1", T0, [("a", "ns", 1.0)])
    quiet["pods"][0].pop("deployment")  # no metadata yet: in its namespace, no deployment
    store.write(payloads(quiet))
    store.write(payloads(node_payload("n1", T0 + 10, [("a", "ns", 2.0)])))  # now in "app"
    (app,) = store.entities("deployment")
    series = store.series([app], ("cpu_cores", "pod_count"), SPAN)[0]
    assert series["cpu_cores"][:2] == [1.0, 2.0]
    assert series["pod_count"][:2] == [1, 1]
    assert store.entities("deployment", span=Span(T0, T0 + 5, 10)) == [app]  # its span too
    assert kept(store) == taken_at_once(store)


def test_a_writer_remembering_a_pod_s_old_groups_learns_of_the_move(tmp_path, clock):
    one = SqliteStorage(tmp_path / "s.db", clock=clock)
    two = SqliteStorage(tmp_path / "s.db", clock=clock)
    try:
        before = node_payload("n1", T0, [("a", "ns", 1.0)])
        before["pods"][0]["deployment"] = "old"
        one.write(payloads(before))
        two.write(payloads(node_payload("n1", T0 + 10, [("a", "ns", 2.0)])))  # moves to "app"
        again = node_payload("n1", T0, [("a", "ns", 3.0)])
        again["pods"][0]["deployment"] = "old"  # as `one` remembers it; the pod is in "app"
        one.write(payloads(again))
        assert kept(one) == taken_at_once(one)
    finally:
        one.close()
        two.close()


def test_a_pod_reported_without_its_groups_stays_in_them(tmp_path, clock):
    # The pod table keeps a pod's namespace and deployment when a payload has none (the
    # agent lost its metadata): its rows go on counting in those groups.
    store = SqliteStorage(tmp_path / "s.db", clock=clock)
    try:
        store.write(payloads(node_payload("n1", T0, [("a", "ns", 1.0), ("b", "ns", 2.0)])))
        bare = node_payload("n1", T0 + 10, [("a", None, 3.0), ("b", "ns", 4.0)])
        store.write(payloads(bare))
        assert kept(store) == taken_at_once(store)
        # members: the cluster's node; both pods in the namespace and in the deployment
        assert sorted(vector[-1] for vector in kept(store)[T0 + 10].values()) == [1, 2, 2]
    finally:
        store.close()


def test_a_sum_beyond_64_bits_is_kept_exactly():
    vector = [10**30, 5, 7]
    assert unpack_sum(pack_sum(vector)) == vector
    assert unpack_sum(pack_sum([1, -2, 3])) == [1, -2, 3]


def test_a_file_with_float_sums_is_migrated_to_exact_ones(tmp_path, clock):
    path = tmp_path / "s.db"
    store = SqliteStorage(path, clock=clock)
    fill(store)
    expected = kept(store)
    answers = namespace_cpu(store, "ns0")
    with store.db.writing() as conn:  # as version 5 left it: float sums, taken at close
        for bucket, gid, blob in conn.execute("SELECT * FROM grp_sample").fetchall():
            kind = EntityKind.CLUSTER if gid == 1 else EntityKind.NAMESPACE
            floats = pack(GROUP_SUM[kind].answer(unpack_sum(blob)))
            conn.execute(
                "UPDATE grp_sample SET v = ? WHERE bucket = ? AND id = ?", (floats, bucket, gid)
            )
        # the last three buckets not closed yet, one a late sample changed since
        conn.execute("DELETE FROM grp_sample WHERE bucket >= ? OR bucket = ?", (T0 + 30, T0))
        conn.execute("INSERT INTO rollup_state VALUES (10, ?)", (T0 + 30,))
        conn.execute("INSERT INTO rollup_dirty VALUES (10, ?)", (T0,))
        conn.execute("DROP TABLE pod_moves")
        conn.execute("DROP TABLE rollup_stale")
        conn.execute("DROP TABLE rollup_late")
        conn.execute("DROP TABLE size_deleted")
        conn.execute("DROP INDEX pod_by_node")
        conn.execute("DROP TABLE chunk")
        conn.execute("DROP TABLE usage_day")
        conn.execute("DROP TABLE usage_backfill")
        conn.execute("PRAGMA user_version = 5")
    store.close()
    store = SqliteStorage(path, clock=clock)
    try:
        assert kept(store) == expected
        assert namespace_cpu(store, "ns0") == answers
        assert (
            store.db.reader().execute("SELECT * FROM rollup_state WHERE res = 10").fetchall() == []
        )
    finally:
        store.close()


NAMESPACES = st.sampled_from(["a", "b", None])
DEPLOYMENTS = st.sampled_from(["x", "y", None])
VALUES = st.one_of(st.none(), st.floats(0, 64, allow_nan=False), st.integers(0, 1 << 40))
POD = st.tuples(st.integers(0, 5), NAMESPACES, DEPLOYMENTS, VALUES, VALUES)
WRITE = st.tuples(st.integers(0, 2), st.integers(0, 3), st.lists(POD, max_size=5))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=st.lists(WRITE, min_size=1, max_size=12))
def test_any_writes_keep_the_sums_taken_at_once(tmp_path_factory, writes):
    """Nodes send buckets in any order, again, with pods that come, go and change groups,
    with values and without: the kept sums are always those taken at once."""
    store = SqliteStorage(tmp_path_factory.mktemp("s") / "s.db", clock=Clock(T0 + 3600))
    try:
        for node, bucket, pods in writes:
            body = node_payload(f"n{node}", T0 + 10 * bucket, [])
            body["pods"] = [
                {
                    "uid": f"p{uid}",
                    "namespace": namespace,
                    "deployment": deployment,
                    "cpu_cores": cpu,
                    "memory_working_set_bytes": None if memory is None else int(memory),
                    "cpu_limit_cores": cpu,
                }
                for uid, namespace, deployment, cpu, memory in {p[0]: p for p in pods}.values()
            ]
            body["pods"] = [{k: v for k, v in p.items() if v is not None} for p in body["pods"]]
            store.write(payloads(body))
        assert kept(store) == taken_at_once(store)
        for kind in (EntityKind.NAMESPACE, EntityKind.DEPLOYMENT, EntityKind.CLUSTER):
            for answer in store.latest(store.entities(kind), GROUP_SUM[kind].summed):
                assert json.dumps(answer)  # every vector answers
    finally:
        store.close()
