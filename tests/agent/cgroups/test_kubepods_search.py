"""The kubepods directories are searched for again every KUBEPODS_EVERY cycles: pods under
one made after the agent started are found within a minute."""

import os

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import build

from cloudmon.agent.cgroups import open_cgroups
from cloudmon.agent.cgroups.base import KUBEPODS_EVERY

UID = "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f"
CONTAINER = "db90aabe3ba0" + "1" * 52


@pytest.mark.parametrize("case", ["v2-systemd-containerd", "v1-systemd-docker"])
def test_a_kubepods_made_later_is_found_within_a_minute(case, tmp_path):
    cgroups = open_cgroups(build(CASES[case](), tmp_path).cgroup_root)
    before = {pod.uid for pod in cgroups.find_pods()}
    assert before and UID not in before
    # The kubelet started again with the cgroupfs driver; the systemd slices stay.
    os.makedirs(f"{cgroups.tree}/kubepods/besteffort/pod{UID}/{CONTAINER}")
    found = [{pod.uid for pod in cgroups.find_pods()} for _ in range(KUBEPODS_EVERY)]
    assert found[-1] == before | {UID}
    assert all(before <= uids for uids in found)
