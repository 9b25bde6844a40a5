"""Two `cloudmon server` replicas on one engine (Prometheus, VictoriaMetrics) hold no state
of their own: what is ingested through one is answered alike by the other."""

import time

import pytest
from fixtures.prometheus import running_prometheus, store_url
from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest
from fixtures.victoriametrics import victoriametrics  # noqa: F401

PATHS = (
    "/api/cluster",
    "/api/nodes",
    "/api/nodes/n1",
    "/api/pods?namespace=shop",
    "/api/namespaces/shop",
    "/api/namespaces/shop/pods",
    "/api/pods/shop/n1-pod-0",
)


@pytest.fixture(params=["prometheus", "victoriametrics"])
def engine(request, tmp_path):
    if request.param == "victoriametrics":
        yield request.getfixturevalue(request.param)
    else:  # samples of now: a Prometheus of its own (see shared_prometheus)
        (tmp_path / "prometheus").mkdir()
        with running_prometheus(tmp_path / "prometheus") as prometheus:
            yield prometheus


def test_ingest_through_one_replica_read_through_the_other(engine, tmp_path):
    url = store_url(engine)
    replicas = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(ServerProcess(tmp_path / name, "--storage", url, workers=2).start())
        first, second = replicas
        now = time.time()
        status, _, answer = post_ingest(
            first.url, node_payload("n1", now, pods=3, namespace="shop", value=7)
        )
        assert status == 200, answer
        engine.flush()
        bucket = int(now // 10 * 10)
        node = get_json(second.url + "/api/nodes/n1")
        assert (node["timestamp"], node["metrics"]["memory_used_bytes"]) == (bucket, 7)
        namespace = get_json(second.url + "/api/namespaces/shop")["metrics"]
        assert (namespace["memory_working_set_bytes"], namespace["pod_count"]) == (21, 3)
        # A span given by its ends: a window would end where each replica's clock stands.
        span = f"start={bucket - 50}&end={bucket + 9}&step=10s"
        for path in (*PATHS, f"/api/namespaces/shop?{span}"):
            assert get_json(first.url + path) == get_json(second.url + path), path
        # And the other way round, the next bucket through the second replica.
        status, _, answer = post_ingest(
            second.url, node_payload("n2", now + 10, pods=1, namespace="shop", value=5)
        )
        assert status == 200, answer
        engine.flush()
        # The latest values are those of buckets begun: until the clock reaches the next
        # bucket, n2's is not, and a replica asked a moment later could answer otherwise.
        time.sleep(max(0.0, bucket + 10 - time.time()))
        nodes = get_json(first.url + "/api/nodes")["items"]
        assert sorted(item["node"] for item in nodes) == ["n1", "n2"]
        for path in PATHS:
            assert get_json(first.url + path) == get_json(second.url + path), path
    finally:
        for replica in replicas:
            replica.stop()
