"""Pressure stall information: /proc/pressure and the cgroups' *.pressure files."""

import pytest

from cloudmon.agent.psi import parse_pressure, read_pressure

SOME = "some avg10=1.25 avg60=0.54 avg300=2.78 total=2836053732\n"
FULL = "full avg10=0.00 avg60=0.00 avg300=0.00 total=5756\n"


def test_real_lines():
    assert parse_pressure(SOME + FULL) == {"some": 2836053732, "full": 5756}


def test_cpu_before_5_13_has_no_full_line():
    assert parse_pressure(SOME) == {"some": 2836053732}


@pytest.mark.parametrize(
    "text",
    ["", "\n", "some avg10=1.25 avg60=0.54 avg300=2.78 total=\n", "some total=12\n", "x" * 50],
)
def test_garbled_lines_are_not_read(text):
    assert parse_pressure(text) == {}


def test_read_gives_seconds_and_none_where_a_file_or_line_is_missing(tmp_path):
    (tmp_path / "cpu.pressure").write_text(SOME)
    (tmp_path / "io.pressure").write_text(SOME + FULL)
    assert read_pressure(str(tmp_path), ".pressure") == {
        "cpu_pressure_some_seconds_total": 2836.053732,
        "cpu_pressure_full_seconds_total": None,
        "memory_pressure_some_seconds_total": None,
        "memory_pressure_full_seconds_total": None,
        "io_pressure_some_seconds_total": 2836.053732,
        "io_pressure_full_seconds_total": 0.005756,
    }


def test_this_machine():
    found = read_pressure("/proc/pressure", "")
    if found["cpu_pressure_some_seconds_total"] is None:
        pytest.skip("this kernel has no PSI (/proc/pressure)")
    assert all(isinstance(value, float) for value in found.values())
