"""HorizontalPodAutoscalers for right-sizing: an autoscaling/v2 list as the API server sends
it, read over TLS with a service account's token from a stand-in API server, and what an
autoscaler scaling on CPU does with a recommended request, said in the answer."""

import ssl

import pytest
import trustme
from agent.metadata.kubeserver import KubeServer
from server_payloads import Clock

from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.http import Client
from cloudmon.server.autoscalers import PATH, REFRESH, Autoscalers, parse_autoscalers


def autoscaler(name, kind, target, metrics=None, namespace="shop"):
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
        "minReplicas": 2,
        "maxReplicas": 10,
    }
    if metrics is not None:
        spec["metrics"] = metrics
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"},
        "spec": spec,
        "status": {"currentReplicas": 2, "desiredReplicas": 2},
    }


CPU_80 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
}
MEMORY_VALUE = {
    "type": "ContainerResource",
    "containerResource": {
        "name": "memory",
        "container": "main",
        "target": {"type": "AverageValue", "averageValue": "500Mi"},
    },
}
QUEUE = {
    "type": "External",
    "external": {
        "metric": {"name": "queue"},
        "target": {"type": "AverageValue", "averageValue": "30"},
    },
}
LIST = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscalerList",
    "metadata": {"resourceVersion": "9"},
    "items": [
        autoscaler("steady-hpa", "Deployment", "steady", [CPU_80, MEMORY_VALUE, QUEUE]),
        autoscaler("growing-hpa", "Deployment", "growing"),  # no metrics: 80 % of CPU
        autoscaler("queue-hpa", "StatefulSet", "bursty", [QUEUE]),
        {"metadata": {"name": "broken"}, "spec": {}},
    ],
}


def test_an_autoscaler_list_is_read_as_the_api_server_sends_it():
    found = parse_autoscalers(LIST)
    assert set(found) == {
        ("shop", "Deployment", "steady"),
        ("shop", "Deployment", "growing"),
        ("shop", "StatefulSet", "bursty"),
    }
    steady = found["shop", "Deployment", "steady"]
    assert (steady["name"], steady["min_replicas"], steady["max_replicas"]) == ("steady-hpa", 2, 10)
    assert steady["resources"] == [
        {"resource": "cpu", "container": None, "type": "Utilization", "value": 80},
        {"resource": "memory", "container": "main", "type": "AverageValue", "value": "500Mi"},
    ]
    assert found["shop", "Deployment", "growing"]["resources"][0]["value"] == 80
    assert found["shop", "StatefulSet", "bursty"]["resources"] == []
    with pytest.raises(MetadataError, match="has no items"):
        parse_autoscalers({"kind": "Status"})


@pytest.fixture
def api_server(tmp_path):
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    server = KubeServer(tls).start()
    server.objects[PATH] = LIST
    (tmp_path / "token").write_text("token-1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    clock = Clock(0.0)
    client = Client(
        server.url, token_file=str(tmp_path / "token"), ca_file=str(tmp_path / "ca.crt"), timeout=5
    )
    yield server, Autoscalers(client, clock), clock
    server.stop()


def test_autoscalers_are_listed_again_when_old(api_server):
    server, autoscalers, clock = api_server
    found, unknown = autoscalers.lookup()
    assert unknown is None and len(found) == 3
    autoscalers.lookup()
    assert server.count(PATH) == 1  # within REFRESH: the list kept
    clock.now += REFRESH
    del server.objects[PATH]  # the API server answers 404 now: the last list is kept
    assert autoscalers.lookup() == (found, None)
    assert server.count(PATH) == 2


def test_autoscalers_unknown_say_why(api_server):
    server, autoscalers, _ = api_server
    server.token = "another"
    found, unknown = autoscalers.lookup()
    assert found is None
    assert unknown.startswith("the API server did not list them: ")


def test_outside_a_cluster_there_are_none(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert Autoscalers.in_cluster(str(tmp_path)) is None


def test_what_an_autoscaler_does_with_the_recommendation(rightsize_client, api_server):
    _, autoscalers, _ = api_server
    app = rightsize_client.application
    app.config["CLOUDMON_AUTOSCALERS"] = autoscalers
    try:
        answer = rightsize_client.get("/api/rightsize?window=1d").get_json()
    finally:
        app.config["CLOUDMON_AUTOSCALERS"] = None
    assert answer["autoscalers"] == {"known": True, "reason": None}
    items = {item["workload"]: item for item in answer["items"]}
    assert items["steady"]["autoscaler"]["name"] == "steady-hpa"
    (container,) = items["steady"]["containers"]
    cpu = round(container["recommendation"]["cpu_request_cores"] * 0.8 * 1000)
    assert container["autoscaling"] == [
        "steady-hpa adds replicas when the pods' cpu passes 80 % of the request: at 800m a pod"
        f" now, at {cpu}m with the recommended request (sooner, at less load)",
        "steady-hpa scales on container main's memory at 500Mi a pod: the memory request does"
        " not change when it adds replicas",
    ]
    assert items["bursty"]["containers"][0]["autoscaling"] == []
    assert (
        items["leak"]["autoscaler"] is None and "autoscaling" not in items["leak"]["containers"][0]
    )
    outside = rightsize_client.get("/api/rightsize?window=1d").get_json()["autoscalers"]
    assert outside == {
        "known": False,
        "reason": "the server runs outside a cluster (no service account)",
    }
