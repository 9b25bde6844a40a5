"""GET /api/rightsize: workloads whose usage the test controls (`fixtures.rightsizing`, in
the store of conftest's `rightsize_client`), stored through ingest and rolled up by the
upkeep, are recommended what the strategy says, within the sketches' accuracy."""

import json
import math

import numpy as np
import pytest
from fixtures.rightsizing import (
    DEFAULT,
    MINUTES,
    WORKLOADS,
    MiB,
    bodies,
    expected_cpu,
    growing,
)
from server_payloads import Clock

from cloudmon import payload as wire
from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage
from cloudmon.storage.usage import ACCURACY


def items(rightsize_client, query=""):
    answer = rightsize_client.get(f"/api/rightsize?window=1d{query}")
    assert answer.status_code == 200, answer.get_json()
    return {item["workload"]: item for item in answer.get_json()["items"]}, answer.get_json()


def test_recommendations_are_what_the_strategy_says(rightsize_client):
    found, _ = items(rightsize_client)
    for name in ("steady", "bursty", "growing", "idle", "leak", "rollout", "batch"):
        kind, pods, memory, _ = WORKLOADS[name]
        (container,) = found[name]["containers"]
        recommended = container["recommendation"]
        assert recommended is not None, (name, container.get("reason"))
        cpu = expected_cpu(pods)
        assert recommended["cpu_request_cores"] == pytest.approx(cpu, rel=ACCURACY, abs=0.001), name
        assert recommended["cpu_limit_cores"] is None
        peak = max(memory(minute) for _, first, last, _ in pods for minute in range(first, last))
        wanted = max(DEFAULT.memory_min, math.ceil(peak * 1.15 / MiB) * MiB)
        assert recommended["memory_request_bytes"] == wanted, name
        assert recommended["memory_limit_bytes"] == wanted, name
        assert found[name]["workload_kind"] == kind
    assert found["idle"]["containers"][0]["recommendation"]["cpu_request_cores"] == 0.01
    assert found["rollout"]["pods"] == 2
    assert found["rollout"]["containers"][0]["recommendation"]["cpu_request_cores"] == 0.5
    assert found["leak"]["containers"][0]["memory"]["max"] == (200 + MINUTES - 1) * MiB


def test_figures_are_the_pods_percentiles(rightsize_client):
    found, _ = items(rightsize_client)
    cpu = found["growing"]["containers"][0]["cpu"]
    values = np.array([growing(minute) for minute in range(MINUTES)])
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        truth = np.percentile(values, q, method="lower")
        assert cpu[name] == pytest.approx(truth, rel=ACCURACY), name
    assert cpu["max"] == pytest.approx(values.max())
    assert found["growing"]["containers"][0]["minutes"] == {"cpu": MINUTES, "memory": MINUTES}


def test_findings_and_their_sums(rightsize_client):
    found, answer = items(rightsize_client)

    def findings(name):
        return {f["finding"]: f for f in found[name]["containers"][0]["findings"]}

    steady_request = expected_cpu(WORKLOADS["steady"][1])
    over = findings("steady")["over_provisioned"]
    assert over["resource"] == "cpu"
    assert over["cpu_cores"] == pytest.approx(1.0 - steady_request, rel=0.02)
    assert "under_provisioned" in findings("growing")
    assert findings("growing")["under_provisioned"]["cpu_cores"] < 0
    assert findings("bursty")["throttled"]["share"] == pytest.approx(0.3, rel=0.01)
    assert {"no_cpu_request", "no_memory_limit"} <= findings("idle").keys()
    assert findings("leak")["under_provisioned"]["resource"] == "memory"
    assert "near_memory_limit" in findings("leak")  # 319 MiB of a 256 MiB limit
    cluster = answer["summary"]["cluster"]
    assert cluster["findings"]["over_provisioned"] >= 1
    assert cluster["released_cpu_cores"] >= over["cpu_cores"]
    assert answer["summary"]["namespaces"].keys() == {"shop", "jobs"}


def test_not_enough_data_is_an_answer(rightsize_client):
    found, _ = items(rightsize_client)
    (container,) = found["young"]["containers"]
    assert container["recommendation"] is None
    assert container["reason"] == "not enough data: 30 minutes of the 100 needed"
    found, _ = items(rightsize_client, "&min_points=20")
    assert found["young"]["containers"][0]["recommendation"] is not None


def test_patches_only_where_a_spec_can_change(rightsize_client):
    found, _ = items(rightsize_client)
    patch = found["steady"]["patch"]
    (container,) = patch["patch"]["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "main"
    assert container["resources"]["limits"]["cpu"] is None  # a strategic merge deletes it
    assert patch["command"].startswith("kubectl -n shop patch deployment steady ")
    assert "rolls the Deployment" in patch["note"]
    assert found["batch"]["patch"] is None  # a Job's pods cannot be changed
    assert found["young"]["patch"] is None  # nothing to recommend yet


def test_one_workload_with_its_pods(rightsize_client):
    answer = rightsize_client.get("/api/rightsize/shop/Deployment/rollout?window=1d")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["workload"] == "rollout" and body["pods"] == 2
    pods = {pod["name"]: pod for pod in body["pods_usage"]}
    assert pods["rollout-a"]["cpu"]["p95"] == pytest.approx(0.5, rel=ACCURACY)
    assert pods["rollout-b"]["minutes"]["cpu"] == MINUTES - 60
    missing = rightsize_client.get("/api/rightsize/shop/Deployment/nothing?window=1d")
    assert missing.status_code == 404
    assert missing.get_json() == {
        "error": "workload Deployment shop/nothing: no usage in the window"
    }


def test_knobs_change_the_recommendation(rightsize_client):
    found, _ = items(rightsize_client, "&cpu_percentile=50&memory_buffer=0&cpu_limit_factor=2")
    recommended = found["growing"]["containers"][0]["recommendation"]
    assert recommended["cpu_request_cores"] == pytest.approx(
        expected_cpu(WORKLOADS["growing"][1], 50), rel=ACCURACY, abs=0.001
    )
    assert recommended["cpu_limit_cores"] == pytest.approx(2 * recommended["cpu_request_cores"])
    assert recommended["memory_request_bytes"] == 100 * MiB


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("cpu_percentile=101", "cpu_percentile: '101' is not a percentile (0-100]"),
        ("min_points=1.5", "min_points: '1.5' is not a whole number"),
        ("memory_buffer=-0.1", "memory_buffer: '-0.1' is not a number of 0 or more"),
        ("step=60", "step: unknown parameter"),
        ("window=7x", None),
    ],
)
def test_bad_parameters_are_named(rightsize_client, query, error):
    answer = rightsize_client.get(f"/api/rightsize?{query}")
    assert answer.status_code == 400
    if error is not None:
        assert answer.get_json() == {"error": error}
    else:
        assert answer.get_json()["error"].startswith("window:")


def test_a_store_without_usage_says_so():
    app = create_app(
        {
            "CLOUDMON_STORAGE": "prometheus+http://127.0.0.1:9/",
            "CLOUDMON_NOW": lambda: 1_764_097_200,
        }
    )
    answer = app.test_client().get("/api/rightsize")
    assert answer.status_code == 501
    assert answer.get_json() == {
        "error": "right-sizing needs the embedded store (sqlite://): this store keeps no usage"
    }


def test_one_workload_is_exact_where_the_raw_samples_are_held(rightsize_client):
    values = np.array([growing(minute) for minute in range(MINUTES)])
    figures = np.percentile(values, (50, 95, 99), method="lower")
    truth = dict(zip(("p50", "p95", "p99"), figures, strict=True))
    url = "/api/rightsize/shop/Deployment/growing"
    exact = rightsize_client.get(f"{url}?window=1d").get_json()
    assert (exact["percentiles"], exact["accuracy"]) == ("exact", 0.0)
    cpu = exact["containers"][0]["cpu"]
    assert {name: cpu[name] for name in truth} == pytest.approx(truth, rel=1e-12)
    assert exact["pods_usage"][0]["cpu"]["p95"] == pytest.approx(truth["p95"], rel=1e-12)
    # A window reaching past the raw samples' retention (a day): the sketches answer.
    sketched = rightsize_client.get(f"{url}?window=3d").get_json()
    assert (sketched["percentiles"], sketched["accuracy"]) == ("sketched", ACCURACY)
    cpu = sketched["containers"][0]["cpu"]
    assert {name: cpu[name] for name in truth} == pytest.approx(truth, rel=ACCURACY)
    assert {name: cpu[name] for name in truth} != pytest.approx(truth, rel=1e-9)
    _, answer = items(rightsize_client)
    assert answer["percentiles"] == "sketched"


def test_a_workload_without_a_day_of_usage_yet_has_not_enough_data(tmp_path):
    """Its first hour not over: listed, with no recommendation and 0 minutes, not left out."""
    clock = Clock(1_764_097_200)
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    try:
        for body in list(bodies(clock.now))[:30]:  # five minutes
            clock.now = body["timestamp"]
            store.write(wire.decode(json.dumps([body]).encode()))
        client = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock}).test_client()
        found, _ = items(client)
        assert found.keys() >= {"steady", "rollout", "batch"}
        (container,) = found["steady"]["containers"]
        assert container["minutes"] == {"cpu": 0, "memory": 0}
        assert container["reason"] == "not enough data: 0 minutes of the 100 needed"
        answer = client.get("/api/rightsize/shop/Deployment/steady?window=1d")
        assert answer.status_code == 200
    finally:
        store.close()


def test_pods_and_containers_without_names_are_left_out(tmp_path):
    """The agent may have no metadata for a pod (nor names for its containers): such a pod
    belongs to no workload, and the named ones are right-sized as before."""
    clock = Clock(1_764_097_200)
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    try:
        for body in list(bodies(clock.now))[:30]:
            clock.now = body["timestamp"]
            nameless = json.loads(json.dumps(body["pods"][0]))
            nameless.update(uid="1b6f3c2e-9d1a-4c4e-8a7b-5f0e2d3c4b5a", name=None, namespace=None)
            nameless.update(deployment=None, workload=None, workload_kind=None)
            for container in nameless["containers"]:
                container["name"] = None
            body["pods"].append(nameless)
            store.write(wire.decode(json.dumps([body]).encode()))
        client = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock}).test_client()
        found, _ = items(client)
        assert found.keys() >= {"steady", "rollout", "batch"}
        assert None not in found
    finally:
        store.close()
