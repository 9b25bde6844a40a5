import pytest

from cloudmon.agent.node.kernel import parse_osrelease, read_kernel


@pytest.mark.parametrize(
    ("text", "release"),
    [
        ("6.1.0-18-amd64\n", "6.1.0-18-amd64"),
        ("5.15.0-1057-aws", "5.15.0-1057-aws"),
        ("3.10.0-1160.el7.x86_64\n", "3.10.0-1160.el7.x86_64"),
        ("  6.8.0+  \n", "6.8.0+"),
    ],
)
def test_release(text, release):
    assert parse_osrelease(text) == release


@pytest.mark.parametrize("text", ["", "\n", "two words\n", "x" * 65, "6.1\x00\n", "6.1é\n"])
def test_garbled_is_none(text):
    assert parse_osrelease(text) is None


def test_read_through_the_proc_root(tmp_path, write_tree):
    root = write_tree(tmp_path, {"sys/kernel/osrelease": "6.6.6-test\n"})
    assert read_kernel(root) == "6.6.6-test"
    assert read_kernel(str(tmp_path / "nowhere")) is None
