import math
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_payloads import T0, payload, pod

from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage


def scrape(client, **headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.data.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def reported(post):
    web = pod("uid-a", "a", "shop", "web", cpu_cores=0.5, cpu_usage_seconds_total=3.0)
    post(payload("n1", T0 + 1, [web], cpu_cores=1.0))


def test_latest_values_with_labels(client, reported):
    samples = scrape(client)
    pod_labels = (
        ("deployment", "web"),
        ("namespace", "shop"),
        ("node", "n1"),
        ("pod", "a"),
        ("uid", "uid-a"),
    )
    assert samples[("cloudmon_pod_cpu_cores", pod_labels)] == 0.5
    assert samples[("cloudmon_pod_cpu_usage_seconds_total", pod_labels)] == 3.0
    assert samples[("cloudmon_node_cpu_cores", (("node", "n1"),))] == 1.0
    assert samples[("cloudmon_namespace_cpu_cores", (("namespace", "shop"),))] == 0.5
    assert (
        samples[("cloudmon_deployment_pods", (("deployment", "web"), ("namespace", "shop")))] == 1
    )
    assert samples[("cloudmon_cluster_cpu_percent", ())] == 25.0


def test_stale_entities_leave_the_exposition(client, clock, reported):
    clock.now = T0 + 100
    samples = scrape(client)
    assert not any(name.startswith("cloudmon_pod_") for name, _ in samples)


def test_server_figures(client, reported, storage):
    client.post("/api/ingest", data=b"nope", content_type="application/json")
    samples = scrape(client)
    assert samples[("cloudmon_ingested_payloads_total", ())] == 1
    assert samples[("cloudmon_ingested_samples_total", ())] == 5
    assert samples[("cloudmon_ingest_seconds_count", ())] == 1
    rejected = (("endpoint", "/api/ingest"), ("status", "400"))
    assert samples[("cloudmon_rejected_requests_total", rejected)] == 1
    if isinstance(storage, SqliteStorage):
        assert samples[("cloudmon_storage_bytes", ())] > 0
    else:  # the engine's size on disk is not part of the Prometheus HTTP API
        assert math.isnan(samples[("cloudmon_storage_bytes", ())])


def test_query_latency_is_measured(client, reported):
    client.get("/api/nodes", buffered=True)  # read to its end, as a server sends it
    samples = scrape(client)
    assert samples[("cloudmon_query_seconds_count", (("endpoint", "/api/nodes"),))] == 1


def test_read_token_guards_metrics(storage, clock):
    app = create_app({"CLOUDMON_STORAGE": storage, "CLOUDMON_READ_TOKEN": "r"})
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    scrape(client, Authorization="Bearer r")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_it(client, reported):
    client.post("/api/ingest", data=b"nope", content_type="application/json")
    client.get("/api/nodes")
    text = client.get("/metrics").data
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
