"""The original system's JSON files (`cloudmon export --format seed-json`, `cloudmon import`):
a span of the demo's cluster exported, then imported into an empty store, answers the same
for every kind; a malformed file is refused whole, naming its file, key and bucket; history
older than the raw samples' retention lands in the rollups."""

import json
import shutil

import pytest
from click.testing import CliRunner

from cloudmon import payload as wire
from cloudmon import seedjson
from cloudmon.cli import main
from cloudmon.demo import build_cluster
from cloudmon.server.app import create_app
from cloudmon.storage.base import RETENTION
from cloudmon.storage.sqlite import SqliteStorage

START = 1_764_097_200  # an hour's start
BUCKETS = 60
OLDEST, NEWEST = START - 7 * 86400, START + 86400


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stored(path, clock) -> SqliteStorage:
    return SqliteStorage(path, clock=clock)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The demo's cluster (2 nodes of 8 pods, containers, namespaces, deployments) over 10
    minutes, and the directory its export wrote."""
    directory = tmp_path_factory.mktemp("seed")
    clock = Clock(START)
    store = stored(directory / "a.db", clock)
    nodes = build_cluster(2, 8, seed=3, start=START + 1)
    for step in range(BUCKETS):
        t = START + 10 * step + 1
        clock.now = t
        bodies = [node.sample(t) for node in nodes]
        store.write(wire.decode(json.dumps(bodies).encode()))
    clock.now = START + 10 * BUCKETS + 5
    written = seedjson.export(store, START, START + 10 * BUCKETS, directory / "out")
    yield store, clock, directory / "out", written
    store.close()


def answers(store, clock, start, end) -> dict:
    """What the API answers for every kind, latest and over the span."""
    client = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock}).test_client()
    found = {}
    span = f"start={start}&end={end}&step=10s"
    for path in ("cluster", "nodes", "pods", "namespaces", "deployments"):
        for query in ("", span):
            found[path, query] = client.get(f"/api/{path}?{query}").get_json()
    for pod in found["pods", span]["items"]:
        url = f"/api/pods/{pod['namespace']}/{pod['name']}/containers?{span}"
        found[url] = client.get(url).get_json()
    return found


def test_an_export_imported_answers_the_same(exported, tmp_path):
    store, clock, directory, written = exported
    assert written["nodes.json"] == 3 * BUCKETS  # two nodes and the cluster
    assert written["pods.json"] == 16 * BUCKETS
    seed = seedjson.read(directory, OLDEST, NEWEST)
    assert len(seed.payloads) == 2 * BUCKETS
    into = stored(tmp_path / "b.db", clock)
    try:
        seedjson.write(into, seed.payloads)
        before = answers(store, clock, START, START + 10 * BUCKETS)
        after = answers(into, clock, START, START + 10 * BUCKETS)
        assert after.keys() == before.keys()
        for key in before:
            assert after[key] == before[key], key
        span = f"start={START}&end={START + 10 * BUCKETS}&step=10s"
        assert len(before["pods", span]["items"]) == 16
        assert len(before["deployments", ""]["items"]) > 1
        cpu = before["cluster", span]["series"]["cpu_cores"]
        assert sum(value is not None for value in cpu) == BUCKETS - 1  # no rate in the first
        assert sum(isinstance(key, str) for key in before) == 16  # each pod's containers
    finally:
        into.close()


def test_the_files_are_as_documented(exported):
    _, _, directory, _ = exported
    nodes = json.loads((directory / "nodes.json").read_text())
    assert set(nodes) == {"worker-1", "worker-2", "__all__"}
    bucket = str(START + 100)
    (entry,) = nodes["worker-1"][bucket]
    assert entry["node"] == "worker-1" and entry["timestamp"] == START + 100
    assert entry["info"]["cpu_count"] >= 1 and "cpu_cores" in entry["metrics"]
    assert "node_count" in nodes["__all__"][bucket][0]["metrics"]
    pods = json.loads((directory / "pods.json").read_text())
    key, buckets = next(iter(pods.items()))
    (pod,) = buckets[bucket]
    assert key == f"{pod['namespace']}/{pod['name']}"
    assert pod["containers"][0]["metrics"]["cpu_cores"] >= 0
    for name in ("namespaces.json", "deployments.json"):
        document = json.loads((directory / name).read_text())
        first = next(iter(document.values()))[bucket][0]
        assert isinstance(first["metrics"]["pod_count"], int)


def broken(directory, tmp_path, change) -> str:
    """The export with one change made to one file; the error importing it."""
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    name, mend = change
    document = json.loads((copy / name).read_text())
    mend(document)
    (copy / name).write_text(json.dumps(document))
    with pytest.raises(seedjson.SeedError) as error:
        seedjson.read(copy, OLDEST, NEWEST)
    return str(error.value)


def first_entry(document, key=None):
    key = key or next(iter(document))
    bucket = next(iter(document[key]))
    return key, bucket, document[key][bucket][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("pods.json", lambda d: first_entry(d)[2]["metrics"].update(cpu_cores="fast")),
            "pods.json: key '{key}', bucket {bucket}: cpu_cores: 'fast' is not a number",
        ),
        (
            ("pods.json", lambda d: first_entry(d)[2]["metrics"].update(cpu_speed=1)),
            "pods.json: key '{key}', bucket {bucket}: 'cpu_speed' is not a metric of pods",
        ),
        (
            ("pods.json", lambda d: first_entry(d)[2].update(name="other")),
            "pods.json: key '{key}', bucket {bucket}: the entry's identity does not match its key",
        ),
        (
            ("pods.json", lambda d: first_entry(d)[2].pop("node")),
            "pods.json: key '{key}', bucket {bucket}: the entry has no node",
        ),
        (
            ("pods.json", lambda d: first_entry(d)[2]["metrics"].update(memory_usage_bytes=-5)),
            "pods.json: key '{key}', bucket {bucket}: Expected `int` >= 0",
        ),
        (
            (
                "nodes.json",
                lambda d: d["worker-1"].update({"1764097205": d["worker-1"].popitem()[1]}),
            ),
            "nodes.json: key 'worker-1', bucket '1764097205': not the start of a 10 s bucket",
        ),
        (
            ("nodes.json", lambda d: d["worker-2"].update({str(OLDEST - 10): []})),
            f"nodes.json: key 'worker-2', bucket '{OLDEST - 10}': older than the longest retention",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_the_entry(exported, tmp_path, change, message):
    _, _, directory, _ = exported
    pods = json.loads((directory / "pods.json").read_text())
    key, bucket, _ = first_entry(pods)
    error = broken(directory, tmp_path, change)
    assert error.startswith(message.format(key=key, bucket=bucket)), error


def test_nothing_is_stored_of_a_refused_directory(exported, tmp_path):
    _, _, directory, _ = exported
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    (copy / "deployments.json").write_text("{not json")
    target = tmp_path / "c.db"
    result = CliRunner().invoke(main, ["import", str(copy), "--storage", f"sqlite:///{target}"])
    assert result.exit_code == 1
    assert "nothing imported: deployments.json: not JSON" in result.output
    assert not target.exists()


def test_the_original_systems_entries_and_repeated_reports(tmp_path):
    """Metrics beside the identity, several entries in a bucket (the last counts), a file of
    nodes alone."""
    directory = tmp_path / "seed"
    directory.mkdir()
    bucket = str(START)
    nodes = {
        "n1": {
            bucket: [
                {"node": "n1", "cpu_cores": 0.5, "memory_used_bytes": 100},
                {"node": "n1", "cpu_cores": 0.75, "memory_used_bytes": 200},
            ]
        }
    }
    (directory / "nodes.json").write_text(json.dumps(nodes))
    seed = seedjson.read(directory, OLDEST, NEWEST)
    (payload,) = seed.payloads
    assert payload.node_metrics.cpu_cores == 0.75
    assert payload.node_metrics.memory_used_bytes == 200
    assert seed.entries == {"nodes.json": 1}


def test_history_older_than_the_raw_samples_lands_in_the_rollups(exported, tmp_path):
    _, _, directory, _ = exported
    clock = Clock(START + 3 * 86400)  # the export is three days old now
    into = stored(tmp_path / "d.db", clock)
    try:
        seedjson.write(into, seedjson.read(directory, OLDEST, NEWEST).payloads)
        into.roll_up()
        into.expire()
        assert START + 3 * 86400 - RETENTION[10] > START + 10 * BUCKETS  # raw samples gone
        client = create_app({"CLOUDMON_STORAGE": into, "CLOUDMON_NOW": clock}).test_client()
        span = f"start={START}&end={START + 10 * BUCKETS - 1}&step=60s"
        answer = client.get(f"/api/cluster?{span}&metrics=node_count").get_json()
        assert answer["series"]["node_count"] == [2] * (BUCKETS // 6)
        raw = into.db.reader().execute("SELECT count(*) FROM node_sample").fetchone()[0]
        assert raw == 0
    finally:
        into.close()


def test_the_commands(exported, tmp_path):
    store, _, _, _ = exported
    out = tmp_path / "out"
    url = f"sqlite:///{store.path}"
    result = CliRunner().invoke(
        main,
        ["export", "--format", "seed-json", "--out", str(out), "--start", str(START)]
        + ["--end", str(START + 10 * BUCKETS), "--storage", url],
    )
    assert result.exit_code == 0, result.output
    assert f"{out / 'pods.json'}: {16 * BUCKETS} entries" in result.output
    result = CliRunner().invoke(
        main, ["export", "--out", str(out), "--window", "1h", "--start", "1"]
    )
    assert result.exit_code == 2 and "either --window or --start/--end" in result.output
