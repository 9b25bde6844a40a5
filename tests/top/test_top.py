"""`cloudmon top` against the real server holding an ingested cluster."""

import json
import re
import subprocess
import sys
import urllib.parse

import pytest
from click.testing import CliRunner
from dashboard.livecluster import ingest_cluster
from fixtures.servers import get_json, running_server
from rich.console import Console

from cloudmon.top import cpu, memory, percent, run_top, sparkline, throughput, top

ENV = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("top")) as base:
        ingest_cluster(base, 3, 6, 300)
        yield base


def run(server, *args):
    result = CliRunner().invoke(top, [*args, "--server", server], env=ENV)
    return result


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:] if line.strip()]


def test_requests_style_units():
    assert [cpu(0.25), cpu(1.5), cpu(0.0004), cpu(None)] == ["250m", "1500m", "0m", "-"]
    assert [memory(128 * 2**20), memory(1536), memory(12 * 2**30)] == ["128Mi", "2Ki", "12.0Gi"]
    assert [throughput(950), throughput(12_500), throughput(3.2e6)] == [
        "950B/s",
        "12.5KB/s",
        "3.2MB/s",
    ]
    assert percent(12.4) == "12%"


def test_sparkline_scales_to_the_largest_and_keeps_gaps():
    assert sparkline([0, 1, 2, None, 4]) == "▁▃▅ █"
    assert sparkline([None, 0]) == " ▁"
    assert sparkline([]) == ""


def test_nodes_table_matches_the_api(server):
    result = run(server, "nodes", "--window", "5m")
    assert result.exit_code == 0, result.output
    header, *_ = result.output.splitlines()
    assert header.split() == ["NODE", "CPU", "CPU%", "MEMORY", "MEMORY%", "CPU", "TREND"]
    api = {n["node"]: n["metrics"] for n in get_json(server + "/api/nodes")["items"]}
    shown = rows(result.output)
    assert [r[0] for r in shown] == sorted(api, key=lambda n: -api[n]["cpu_cores"])
    for name, cores, _, mem, _, trend in shown:
        assert cores == cpu(api[name]["cpu_cores"])
        assert mem == memory(api[name]["memory_used_bytes"])
        assert len(trend.strip()) >= 10 and set(trend) <= set("▁▂▃▄▅▆▇█ ")


def test_pods_of_a_namespace_wide_sorted_by_memory(server):
    result = run(server, "pods", "-n", "shop", "--sort", "memory", "-o", "wide")
    assert result.exit_code == 0, result.output
    assert result.output.split()[:4] == ["NAMESPACE", "NAME", "NODE", "DEPLOYMENT"]
    pods = get_json(server + "/api/pods?namespace=shop")["items"]
    by_name = {p["name"]: p for p in pods}
    shown = rows(result.output)
    assert {r[0] for r in shown} == {"shop"}
    assert sorted(r[1] for r in shown) == sorted(by_name)
    working_sets = [by_name[r[1]]["metrics"]["memory_working_set_bytes"] for r in shown]
    assert working_sets == sorted(working_sets, reverse=True)
    assert [r[2] for r in shown] == [by_name[r[1]]["node"] for r in shown]


def test_json_output_is_the_api_items(server):
    result = run(server, "deployments", "-A", "-o", "json", "--sort", "name")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    keys = [(d["namespace"], d["name"]) for d in items]
    assert keys == sorted(keys)
    query = urllib.parse.urlencode({"metrics": "pod_count,cpu_cores"})
    api = {
        (d["namespace"], d["name"]): d
        for d in get_json(f"{server}/api/deployments?{query}")["items"]
    }
    assert set(keys) == set(api)
    for d in items:
        assert d["metrics"]["pod_count"] == api[(d["namespace"], d["name"])]["metrics"]["pod_count"]


def test_one_namespace_and_an_unknown_one(server):
    result = run(server, "namespaces", "-n", "shop")
    assert result.exit_code == 0, result.output
    assert [r[0] for r in rows(result.output)] == ["shop"]
    result = run(server, "namespaces", "-n", "nowhere")
    assert result.exit_code == 0
    assert "No namespaces reported in the last 1h." in result.output


def test_watch_redraws_every_interval(server):
    console = Console(record=True, width=200, force_terminal=False)
    slept = []
    run_top("nodes", server, None, "cpu", "15m", "table", None, 10.0, console, 3, slept.append)
    assert slept == [10.0, 10.0]
    assert "node-000" in console.export_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pods", "-n", "shop", "-A"], "either -n/--namespace or -A"),
        (["nodes", "-n", "shop"], "nodes have no namespace"),
        (["pods", "--window", "soon"], "is not a duration"),
        (["pods", "--sort", "pods"], "pods cannot be sorted by pods"),
    ],
)
def test_usage_errors(server, args, message):
    result = run(server, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_server():
    result = CliRunner().invoke(top, ["nodes", "--server", "http://127.0.0.1:9"], env=ENV)
    assert result.exit_code == 1
    assert re.search(r"cannot reach the cloudmon server at http://127.0.0.1:9", result.output)


def test_importing_top_loads_no_server_code():
    code = (
        "import sys, cloudmon.top; "
        "print([m for m in sys.modules if m.startswith(('flask', 'cloudmon.server'))])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
