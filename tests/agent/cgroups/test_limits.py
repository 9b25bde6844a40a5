"""Limits are read every LIMITS_EVERY cycles, not every cycle: a new limit shows within that."""

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import build

from cloudmon.agent.cgroups import open_cgroups, v1, v2
from cloudmon.agent.cgroups.base import LIMITS_EVERY

STACKED = frozenset()
CASE_FILES = {
    "v2-systemd-containerd": (v2, "", "memory.max"),
    "v1-systemd-docker": (v1, "/memory", "memory.limit_in_bytes"),
}


@pytest.fixture(params=sorted(CASE_FILES))
def node(request, tmp_path, monkeypatch):
    module, hierarchy, limit_file = CASE_FILES[request.param]
    built = build(CASES[request.param](), tmp_path)
    cgroups = open_cgroups(built.cgroup_root)
    opened = []
    real = module.read_text

    def counting(path):
        opened.append(path)
        return real(path)

    monkeypatch.setattr(module, "read_text", counting)
    pod = next(p for p in cgroups.find_pods() if p.qos == "guaranteed")
    path = f"{built.cgroup_root}{hierarchy}{pod.path}/{limit_file}"
    return cgroups, pod.path, path, opened


def cycle(cgroups, pod_path):
    cgroups.find_pods()
    return cgroups.read(pod_path, STACKED)


def test_a_changed_limit_shows_within_the_cycles_between_reads(node):
    cgroups, pod_path, limit_path, opened = node
    before = cgroups.read(pod_path, STACKED)["memory_limit_bytes"]
    with open(limit_path, "w") as f:
        f.write(f"{before * 2}\n")
    seen = [cycle(cgroups, pod_path)["memory_limit_bytes"] for _ in range(LIMITS_EVERY)]
    assert seen[-1] == before * 2
    assert seen.count(before * 2) < LIMITS_EVERY  # not read each cycle
    assert sum(path == limit_path for path in opened) == 2  # the first read, then once


def test_an_empty_limit_file_is_read_again_the_next_cycle(node):
    cgroups, pod_path, limit_path, _ = node
    with open(limit_path) as f:
        text = f.read()
    with open(limit_path, "w") as f:
        f.write("")
    assert cgroups.read(pod_path, STACKED)["memory_limit_bytes"] is None
    with open(limit_path, "w") as f:
        f.write(text)
    assert cycle(cgroups, pod_path)["memory_limit_bytes"] == int(text)
