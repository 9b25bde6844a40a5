import pytest

from cloudmon.agent.node.loadavg import parse_loadavg


def test_real_sample():
    assert parse_loadavg("0.61 1.20 12.55 3/828 22084\n") == (0.61, 1.20, 12.55)


def test_the_last_pid_is_not_needed():
    assert parse_loadavg("0.00 0.01 0.05 1/2") == (0.0, 0.01, 0.05)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0.61 0.61\n",
        "0.61 1.20 0.5",  # cut inside load15
        "0.61 -0.61 0.55 3/828 1\n",
        "nan 0.61 0.55 3/828 1\n",
        "inf 0.61 0.55 3/828 1\n",
        "1e3 0.61 0.55 3/828 1\n",
        "0.61 0.61 x 3/828 1\n",
        "9999999999999999.00 0.61 0.55 3/828 1\n",
    ],
)
def test_garbled_is_none(text):
    assert parse_loadavg(text) is None
