"""GET /api/pods/<ns>/<pod>/containers: each container's own figures, latest or as series."""

import pytest
from server_payloads import T0, container, payload, pod

from cloudmon.metrics import Scope, metrics_for
from cloudmon.storage.sqlite import SqliteStorage

CONTAINER_METRICS = [m.name for m in metrics_for(Scope.CONTAINER)]


def web(timestamp, *containers, uid="uid-a", **metrics):
    return payload(
        "n1", timestamp, [pod(uid, "web-a", "shop", "web", containers=list(containers), **metrics)]
    )


def test_latest_lists_each_container_with_its_own_figures(post, client):
    post(
        web(
            T0 + 1,
            container("app", "c0ffee", cpu_cores=0.25, memory_working_set_bytes=1000),
            container("proxy", "beef", cpu_cores=0.125, memory_limit_bytes=4096),
            cpu_cores=0.5,
        )
    )
    items = client.get("/api/pods/shop/web-a/containers").json["items"]
    assert [(i["name"], i["container_id"]) for i in items] == [("app", "c0ffee"), ("proxy", "beef")]
    app, proxy = items
    assert {k: app[k] for k in ("namespace", "pod", "uid", "node")} == {
        "namespace": "shop",
        "pod": "web-a",
        "uid": "uid-a",
        "node": "n1",
    }
    assert app["timestamp"] == T0
    assert list(app["metrics"]) == CONTAINER_METRICS  # no network: pods only have it
    assert app["metrics"]["cpu_cores"] == 0.25
    assert app["metrics"]["memory_working_set_bytes"] == 1000
    assert app["metrics"]["memory_limit_bytes"] is None
    assert proxy["metrics"]["memory_limit_bytes"] == 4096
    one = client.get("/api/pods/shop/web-a/containers/proxy").json
    assert one == proxy


def test_a_series_per_container(post, client):
    for i in range(3):
        post(web(T0 + 10 * i + 1, container("app", cpu_cores=0.1 * (i + 1))))
    answer = client.get(f"/api/pods/shop/web-a/containers/app?start={T0}&end={T0 + 20}").json
    assert answer["series"]["timestamps"] == [T0, T0 + 10, T0 + 20]
    assert answer["series"]["cpu_cores"] == pytest.approx([0.1, 0.2, 0.3])
    listed = client.get(f"/api/pods/shop/web-a/containers?start={T0}&end={T0 + 20}&agg=max")
    assert listed.json["items"][0]["series"] == answer["series"]


def test_a_restarted_container_keeps_its_series_and_shows_its_new_id(post, client):
    post(web(T0 + 1, container("app", "first", cpu_cores=0.1)))
    post(web(T0 + 11, container("app", "second", cpu_cores=0.2)))
    answer = client.get(f"/api/pods/shop/web-a/containers/app?start={T0}&end={T0 + 10}").json
    assert answer["container_id"] == "second"
    assert answer["series"]["cpu_cores"] == pytest.approx([0.1, 0.2])


def test_a_bucket_sent_again_replaces_its_containers(post, client, storage):
    post(web(T0 + 1, container("app", cpu_cores=0.1), container("init", cpu_cores=0.9)))
    post(web(T0 + 2, container("app", cpu_cores=0.3)))
    items = client.get(f"/api/pods/shop/web-a/containers?start={T0}&end={T0}").json["items"]
    series = {i["name"]: i["series"]["cpu_cores"] for i in items}
    assert series["app"] == [0.3]
    if isinstance(storage, SqliteStorage):
        assert series.get("init", [None]) == [None]
    else:  # remote-write cannot delete the first report's container
        assert series["init"] == [0.9]


def test_a_pod_that_stopped_reporting_still_shows_its_containers(post, client, clock):
    post(web(T0 + 1, container("app", cpu_cores=0.1)))
    clock.now = T0 + 3600
    assert client.get("/api/pods").json["items"] == []
    items = client.get("/api/pods/shop/web-a/containers").json["items"]
    assert [(i["name"], i["timestamp"]) for i in items] == [("app", T0)]


def test_the_newest_pod_of_a_name_answers(post, client):
    post(web(T0 + 1, container("old", cpu_cores=0.1), uid="uid-old"))
    post(web(T0 + 11, container("new", cpu_cores=0.2), uid="uid-new"))
    items = client.get("/api/pods/shop/web-a/containers").json["items"]
    assert [(i["name"], i["uid"]) for i in items] == [("new", "uid-new")]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/pods/shop/nobody/containers", "pod shop/nobody: not found"),
        (
            "/api/pods/shop/web-a/containers/nobody",
            "container 'nobody' of pod shop/web-a: not found",
        ),
    ],
)
def test_unknown_pods_and_containers_are_404(post, client, path, message):
    post(web(T0 + 1, container("app", cpu_cores=0.1)))
    response = client.get(path)
    assert response.status_code == 404
    assert response.json == {"error": message}


def test_network_is_not_a_container_metric(post, client):
    post(web(T0 + 1, container("app", cpu_cores=0.1)))
    response = client.get("/api/pods/shop/web-a/containers?metrics=network_rx_bps")
    assert response.status_code == 400
    assert "network_rx_bps" in response.json["error"]


def test_a_container_without_a_name_is_known_by_its_id(post, client):
    unnamed = {"id": "abc123", "name": None, "cpu_cores": 0.5}
    post(web(T0 + 1, unnamed, container("app", "def456", cpu_cores=0.1)))
    items = client.get("/api/pods/shop/web-a/containers").json["items"]
    assert [(i["name"], i["container_id"]) for i in items] == [(None, "abc123"), ("app", "def456")]
    one = client.get("/api/pods/shop/web-a/containers/abc123").json
    assert one["metrics"]["cpu_cores"] == 0.5
