"""`cloudmon export` from any store: the same payloads written to SQLite and to each
Prometheus-compatible engine export the same entries (the engines add a group's figures up in
floats: the same to 1e-9)."""

import json

import pytest
from store_payloads import T0, node_payload, payloads

from cloudmon import seedjson
from cloudmon.storage import open_storage


def write_cluster(store) -> None:
    for step in range(6):
        pods = [("a", "shop", 0.25 + step / 8), ("b", "shop", 0.5), ("c", "kube-system", 0.125)]
        store.write(payloads(node_payload("n1", T0 + 10 * step, pods, cpu_cores=1.0 + step)))


def exported(store, directory) -> dict:
    written = seedjson.export(store, T0, T0 + 50, directory)
    assert written["nodes.json"] == 12  # the node and the cluster, 6 buckets each
    return {name: json.loads((directory / name).read_text()) for name in seedjson.FILES}


def test_every_store_exports_the_same_entries(backend, tmp_path, clock):
    write_cluster(backend)
    clock.now = T0 + 65
    found = exported(backend, tmp_path / "out")
    reference = open_storage(f"sqlite:///{tmp_path}/reference.db", clock=clock)
    try:
        write_cluster(reference)
        expected = exported(reference, tmp_path / "reference")
    finally:
        reference.close()
    assert found.keys() == expected.keys()
    for name, document in expected.items():
        assert _same(found[name], document), name
    assert len(found["pods.json"]) == 3
    assert found["pods.json"]["shop/a"][str(T0 + 50)][0]["metrics"]["cpu_cores"] == 0.875


def _same(found, expected) -> bool:
    """Documents alike, their floats to 1e-9."""
    if isinstance(expected, dict):
        return found.keys() == expected.keys() and all(
            _same(found[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return len(found) == len(expected) and all(map(_same, found, expected))
    if isinstance(expected, float):
        return found == pytest.approx(expected, rel=1e-9)
    return found == expected
