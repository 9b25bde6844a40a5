"""The Prometheus store: its wire format, its HTTP behaviour, and its answers on each engine
(Prometheus, VictoriaMetrics) against SQLite's on the same payloads."""

import base64
import contextlib
import errno
import http.server
import itertools
import math
import threading
import time
from typing import ClassVar

import pytest
from fixtures.prometheus import STORES, running_prometheus
from fixtures.victoriametrics import VictoriaMetricsProcess
from store_payloads import T0, Clock, payloads

from cloudmon.storage import open_storage
from cloudmon.storage.base import _BACKENDS, BUCKET, EngineError, Span, bucket_of
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.prometheus import PrometheusStorage, remote_write
from cloudmon.storage.prometheus.encoder import SeriesEncoder, sample_time
from cloudmon.storage.prometheus.reader import SUBQUERY_POINTS

ENGINES = sorted(set(STORES) - {"sqlite"})


def test_every_registered_scheme_is_tested():
    assert sorted(itertools.chain(*STORES.values())) == sorted(_BACKENDS)


def test_cached_series_encode_as_protobuf_does():
    labels = (("namespace", "shop"), ("uid", "u-1"))
    encoder = SeriesEncoder()
    # A value missing (a series at a time), then all there (packed at once), cached or not.
    calls = [
        (("a", "c"), (0.5, None), 1_764_100_000_001),
        (("b", "a"), (2.0, 7), 1_764_100_010_002),
        (("b", "a"), (4.0, 3.5), 1_764_100_020_003),
        (("a",), (3.5,), 1),
    ]
    parts = []
    samples = []
    for names, values, ms in calls:
        tail = SeriesEncoder.timestamp_field(ms)
        present = [
            (name, value) for name, value in zip(names, values, strict=True) if value is not None
        ]
        assert encoder.add(parts, labels, tail, names, values) == len(present)
        samples += [(name, value, ms) for name, value in present]
    encoded = b"".join(parts)
    expected = remote_write.write_request(
        ((("__name__", name), *labels), [(value, ms)]) for name, value, ms in samples
    )
    assert encoded == expected.SerializeToString()
    assert remote_write.decode(remote_write.compress(encoded)) == expected


def test_samples_lie_inside_their_bucket():
    assert sample_time(T0) == T0 * 1000 + 1
    assert sample_time(T0 + 2.5) == T0 * 1000 + 2500
    assert sample_time(T0 + 9.9999) == T0 * 1000 + 9999


def pod(uid, name, namespace, deployment=None, node_metrics=None, **metrics):
    return {
        "uid": uid,
        "name": name,
        "namespace": namespace,
        "deployment": deployment,
        "workload_kind": "Deployment" if deployment else None,
        "workload": deployment,
        "qos": "burstable",
        "containers": [
            {"id": f"{uid}-c", "name": "main", "cpu_cores": metrics.get("cpu_cores")},
            {"id": f"{uid}-n", "name": None, "memory_usage_bytes": 5},  # no metadata: no name
        ],
        **metrics,
    }


def report(node, timestamp, pods, **metrics):
    return {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": 4, "kernel": "6.1.0", "cgroup_version": 2},
        "node_metrics": {"pod_count": len(pods), **metrics},
        "pods": pods,
    }


@pytest.fixture
def opened():
    """open_storage, the stores closed after the test."""
    stores = []

    def open_one(url, **options):
        stores.append(open_storage(url, **options))
        return stores[-1]

    yield open_one
    for store in stores:
        store.close()


@pytest.fixture(params=ENGINES)
def engine_store(request):
    """A store of its own in each engine."""
    store = request.getfixturevalue(request.param).open_store(clock=Clock(T0 + 25))
    yield store
    store.close()


def test_metric_and_label_names_follow_prometheus_conventions(engine_store):
    store = engine_store
    body = report(
        "n1",
        T0 + 3,
        [pod("u-1", "web-1", "shop", "web", cpu_usage_seconds_total=12.5)],
        memory_used_bytes=1000,
    )
    # The pod's and its two containers' CPU counters and memory, the node's memory and CPUs.
    assert store.write(payloads(body)) == 5
    cluster = {"cluster": store.cluster}
    instant = store.client.instant
    (counter,) = instant(
        f'cloudmon_pod_cpu_usage_seconds_total{{cluster="{store.cluster}"}}', T0 + 5
    )
    assert counter["metric"] == {
        "__name__": "cloudmon_pod_cpu_usage_seconds_total",
        **cluster,
        "namespace": "shop",
        "pod": "web-1",
        "uid": "u-1",
        "node": "n1",
        "deployment": "web",
        "workload_kind": "Deployment",
        "workload": "web",
    }
    assert counter["value"] == [T0 + 5, "12.5"]
    seen = instant(f'{{__name__=~".*_seen_.*",cluster="{store.cluster}"}}', T0 + 5)
    assert {item["metric"]["__name__"]: item["value"][1] for item in seen} == {
        "cloudmon_node_seen_timestamp_seconds": str(T0),
        "cloudmon_pod_seen_timestamp_seconds": str(T0),
        "cloudmon_container_seen_timestamp_seconds": str(T0),
    }
    (node,) = (item["metric"] for item in seen if "kernel" in item["metric"])
    assert (node["kernel"], node["cpu_count"], node["cgroup_version"]) == ("6.1.0", "4", "2")
    # Written 3 s into its bucket: an evaluation at the bucket's start does not see it yet.
    assert instant(f"cloudmon_node_memory_used_bytes{{cluster='{store.cluster}'}}", T0) == []


# Three nodes over a minute and a half: pods come, go and move; a node misses buckets.
HISTORY = [
    report("n1", T0 + 1, [pod("a", "a", "shop", "web", cpu_cores=0.5, memory_usage_bytes=100)]),
    report("n2", T0 + 4, [pod("b", "b", "shop", "web", cpu_cores=0.25)], cpu_cores=2.0),
    report(
        "n1",
        T0 + 11,
        [
            pod("a", "a", "shop", "web", cpu_cores=1.5, memory_usage_bytes=300),
            pod("c", "c", "kube-system", None, cpu_cores=0.1),
        ],
        cpu_cores=1.0,
        load1=0.5,
    ),
    report("n3", T0 + 19, [pod("d", "d", "shop", "api", cpu_cores=2.0)], cpu_cores=3.0),
    report("n1", T0 + 32, [pod("c", "c", "kube-system", None, cpu_cores=0.3)], cpu_cores=0.5),
    report("n2", T0 + 45, [pod("b", "b", "shop", "web", cpu_cores=0.75)], cpu_cores=1.5),
    report("n2", T0 + 61, [pod("a", "a", "shop", "web", cpu_cores=1.0)], cpu_cores=1.25),
    report("n3", T0 + 88, [], cpu_cores=0.2),
]
SPANS = [
    Span(T0, T0 + 90, 10),
    Span(T0 - 15, T0 + 95, 20),
    Span(T0 + 5, T0 + 75, 30),
    Span(T0 + 3, T0 + 41, 60),
    Span(T0 + 20, T0 + 35, 10),
    Span(T0 + 100, T0 + 200, 50),
    # Spans reaching years before the samples: groups are summed from the first bucket held.
    Span(T0 - 5 * 365 * 86400, T0 + 95, 86400),
    Span(T0 - 365 * 86400, T0 + 200, 7 * 86400),
]


@pytest.fixture(scope="module", params=ENGINES)
def stores(request, tmp_path_factory):
    """SQLite and the Prometheus store on one engine, holding the same HISTORY."""
    clock = Clock(T0 + 90)
    directory = tmp_path_factory.mktemp("sqlite")
    pair = {
        "sqlite": open_storage(f"sqlite:///{directory}/store.db", clock=clock),
        "engine": request.getfixturevalue(request.param).open_store(clock=clock),
    }
    for body in HISTORY:
        for store in pair.values():
            store.write(payloads(body))
    yield pair
    for store in pair.values():
        store.close()


def answers(store, kind, span=None):
    entities = store.entities(kind, span=span)
    found = [(e.identity, e.last_bucket, e.info) for e in entities]
    return found, entities


@pytest.mark.parametrize("kind", list(EntityKind))
def test_same_entities_and_latest_values_as_sqlite(stores, kind):
    sqlite, engine = (answers(stores[name], kind) for name in ("sqlite", "engine"))
    assert engine[0] == sqlite[0]
    assert sqlite[0], "the history reports every kind"
    names = columns(kind)
    latest = stores["engine"].latest(engine[1], names)
    assert latest == stores["sqlite"].latest(sqlite[1], names)
    # The engine is asked for the series that the names asked for need, and no more.
    for some in (*((name,) for name in names), names[-2:]):
        assert stores["engine"].latest(engine[1], some) == stores["sqlite"].latest(sqlite[1], some)


@pytest.mark.parametrize("kind", list(EntityKind))
@pytest.mark.parametrize("span", SPANS, ids=lambda s: f"{s.start - T0}-{s.end - T0}-by-{s.step}")
@pytest.mark.parametrize("agg", ["avg", "max", "min", "last", "sum"])
def test_same_series_as_sqlite(request, stores, kind, span, agg):
    span = Span(span.start, span.end, span.step, agg)
    sqlite, engine = (answers(stores[name], kind, span) for name in ("sqlite", "engine"))
    assert engine[0] == sqlite[0]
    names = columns(kind)
    if (
        request.node.callspec.params["stores"] == "victoriametrics"
        and kind in (EntityKind.NAMESPACE, EntityKind.DEPLOYMENT, EntityKind.CLUSTER)
        and span.step > SUBQUERY_POINTS * BUCKET
    ):
        # A group's step is folded by one 10 s subquery, of more points than 1.79 computes.
        with pytest.raises(EngineError, match="maxPointsPerTimeseries"):
            stores["engine"].series(engine[1], names, span)
        return
    got = stores["engine"].series(engine[1], names, span)
    expected = stores["sqlite"].series(sqlite[1], names, span)
    if agg != "avg":
        assert got == expected
        return
    # Prometheus's avg_over_time is a running mean (Kahan-compensated), SQLite's the sum over
    # the count: they may differ in the last bit.
    assert len(got) == len(expected)
    for series, wanted in zip(got, expected, strict=True):
        assert series.keys() == wanted.keys()
        for name, values in wanted.items():
            assert len(series[name]) == len(values)
            for value, want in zip(series[name], values, strict=True):
                assert (value, want) == (None, None) or math.isclose(value, want, rel_tol=1e-15)


def test_many_entities_at_once_as_sqlite(engine_store, tmp_path):
    """The matchers naming 400 pods (uids of 36 characters) are longer than VictoriaMetrics
    takes in one query (16 KiB)."""
    sqlite = open_storage(f"sqlite:///{tmp_path}/store.db", clock=engine_store._clock)
    try:
        for offset in (1, 11):
            pods = [
                pod(f"{i:08d}-0000-4000-8000-000000000000", f"p{i}", "shop", cpu_cores=i + offset)
                for i in range(400)
            ]
            for store in (sqlite, engine_store):
                store.write(payloads(report("n1", T0 + offset, pods)))
        span = Span(T0, T0 + 20, 10)
        for kind in (EntityKind.POD, EntityKind.CONTAINER):
            entities = engine_store.entities(kind)
            expected = sqlite.entities(kind)
            assert [e.identity for e in entities] == [e.identity for e in expected]
            assert len(entities) >= 400
            names = columns(kind)
            assert engine_store.latest(entities, names) == sqlite.latest(expected, names)
            assert engine_store.series(entities, names, span) == sqlite.series(
                expected, names, span
            )
    finally:
        sqlite.close()


@pytest.mark.parametrize("kind", [EntityKind.NAMESPACE, EntityKind.CLUSTER])
def test_group_series_over_days_as_sqlite(stores, kind):
    """Series of groups are folded by a subquery at 10 s, whose points per query
    VictoriaMetrics bounds (30,000 in 1.79: 3.5 days)."""
    span = Span(T0 - 8 * 86400, T0 + 95, 3600, "max")
    sqlite, engine = (answers(stores[name], kind, span) for name in ("sqlite", "engine"))
    assert engine[0] == sqlite[0]
    got = stores["engine"].series(engine[1], ["cpu_cores"], span)
    assert got == stores["sqlite"].series(sqlite[1], ["cpu_cores"], span)
    assert got[0]["cpu_cores"][-1] is not None


def test_same_answers_as_sqlite_up_to_the_engines_clock(request, tmp_path):
    """Spans ending now, asked for within a second of a bucket's end, when VictoriaMetrics
    shifts or replaces the points nearest its clock unless asked otherwise; containers with
    and without a name listed in the same order."""
    now = time.time()
    current = bucket_of(now)
    history = [
        report(node, current - age + 2, [pod(node, node, "shop", "web", cpu_cores=value)])
        for age, value in ((30, 1.0), (20, 2.0), (10, 3.0), (0, 4.0))
        for node in ("n1", "n2")
    ]
    with contextlib.ExitStack() as stack:
        engines = {
            "prometheus": stack.enter_context(running_prometheus(tmp_path)),  # samples of now
            "victoriametrics": request.getfixturevalue("victoriametrics"),
        }
        sqlite = open_storage(f"sqlite:///{tmp_path}/store.db", clock=time.time)
        stores = {"sqlite": stack.enter_context(contextlib.closing(sqlite))}
        for name, engine in engines.items():
            store = engine.open_store(clock=time.time)
            stores[name] = stack.enter_context(contextlib.closing(store))
        for store in stores.values():
            store.write(payloads(*history))
        while 0.8 <= time.time() % BUCKET <= BUCKET - 0.8:  # within 0.8 s of a bucket's end
            time.sleep(0.05)
        end = int(time.time())
        spans = [Span(end - 40, end, 10, "max"), Span(end - 50, end, 20, "avg")]
        for kind in EntityKind:
            got = {}
            for name, store in stores.items():
                entities = store.entities(kind)
                answers = zip(
                    store.latest(entities, columns(kind)),
                    *(store.series(entities, columns(kind), span) for span in spans),
                    strict=True,
                )
                got[name] = [(e.identity, a) for e, a in zip(entities, answers, strict=True)]
            assert got["sqlite"], kind
            for name, answer in got.items():
                assert answer == got["sqlite"], (kind, name)


class FakeEngine(http.server.BaseHTTPRequestHandler):
    """Answers each remote-write POST with the next status of `statuses`."""

    statuses: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, dict(self.headers)))
        status = type(self).statuses.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"nope\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def engine():
    FakeEngine.statuses, FakeEngine.seen = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeEngine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", FakeEngine
    server.shutdown()
    server.server_close()


BODY = report("n1", T0, [pod("a", "a", "shop", cpu_cores=0.5)], cpu_cores=1.0)


def test_write_retries_5xx_and_429(engine, opened):
    address, fake = engine
    fake.statuses += [503, 429, 204]
    waits = []
    store = opened(f"prometheus+http://{address}/prefix?retries=2", sleep=waits.append)
    assert store.write(payloads(BODY)) == 6  # node: 3; pod and container CPU, a memory
    assert [path for path, _ in fake.seen] == ["/prefix/api/v1/write"] * 3
    assert waits == [0.1, 0.2]  # seconds, doubling
    headers = fake.seen[0][1]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"


def test_write_the_engine_keeps_refusing_is_eagain(engine, opened):
    address, fake = engine
    fake.statuses += [500, 500]
    waits = []
    store = opened(f"prometheus+http://{address}?retries=1", sleep=waits.append)
    with pytest.raises(OSError) as raised:
        store.write(payloads(BODY))
    assert raised.value.errno == errno.EAGAIN
    assert len(fake.seen) == 2
    assert waits == [0.1]  # none after the last attempt


def test_write_refused_as_bad_is_not_retried(engine, opened):
    address, fake = engine
    fake.statuses += [400]
    store = opened(f"prometheus+http://{address}")
    with pytest.raises(EngineError, match="400"):
        store.write(payloads(BODY))
    assert len(fake.seen) == 1


def test_unreachable_engine_is_eagain(opened):
    store = opened("prometheus+http://127.0.0.1:9?retries=1")
    with pytest.raises(OSError) as raised:
        store.write(payloads(BODY))
    assert raised.value.errno == errno.EAGAIN


def test_split_write_url_and_basic_auth(engine, opened, tmp_path):
    address, fake = engine
    fake.statuses += [204]
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    url = (
        f"prometheus+http://vmselect:8481/select/0/prometheus?username=cloudmon"
        f"&password_file={secret}&write_url=http://{address}/insert/0/prometheus/api/v1/write"
    )
    store = opened(url)
    assert store.client.read_endpoint.url == "http://vmselect:8481/select/0/prometheus"
    store.write(payloads(BODY))
    path, headers = fake.seen[0]
    assert path == "/insert/0/prometheus/api/v1/write"
    expected = base64.b64encode(b"cloudmon:s3cret").decode()
    assert headers["Authorization"] == f"Basic {expected}"


def test_bearer_token(engine, opened, tmp_path):
    address, fake = engine
    fake.statuses += [204]
    token = tmp_path / "token"
    token.write_text(" abc \n")
    opened(f"prometheus+http://{address}?bearer_token_file={token}").write(payloads(BODY))
    assert fake.seen[0][1]["Authorization"] == "Bearer abc"


@pytest.mark.parametrize(
    "url, message",
    [
        ("prometheus+http://", "expected"),
        ("prometheus+http://h:9090?colour=red", "unknown option 'colour'"),
        ("prometheus+http://h:9090?timeout=soon", "timeout is not a number"),
        ("prometheus+http://h:9090?cluster=a&cluster=b", "cluster given 2 times"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(ValueError, match=message):
        PrometheusStorage.from_url(url)


def test_an_entity_whose_labels_change_as_sqlite(engine_store, tmp_path):
    """A pod whose Deployment the agent learns later, and a container restarted (a new ID
    under its name), each have two sets of labels: over a step holding both, they count as
    one entity, as in SQLite."""
    sqlite = open_storage(f"sqlite:///{tmp_path}/store.db", clock=engine_store._clock)
    try:
        for offset, deployment, container_id, cpu in (
            (21, None, "first", 0.5),
            (31, None, "first", 3.0),
            (41, "web", "second", 1.0),
        ):
            learnt = pod("u", "web-1", "shop", deployment, cpu_cores=cpu)
            restarted = pod("v", "db-1", "shop", "db", cpu_cores=cpu)
            restarted["containers"][0]["id"] = container_id
            for store in (sqlite, engine_store):
                store.write(payloads(report("n1", T0 + offset, [learnt, restarted])))
        for kind, uid in ((EntityKind.POD, "u"), (EntityKind.CONTAINER, "v")):
            entities = [e for e in engine_store.entities(kind) if e.identity["uid"] == uid]
            expected = [e for e in sqlite.entities(kind) if e.identity["uid"] == uid]
            assert [e.identity for e in entities] == [e.identity for e in expected]
            names = columns(kind)
            assert engine_store.latest(entities, names) == sqlite.latest(expected, names)
            for agg in ("avg", "max", "min", "last", "sum"):
                for span in (Span(T0 + 20, T0 + 49, 30, agg), Span(T0 + 20, T0 + 49, 10, agg)):
                    got = engine_store.series(entities, names, span)
                    assert got == sqlite.series(expected, names, span), (kind, span)
                    if span.step == 30 and kind is EntityKind.POD:
                        assert got[0]["cpu_cores"] == [
                            {"avg": 1.5, "max": 3.0, "min": 0.5, "last": 1.0, "sum": 4.5}[agg]
                        ]
    finally:
        sqlite.close()


def test_lists_over_hours_as_sqlite(engine_store, tmp_path):
    """Entities that reported only before the last hour are found through the engine's index
    and read for themselves; those of the last hour are read whole."""
    same_lists_over_hours(engine_store, tmp_path)


def test_lists_over_hours_when_the_index_names_too_many(tmp_path):
    """VictoriaMetrics names at most -search.maxSeries series: past that, every report is
    read."""
    engine = VictoriaMetricsProcess(tmp_path, "-search.maxSeries=1").start()
    store = engine.open_store(clock=Clock(T0))
    try:
        same_lists_over_hours(store, tmp_path)
        assert "/api/v1/series" in engine.log_path.read_text()  # it did refuse
    finally:
        store.close()
        engine.stop()


def same_lists_over_hours(engine_store, tmp_path) -> None:
    clock = engine_store._clock
    sqlite = open_storage(f"sqlite:///{tmp_path}/store.db", clock=clock)
    try:
        later = T0 + 2 * 3600
        bodies = [
            report("n1", T0 + 1, [pod("a", "a", "shop", "web", cpu_cores=0.5)], cpu_cores=1.0),
            report("n2", T0 + 2, [pod("b", "b", "db", "pg", cpu_cores=0.25)], cpu_cores=2.0),
            report("n1", later + 1, [pod("a", "a", "shop", "web", cpu_cores=1.5)], cpu_cores=3.0),
        ]
        for store in (sqlite, engine_store):
            store.write(payloads(*bodies))
        clock.now = later + 30
        spans = [None, Span(T0 - 600, later + 20, 600), Span(T0 - 600, T0 + 3600, 600)]
        for kind in EntityKind:
            for span in spans:
                entities = engine_store.entities(kind, span=span)
                expected = sqlite.entities(kind, span=span)
                found = [(e.identity, e.last_bucket) for e in entities]
                assert found == [(e.identity, e.last_bucket) for e in expected], (kind, span)
                assert found, (kind, span)
                if span is not None:
                    names = columns(kind)
                    got = engine_store.series(entities, names, span)
                    assert got == sqlite.series(expected, names, span), (kind, span)
    finally:
        sqlite.close()
