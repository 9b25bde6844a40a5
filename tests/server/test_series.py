from datetime import UTC, datetime

import pytest
from server_payloads import T0, payload, pod

from cloudmon.server.timeparams import MAX_POINTS

# T0 = 30 k + 10: steps of 30 s start at T0 - 10, T0 + 20, T0 + 50.
CPU = {0: 1.0, 10: 2.0, 30: 4.0, 40: 5.0, 50: 6.0}


@pytest.fixture
def history(post, clock):
    for offset, cores in CPU.items():
        web = pod("uid-web", "web", "shop", "web", cpu_cores=cores / 2)
        api = pod("uid-api", "api", "shop", "api", cpu_cores=cores / 4)
        post(payload("n1", T0 + offset + 1, [web, api], cpu_cores=cores))
    clock.now = T0 + 55


def series(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.json
    return response.json["series"]


def test_window_default_step(client, history):
    got = series(client, "/api/nodes/n1?window=1m&metrics=cpu_cores")
    assert got["timestamps"] == [T0 + 10 * i for i in range(6)]
    assert got["cpu_cores"] == [1.0, 2.0, None, 4.0, 5.0, 6.0]


def test_series_keeps_latest(client, history):
    answer = client.get("/api/nodes/n1?window=1m&metrics=cpu_cores").json
    assert answer["timestamp"] == T0 + 50
    assert answer["metrics"] == {"cpu_cores": 6.0}


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", [1.5, 4.5, 6.0]),
        ("max", [2.0, 5.0, 6.0]),
        ("min", [1.0, 4.0, 6.0]),
        ("last", [2.0, 5.0, 6.0]),
        ("sum", [3.0, 9.0, 6.0]),
    ],
)
def test_step_aligned_to_epoch_with_agg(client, history, agg, expected):
    url = f"/api/nodes/n1?start={T0}&end={T0 + 50}&step=30s&agg={agg}&metrics=cpu_cores"
    got = series(client, url)
    assert got["timestamps"] == [T0 - 10, T0 + 20, T0 + 50]
    assert got["cpu_cores"] == expected


def test_default_agg_is_avg(client, history):
    got = series(client, f"/api/nodes/n1?start={T0}&end={T0 + 50}&step=30s&metrics=cpu_cores")
    assert got["cpu_cores"] == [1.5, 4.5, 6.0]


def test_start_and_end_bound_bucket_starts(client, history):
    got = series(client, f"/api/nodes/n1?start={T0 + 1}&end={T0 + 40}&metrics=cpu_cores")
    assert got["timestamps"] == [T0 + 10, T0 + 20, T0 + 30, T0 + 40]
    assert got["cpu_cores"] == [2.0, None, 4.0, 5.0]


def test_end_defaults_to_now(client, history):
    got = series(client, f"/api/nodes/n1?start={T0 + 30}&metrics=cpu_cores")
    assert got["timestamps"] == [T0 + 30, T0 + 40, T0 + 50]


def test_rfc3339_times(client, history):
    start = datetime.fromtimestamp(T0 + 10, UTC).isoformat().replace("+00:00", "Z")
    end = datetime.fromtimestamp(T0 + 30, UTC).isoformat()
    response = client.get(
        "/api/nodes/n1", query_string={"start": start, "end": end, "metrics": "cpu_cores"}
    )
    got = response.json["series"]
    assert got["timestamps"] == [T0 + 10, T0 + 20, T0 + 30]
    assert got["cpu_cores"] == [2.0, None, 4.0]


def test_namespace_and_deployment_series(client, history):
    url = f"/api/namespaces/shop?start={T0}&end={T0 + 50}&step=30s&agg=max&metrics=cpu_cores"
    assert series(client, url)["cpu_cores"] == [0.75 * 2, 0.75 * 5, 0.75 * 6]
    url = f"/api/deployments/shop/api?start={T0}&end={T0 + 50}&step=30s&agg=sum"
    got = series(client, url)
    assert got["cpu_cores"] == [0.75, 2.25, 1.5]
    assert got["pod_count"] == [2, 2, 1]


def test_cluster_series(client, history):
    url = f"/api/cluster?start={T0}&end={T0 + 20}&metrics=cpu_cores,cpu_percent,node_count"
    got = series(client, url)
    assert got["cpu_cores"] == [1.0, 2.0, None]
    assert got["cpu_percent"] == [25.0, 50.0, None]
    assert got["node_count"] == [1, 1, None]


def test_list_with_series(client, history):
    items = client.get("/api/pods?window=30s&metrics=cpu_cores").json["items"]
    assert [item["name"] for item in items] == ["api", "web"]
    assert items[1]["series"]["cpu_cores"] == [2.0, 2.5, 3.0]


@pytest.mark.parametrize(
    ("window", "step"),
    [("1h", 10), ("6h", 60), ("1d", 120), ("3d", 300), ("7d", 3600), ("90d", 10800)],
)
def test_default_step_is_a_multiple_of_a_resolution(client, history, window, step):
    got = series(client, f"/api/nodes/n1?window={window}&metrics=cpu_cores")
    assert got["timestamps"][1] - got["timestamps"][0] == step
    assert MAX_POINTS // 10 <= len(got["timestamps"]) <= MAX_POINTS + 1
    for label, value in zip(got["timestamps"], got["cpu_cores"], strict=True):
        inside = [v for offset, v in CPU.items() if label <= T0 + offset < label + step]
        assert value == (sum(inside) / len(inside) if inside else None)
    assert any(value is not None for value in got["cpu_cores"])


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("window=abc", "window"),
        ("window=0s", "window"),
        ("window=-5m", "window"),
        ("window=1h&start=1764100000", "window"),
        ("end=1764100000", "end"),
        ("start=yesterday", "start"),
        ("start=2025-11-25T10:00:00", "start"),
        ("start=1764100000&end=1e99", "end"),
        ("start=1764100050&end=1764100000", "start"),
        ("window=1h&step=15s", "step"),
        ("window=1h&step=0", "step"),
        ("window=365d&step=10s", "step"),
        ("step=30s", "step"),
        ("window=1h&agg=median", "agg"),
        ("window=1h&metrics=", "metrics"),
        ("windw=1h", "windw"),
        ("window=5m&window=1h", "window"),
        ("window=1h&metrics=cpu_cores&metrics=load1", "metrics"),
    ],
)
def test_bad_time_parameters(client, history, query, names):
    response = client.get(f"/api/nodes/n1?{query}")
    assert response.status_code == 400, response.json
    assert response.json["error"].startswith(names)


@pytest.mark.parametrize(
    ("query", "name", "words"),
    [
        ("window=99999999999999d", "window", "too long"),
        ("window=4000000d", "window", "too long"),
        ("start=99999999999999", "start", "too large"),
        ("start=1764100000&end=99999999999999.5", "end", "too large"),
        ("start=1000-01-01T00:00:00Z", "start", "before 1970"),
        ("window=5m&window=1h", "window", "2 times"),
    ],
)
def test_time_parameters_out_of_reach_say_why(client, history, query, name, words):
    response = client.get(f"/api/nodes/n1?{query}")
    assert response.status_code == 400, response.json
    assert response.json["error"].startswith(f"{name}: ")
    assert words in response.json["error"]


def test_a_window_reaching_before_1970_starts_there(client, history):
    got = series(client, "/api/nodes/n1?window=100000d&metrics=cpu_cores")
    assert got["timestamps"][0] == 0
    assert len(got["timestamps"]) <= MAX_POINTS + 1
    assert max(filter(None, got["cpu_cores"])) > 0
