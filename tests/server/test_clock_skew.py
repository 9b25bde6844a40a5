"""A node whose clock is off: measured, shown, refused past the tolerance, and never the
cluster's "now"."""

import pytest
from server_payloads import T0, payload, pod
from test_ingest import refused, send

from cloudmon.server.ingest import SKEW_TOLERANCE

# The clock fixture stands at T0 + 25: bucket T0 + 20 is "now".


def report(node, timestamp, **fields):
    body = payload(node, timestamp, [pod(f"uid-{node}", f"p-{node}", "shop", cpu_cores=0.5)])
    return {**body, **fields}


@pytest.fixture
def two_nodes(post):
    for offset in (1, 11):
        post([report("a", T0 + offset), report("b", T0 + offset)])


def test_a_node_ahead_does_not_take_over_now(client, post, two_nodes):
    post(report("a", T0 + 31))  # 6 s ahead of the server: inside the tolerance
    cluster = client.get("/api/cluster?metrics=node_count,pod_count").json
    assert cluster["timestamp"] <= T0 + 20
    assert cluster["metrics"] == {"node_count": 2, "pod_count": 2}
    assert client.get("/api/nodes/a").json["timestamp"] <= T0 + 20
    namespace = client.get("/api/namespaces/shop?metrics=pod_count").json
    assert namespace["timestamp"] <= T0 + 20
    assert namespace["metrics"] == {"pod_count": 2}
    exposition = client.get("/metrics").text
    assert "cloudmon_cluster_nodes 2.0" in exposition


def test_a_node_ahead_by_more_than_the_tolerance_is_refused(client, clock, two_nodes):
    ahead = SKEW_TOLERANCE + 35
    body = report("a", clock.now + ahead, sent_at=clock.now + ahead + 0.5)
    response = send(client, __import__("json").dumps(body).encode())
    refused(response, 400, "ahead of the server's clock", "node a", "$.timestamp")
    assert response.json["clock_skew_seconds"] == pytest.approx(ahead + 0.5)
    assert client.get("/api/nodes/a").json["timestamp"] == T0 + 10


def test_skew_is_measured_from_sent_at(client, post, clock):
    post(report("fast", T0 + 21, sent_at=clock.now + 63.5))
    post(report("slow", T0 + 21, sent_at=clock.now - 2.25))
    post(report("old", T0 + 21))  # an agent that does not send `sent_at`
    skew = {
        item["node"]: item["metrics"]["clock_skew_seconds"]
        for item in client.get("/api/nodes?metrics=clock_skew_seconds").json["items"]
    }
    assert skew == {"fast": 63.5, "slow": -2.25, "old": None}
    series = client.get("/api/nodes/fast?window=1m&metrics=clock_skew_seconds").json["series"]
    assert 63.5 in series["clock_skew_seconds"]


def test_a_late_payload_is_not_skew(client, post, clock):
    post(report("a", T0 - 600, sent_at=clock.now))  # from the spool, ten minutes late
    answer = client.get("/api/nodes/a?window=15m&metrics=clock_skew_seconds").json
    assert [value for value in answer["series"]["clock_skew_seconds"] if value is not None] == [0.0]


def test_a_skew_an_agent_sends_is_replaced(client, post, clock):
    body = report("a", T0 + 21, sent_at=clock.now + 1.0)
    body["node_metrics"]["clock_skew_seconds"] = 500.0
    post(body)
    assert client.get("/api/nodes/a").json["metrics"]["clock_skew_seconds"] == 1.0
