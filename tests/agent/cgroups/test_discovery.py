"""Pod and container discovery from cgroup directory names."""

import os
import shutil

import pytest

from cloudmon.agent.cgroups import discovery
from cloudmon.agent.cgroups.discovery import find_kubepods, find_pods

UID = "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f"
UID_ = UID.replace("-", "_")
STATIC = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
C1 = "db90aabe3ba0" + "1" * 52
C2 = "0123456789ab" + "f" * 52


def mkdirs(root, *paths):
    for path in paths:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)


def test_systemd_names(tmp_path):
    mkdirs(
        tmp_path,
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{C1}.scope",
        f"/kubepods.slice/kubepods-pod{STATIC}.slice/crio-{C2}.scope",
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{C2}.scope",
    )
    pods = sorted(find_pods(str(tmp_path)), key=lambda p: p.qos)
    assert [(p.uid, p.qos) for p in pods] == [
        (UID, "besteffort"),
        (UID, "burstable"),
        (STATIC, "guaranteed"),
    ]
    assert [(c.id, c.runtime) for p in pods for c in p.containers] == [
        (C2, "docker"),
        (C1, "containerd"),
        (C2, "crio"),
    ]
    assert pods[1].containers[0].path == (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
        f"/cri-containerd-{C1}.scope"
    )


def test_cgroupfs_names(tmp_path):
    mkdirs(tmp_path, f"/kubepods/burstable/pod{UID}/{C1}", f"/kubepods/pod{STATIC}/crio-{C2}")
    pods = {p.uid: p for p in find_pods(str(tmp_path))}
    assert pods[UID].qos == "burstable"
    assert pods[UID].path == f"/kubepods/burstable/pod{UID}"
    assert pods[UID].containers[0].runtime == "unknown"
    assert (pods[STATIC].qos, pods[STATIC].containers[0].runtime) == ("guaranteed", "crio")


def test_everything_else_in_a_pod_is_ignored(tmp_path):
    pod = f"/kubepods/besteffort/pod{UID}"
    mkdirs(
        tmp_path,
        f"{pod}/crio-conmon-{C1}",
        f"{pod}/crio-conmon-{C1}.scope",
        f"{pod}/{C1[:12]}",
        f"{pod}/{C1.upper()}",
        f"{pod}/cri-containerd-{C1}",
        f"{pod}/something-else",
        f"{pod}/{C2}",
        "/kubepods/besteffort/not-a-pod",
        f"/kubepods/besteffort/pod{UID}x",
        "/kubepods/burstable/pod1234",
    )
    (tmp_path / pod.lstrip("/") / C1).write_text("a file, not a cgroup")
    (tmp_path / "kubepods" / "besteffort" / f"pod{STATIC}").write_text("")
    pods = find_pods(str(tmp_path))
    assert [(p.uid, [c.id for c in p.containers]) for p in pods] == [(UID, [C2])]


@pytest.mark.parametrize(
    "prefix",
    ["/kubelet.slice/kubelet-kubepods.slice", "/kubelet/kubepods", "/a/b/kubepods"],
)
def test_kubepods_below_a_cgroup_root(tmp_path, prefix):
    burstable = "kubelet-kubepods-burstable.slice" if "slice" in prefix else "burstable"
    pod = f"kubelet-kubepods-burstable-pod{UID_}.slice" if "slice" in prefix else f"pod{UID}"
    mkdirs(tmp_path, f"{prefix}/{burstable}/{pod}/{C1}", "/system.slice/containerd.service")
    assert find_kubepods(str(tmp_path)) == [prefix]
    [found] = find_pods(str(tmp_path))
    assert (found.uid, found.qos, found.containers[0].id) == (UID, "burstable", C1)


def test_search_depth_is_bounded(tmp_path):
    mkdirs(tmp_path, f"/a/b/c/kubepods/pod{UID}")
    assert find_kubepods(str(tmp_path)) == []
    assert find_kubepods(str(tmp_path), max_depth=4) == ["/a/b/c/kubepods"]


def test_no_kubelet(tmp_path):
    mkdirs(tmp_path, "/system.slice/ssh.service", "/user.slice")
    assert find_pods(str(tmp_path)) == []
    assert find_pods(str(tmp_path / "missing")) == []


def test_a_pod_that_vanishes_while_walking_is_skipped(tmp_path, monkeypatch):
    gone = f"/kubepods/burstable/pod{UID}"
    mkdirs(tmp_path, f"{gone}/{C1}", f"/kubepods/pod{STATIC}/{C2}")
    real = os.scandir

    def vanishing(path):
        if str(path).endswith(gone):
            shutil.rmtree(path)
        return real(path)

    monkeypatch.setattr(discovery.os, "scandir", vanishing)
    assert [p.uid for p in find_pods(str(tmp_path))] == [STATIC]


def test_a_qos_level_that_vanishes_is_skipped(tmp_path, monkeypatch):
    mkdirs(tmp_path, f"/kubepods/burstable/pod{UID}/{C1}", f"/kubepods/pod{STATIC}/{C2}")
    real = discovery._subdirectories

    def vanishing(path):
        if path.endswith("/burstable"):
            shutil.rmtree(path)
        return real(path)

    monkeypatch.setattr(discovery, "_subdirectories", vanishing)
    assert [p.uid for p in find_pods(str(tmp_path))] == [STATIC]
