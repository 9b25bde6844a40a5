"""`cloudmon rightsize` against the real server (gunicorn, its own upkeep) holding two hours
of the right-sizing workloads (`fixtures.rightsizing`), sent as a draining agent sends them:
a table like krr's, JSON, YAML and CSV of the same answer."""

import csv
import io
import json

import pytest
import yaml
from click.testing import CliRunner
from fixtures.rightsizing import MiB, rightsizing_server
from fixtures.servers import get_json

from cloudmon.rightsize import CSV_FIELDS, rightsize


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with rightsizing_server(tmp_path_factory.mktemp("rightsize")) as base:
        yield base


def run(server, *args):
    result = CliRunner().invoke(rightsize, [*args, "--window", "1d", "--server", server])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_is_the_apis_answer(server):
    answer = json.loads(run(server, "-o", "json"))
    assert answer == get_json(server + "/api/rightsize?window=1d") | {
        "start": answer["start"],
        "end": answer["end"],
    }
    assert {item["workload"] for item in answer["items"]} >= {"steady", "rollout", "batch"}


def test_yaml_and_csv_say_the_same(server):
    answer = yaml.safe_load(run(server, "-o", "yaml"))
    rows = list(csv.DictReader(io.StringIO(run(server, "-o", "csv"))))
    assert list(rows[0]) == list(CSV_FIELDS)
    by_workload = {row["workload"]: row for row in rows}
    steady = next(item for item in answer["items"] if item["workload"] == "steady")
    container = steady["containers"][0]
    row = by_workload["steady"]
    assert float(row["recommended_cpu_request"]) == container["recommendation"]["cpu_request_cores"]
    assert float(row["memory_max"]) == container["memory"]["max"] == 300 * MiB
    assert row["findings"] == "over_provisioned:cpu under_provisioned:memory near_memory_limit"
    assert [f["finding"] for f in container["findings"]] == row["findings"].replace(
        ":cpu", ""
    ).replace(":memory", "").split()
    assert by_workload["young"]["recommended_cpu_request"] == ""


def test_the_table_shows_now_and_recommended(server):
    table = run(server)
    lines = {line.split()[1]: line for line in table.splitlines()[1:] if line.strip()}
    assert "1000m -> " in lines["Deployment/steady"]
    assert "over_provisioned:cpu" in lines["Deployment/steady"]
    assert "- -> -" not in table  # no limit now, none recommended: "-" once
    assert "not enough data" in lines["Deployment/young"]
    assert "300Mi" in lines["Deployment/steady"]
    assert table.splitlines()[-1].startswith("could be released: ")


def test_a_namespace_and_the_knobs(server):
    answer = json.loads(run(server, "-n", "jobs", "-o", "json", "--min-points", "20"))
    assert {item["namespace"] for item in answer["items"]} == {"jobs"}
    assert answer["strategy"]["min_points"] == 20


def test_bad_uses_are_told(server):
    result = CliRunner().invoke(rightsize, ["-n", "a", "-A", "--server", server])
    assert result.exit_code == 2 and "either -n/--namespace or -A" in result.output
    result = CliRunner().invoke(rightsize, ["--cpu-percentile", "150", "--server", server])
    assert result.exit_code == 1
    assert "answered 400: cpu_percentile: '150.0' is not a percentile" in result.output
    result = CliRunner().invoke(rightsize, ["--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the cloudmon server" in result.output
