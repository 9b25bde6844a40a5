import pytest

from cloudmon.agent.node.vmstat import VmStat, parse_vmstat


def test_real_sample(node_files):
    assert parse_vmstat(node_files["vmstat"]) == VmStat(oom_kills=7)


def test_a_kernel_before_4_13_has_no_oom_kill_line():
    assert parse_vmstat("nr_free_pages 1402350\npgfault 92837465\n") == VmStat(oom_kills=None)


def test_no_kill_yet_is_zero_not_unknown():
    assert parse_vmstat("nr_free_pages 1\noom_kill 0\n") == VmStat(oom_kills=0)


@pytest.mark.parametrize(
    "text",
    ["", "\n", "nr_free_pages\n", "nr_free_pages -1\n", "the quick brown fox: 12 lazy dogs\n"],
)
def test_garbled_is_none(text):
    assert parse_vmstat(text) is None


def test_a_garbled_oom_kill_line_is_unknown():
    assert parse_vmstat("nr_free_pages 1\noom_kill many\n") == VmStat(oom_kills=None)


def test_this_machine():
    with open("/proc/vmstat") as f:
        found = parse_vmstat(f.read())
    assert found is not None and isinstance(found.oom_kills, int)
