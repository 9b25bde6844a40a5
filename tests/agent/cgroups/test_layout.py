"""Telling cgroup v1, v2 and hybrid hosts apart by looking at the tree."""

import pytest

from cloudmon.agent.cgroups import NoCgroupHierarchy, detect_layout, open_cgroups


def test_unified_only_below_the_root(tmp_path):
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("cpu memory io\n")
    layout = detect_layout(str(tmp_path))
    assert (layout.version, layout.root) == (2, str(tmp_path / "unified"))


def test_nothing_there(tmp_path):
    with pytest.raises(NoCgroupHierarchy):
        detect_layout(str(tmp_path))
    with pytest.raises(NoCgroupHierarchy):
        open_cgroups(str(tmp_path / "missing"))


def _mounted_cgroup_version() -> int | None:
    """What /proc/self/mountinfo says is mounted at /sys/fs/cgroup and below it."""
    v1 = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mount_point = fields[4]
            fstype = fields[fields.index("-") + 1]
            if mount_point == "/sys/fs/cgroup" and fstype == "cgroup2":
                return 2
            if mount_point.startswith("/sys/fs/cgroup/") and fstype == "cgroup":
                v1 = True
    return 1 if v1 else None


def test_this_machine():
    expected = _mounted_cgroup_version()
    if expected is None:
        pytest.skip("no cgroup file system mounted at /sys/fs/cgroup")
    assert open_cgroups("/sys/fs/cgroup").version == expected
