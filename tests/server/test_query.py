import pytest
from server_payloads import T0, payload, pod

from cloudmon.server import query
from cloudmon.storage.sqlite import SqliteStorage

# Three nodes; namespace shop and deployment shop/web span nodes n1 and n2.
WEB_A = pod(
    "uid-web-a",
    "web-a",
    "shop",
    "web",
    cpu_cores=0.5,
    memory_usage_bytes=100,
    cpu_usage_seconds_total=1000.0,
)
WEB_B = pod(
    "uid-web-b",
    "web-b",
    "shop",
    "web",
    cpu_cores=0.25,
    memory_usage_bytes=200,
    cpu_usage_seconds_total=2000.0,
)
DB = pod("uid-db-0", "db-0", "shop", None, cpu_cores=1.0, memory_usage_bytes=300)
DNS = pod("uid-dns", "dns", "kube-system", "coredns", cpu_cores=0.125, memory_usage_bytes=50)


def cluster_of_three(ts):
    return [
        payload(
            "n1",
            ts,
            [WEB_A, DNS],
            cpu_count=4,
            cpu_cores=1.0,
            memory_used_bytes=1000,
            memory_total_bytes=4000,
        ),
        payload(
            "n2",
            ts,
            [WEB_B],
            cpu_count=8,
            cpu_cores=2.0,
            memory_used_bytes=2000,
            memory_total_bytes=8000,
        ),
        payload(
            "n3",
            ts,
            [DB],
            cpu_count=2,
            cpu_cores=0.5,
            memory_used_bytes=3000,
            memory_total_bytes=8000,
        ),
    ]


@pytest.fixture
def three(post):
    for body in cluster_of_three(T0 + 3):
        post(body)


def test_cluster_sums_nodes(client, three):
    answer = client.get("/api/cluster").json
    assert answer["timestamp"] == T0
    m = answer["metrics"]
    assert m["cpu_cores"] == 3.5
    assert m["cpu_capacity_cores"] == 14
    assert m["cpu_percent"] == 25.0
    assert m["memory_used_bytes"] == 6000
    assert m["memory_total_bytes"] == 20000
    assert m["memory_percent"] == 30.0
    assert m["node_count"] == 3
    assert m["pod_count"] == 4


def test_namespace_and_deployment_span_nodes(client, three):
    shop = client.get("/api/namespaces/shop").json
    assert shop["namespace"] == "shop"
    assert shop["metrics"]["cpu_cores"] == 1.75
    assert shop["metrics"]["memory_usage_bytes"] == 600
    assert shop["metrics"]["pod_count"] == 3
    web = client.get("/api/deployments/shop/web").json
    assert (web["namespace"], web["name"]) == ("shop", "web")
    assert web["metrics"]["cpu_cores"] == 0.75
    assert web["metrics"]["memory_usage_bytes"] == 300
    assert web["metrics"]["pod_count"] == 2


def test_groups_never_sum_counters(client, three):
    metrics = client.get("/api/namespaces/shop").json["metrics"]
    assert "cpu_usage_seconds_total" not in metrics
    response = client.get("/api/namespaces/shop?metrics=cpu_usage_seconds_total")
    assert response.status_code == 400
    assert "cpu_usage_seconds_total" in response.json["error"]


def test_pod_identity_and_latest(client, three):
    answer = client.get("/api/pods/shop/web-a").json
    assert answer["uid"] == "uid-web-a"
    assert answer["node"] == "n1"
    assert answer["deployment"] == "web"
    assert answer["workload_kind"] == "Deployment"
    assert answer["workload"] == "web"
    assert answer["timestamp"] == T0
    assert answer["metrics"]["cpu_cores"] == 0.5
    assert answer["metrics"]["cpu_usage_seconds_total"] == 1000.0
    assert answer["metrics"]["memory_limit_bytes"] is None


def test_lists_and_filters(client, three):
    def names(url):
        items = client.get(url).json["items"]
        return [item.get("name") or item.get("node") or item.get("namespace") for item in items]

    assert names("/api/nodes") == ["n1", "n2", "n3"]
    assert names("/api/pods") == ["dns", "db-0", "web-a", "web-b"]
    assert names("/api/pods?namespace=shop&node=n1") == ["web-a"]
    assert names("/api/pods?deployment=web") == ["web-a", "web-b"]
    assert names("/api/nodes/n1/pods") == ["dns", "web-a"]
    assert names("/api/namespaces") == ["kube-system", "shop"]
    assert names("/api/namespaces/shop/pods") == ["db-0", "web-a", "web-b"]
    assert names("/api/namespaces/shop/deployments") == ["web"]
    assert names("/api/deployments") == ["coredns", "web"]
    assert names("/api/deployments?namespace=kube-system") == ["coredns"]
    assert names("/api/deployments/shop/web/pods") == ["web-a", "web-b"]


def test_node_answers_its_info(client, three):
    answer = client.get("/api/nodes/n2").json
    assert answer["node"] == "n2"
    assert answer["info"]["cpu_count"] == 8
    assert answer["metrics"]["memory_used_bytes"] == 2000
    assert answer["metrics"]["pod_count"] == 1


def test_resent_payload_replaces(client, post, three):
    for body in cluster_of_three(T0 + 3):
        post(body)
    assert client.get("/api/cluster").json["metrics"]["cpu_cores"] == 3.5
    assert client.get("/api/namespaces/shop").json["metrics"]["cpu_cores"] == 1.75
    assert client.get("/api/deployments/shop/web").json["metrics"]["pod_count"] == 2


def test_second_sample_in_bucket_replaces(client, post, three):
    faster = dict(WEB_A, cpu_cores=1.5)
    post(
        payload(
            "n1",
            T0 + 8,
            [faster, DNS],
            cpu_count=4,
            cpu_cores=2.0,
            memory_used_bytes=1000,
            memory_total_bytes=4000,
        )
    )
    assert client.get("/api/pods/shop/web-a").json["metrics"]["cpu_cores"] == 1.5
    assert client.get("/api/namespaces/shop").json["metrics"]["cpu_cores"] == 2.75
    assert client.get("/api/deployments/shop/web").json["metrics"]["cpu_cores"] == 1.75
    assert client.get("/api/cluster").json["metrics"]["cpu_cores"] == 4.5


def test_second_sample_without_a_pod_drops_its_share(client, post, three, storage):
    post(
        payload(
            "n1",
            T0 + 8,
            [DNS],
            cpu_count=4,
            cpu_cores=1.0,
            memory_used_bytes=1000,
            memory_total_bytes=4000,
        )
    )
    web = client.get("/api/deployments/shop/web").json["metrics"]
    if isinstance(storage, SqliteStorage):
        assert (web["cpu_cores"], web["pod_count"]) == (0.25, 1)
    else:  # remote-write cannot delete the first report's web-a
        assert (web["cpu_cores"], web["pod_count"]) == (0.75, 2)
    cluster = client.get("/api/cluster").json["metrics"]
    assert (cluster["cpu_cores"], cluster["pod_count"]) == (3.5, 3)  # the nodes' own figures
    assert client.get("/api/namespaces/kube-system").json["metrics"]["cpu_cores"] == 0.125


def test_latest_is_newest_bucket_per_entity(client, post, clock, three):
    post(payload("n1", T0 + 12, [WEB_A], cpu_count=4, cpu_cores=3.0))
    assert client.get("/api/nodes/n1").json["timestamp"] == T0 + 10
    assert client.get("/api/nodes/n2").json["timestamp"] == T0
    assert client.get("/api/pods/kube-system/dns").json["timestamp"] == T0


def test_list_without_time_shows_last_30_s(client, clock, three):
    clock.now = T0 + 35
    assert len(client.get("/api/nodes").json["items"]) == 3
    clock.now = T0 + 45
    assert client.get("/api/nodes").json["items"] == []
    assert client.get("/api/nodes/n1").json["metrics"]["cpu_cores"] == 1.0
    listed = client.get("/api/nodes?window=1m").json["items"]
    assert [item["node"] for item in listed] == ["n1", "n2", "n3"]


def test_metrics_parameter(client, three):
    answer = client.get("/api/nodes/n1?metrics=cpu_cores,memory_used_bytes").json
    assert answer["metrics"] == {"cpu_cores": 1.0, "memory_used_bytes": 1000}


def test_unknown_metric(client, three):
    response = client.get("/api/nodes/n1?metrics=cpu_cores,bogus")
    assert response.status_code == 400
    assert "bogus" in response.json["error"]


def test_cluster_without_data(client):
    answer = client.get("/api/cluster").json
    assert answer["timestamp"] is None
    assert answer["metrics"]["cpu_cores"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/nodes/ghost",
        "/api/nodes/ghost/pods",
        "/api/pods/shop/ghost",
        "/api/namespaces/ghost",
        "/api/namespaces/ghost/pods",
        "/api/namespaces/ghost/deployments",
        "/api/deployments/shop/ghost",
        "/api/deployments/shop/ghost/pods",
        "/api/nothing",
        "/nothing",
    ],
)
def test_unknown_is_json_404(client, three, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json["error"]


def test_health(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_sort_and_limit_pick_the_busiest(post, client):
    pods = [pod(f"uid-{i}", f"p{i}", "ns", cpu_cores=c) for i, c in enumerate([0.5, 2.0, 1.0])]
    pods.append(pod("uid-idle", "idle", "ns"))  # no cpu_cores: last either way
    post(payload("n1", T0 + 1, pods))
    names = lambda query: [i["name"] for i in client.get(f"/api/pods?{query}").json["items"]]  # noqa: E731
    assert names("sort=-cpu_cores") == ["p1", "p2", "p0", "idle"]
    assert names("sort=cpu_cores") == ["p0", "p2", "p1", "idle"]
    assert names("sort=-cpu_cores&limit=2") == ["p1", "p2"]
    assert names("limit=1") == ["idle"]  # the list's own order: namespace, name
    top = client.get("/api/pods?sort=-cpu_cores&limit=1&metrics=memory_usage_bytes&window=1m")
    (item,) = top.json["items"]
    assert item["name"] == "p1" and list(item["metrics"]) == ["memory_usage_bytes"]
    assert "series" in item


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=-nothing", "sort: 'nothing' is not a metric of pods"),
        ("sort=node_count", "sort: 'node_count' is not a metric of pods"),
        ("limit=0", "limit: '0' is not a whole number from 1 to 100000"),
        ("limit=-3", "limit: '-3' is not a whole number from 1 to 100000"),
        ("limit=many", "limit: 'many' is not a whole number from 1 to 100000"),
    ],
)
def test_bad_sort_and_limit_are_400(client, query, message):
    response = client.get(f"/api/pods?{query}")
    assert response.status_code == 400
    assert response.json == {"error": message}


def test_sort_and_limit_are_for_lists_only(post, client):
    post(payload("n1", T0 + 1, [pod("uid-a", "a", "ns", cpu_cores=1.0)]))
    response = client.get("/api/pods/ns/a?limit=1")
    assert response.status_code == 400
    assert response.json == {"error": "limit: unknown parameter"}


def test_a_long_list_is_sent_in_batches_and_answers_the_same(client, post, monkeypatch):
    for at in (T0 + 1, T0 + 11):
        post(payload("n1", at, [pod(f"u{i}", cpu_cores=i / 10) for i in range(7)]))
    whole = client.get("/api/pods?window=1m").json
    monkeypatch.setattr(query, "ITEMS_AT_ONCE", 2)
    assert client.get("/api/pods?window=1m").json == whole  # four batches
    assert [item["metrics"]["cpu_cores"] for item in whole["items"]] == [i / 10 for i in range(7)]
