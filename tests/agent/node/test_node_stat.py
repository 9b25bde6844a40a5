import pytest

from cloudmon.agent.node.stat import USER_HZ, CpuStat, parse_stat

TAIL = "intr 1 2 3\nctxt 4\nbtime 1700000000\nprocesses 5\n"


def test_user_hz_is_the_kernel_clock_tick():
    assert USER_HZ > 0


@pytest.mark.parametrize(
    ("cpu_line", "busy_ticks"),
    [
        # 2.6.33+: user nice system idle iowait irq softirq steal guest guest_nice;
        # guest and guest_nice are inside user and nice, idle and iowait are idle.
        ("cpu  100 20 30 5000 400 5 6 7 80 9", 100 + 20 + 30 + 5 + 6 + 7),
        # 2.6.24: guest without guest_nice.
        ("cpu  100 20 30 5000 400 5 6 7 80", 168),
        # 2.6.11: steal is the last column.
        ("cpu  100 20 30 5000 400 5 6 7", 168),
        # 2.6.0: no steal.
        ("cpu  100 20 30 5000 400 5 6", 161),
        # 2.4: user nice system idle only.
        ("cpu  100 20 30 5000", 150),
    ],
)
def test_busy_time_for_each_kernel_variant(cpu_line, busy_ticks):
    text = f"{cpu_line}\ncpu0 1 2 3 4\ncpu1 5 6 7 8\n{TAIL}"
    reading = parse_stat(text)
    assert reading == CpuStat(busy_ticks / USER_HZ, 2, 1700000000.0)


def test_real_sample():
    text = (
        "cpu  237902850 368826709 106375398 1873517540 1135548 0 14507935 0 0 0\n"
        "cpu0 60045249 91891769 26331539 468411416 495718 0 5739640 0 0 0\n"
        "cpu1 60045249 91891769 26331539 468411416 495718 0 5739640 0 0 0\n"
        "cpu2 60045249 91891769 26331539 468411416 495718 0 5739640 0 0 0\n"
        "cpu3 60045249 91891769 26331539 468411416 495718 0 5739640 0 0 0\n"
        "btime 1764000000\n"
    )
    reading = parse_stat(text)
    assert reading.busy_seconds == pytest.approx(
        (237902850 + 368826709 + 106375398 + 14507935) / USER_HZ
    )
    assert reading.cpu_count == 4
    assert reading.boot_time == 1764000000.0
    assert isinstance(reading.cpu_count, int)


def test_cpu_count_ignores_the_total_line_and_other_lines():
    text = "cpu  1 1 1 1\ncpu0 1 1 1 1\ncpu17 1 1 1 1\ncpufreq 3\ncpu 1\nbtime 5\n"
    assert parse_stat(text).cpu_count == 2


def test_too_few_columns_leave_busy_unknown():
    reading = parse_stat("cpu  100 20 30\ncpu0 1 2 3 4\nbtime 7\n")
    assert reading.busy_seconds is None
    assert reading.cpu_count == 1
    assert reading.boot_time == 7.0


@pytest.mark.parametrize(
    "cpu_line",
    ["cpu  100 -20 30 5000", "cpu  100 x 30 5000", "cpu  1.5 2 3 4", f"cpu  {2**64} 0 0 0"],
)
def test_bad_counters_leave_busy_unknown(cpu_line):
    assert parse_stat(f"{cpu_line}\ncpu0 1 2 3 4\n").busy_seconds is None


def test_missing_parts_are_none():
    assert parse_stat("cpu  1 2 3 4\n") == CpuStat(6 / USER_HZ, None, None)
    assert parse_stat("btime 12\n") == CpuStat(None, None, 12.0)
    assert parse_stat("btime soon\ncpu0 1 2 3 4\n") == CpuStat(None, 1, None)


def test_a_cut_last_line_is_ignored():
    assert parse_stat("cpu0 1 2 3 4\nbtime 17640") == CpuStat(None, 1, None)
    # Cut after four columns, it would read as a 2.4 kernel's line.
    assert parse_stat("cpu  1000 200 300 5000") is None


@pytest.mark.parametrize("text", ["", "\n", "garbage\n", "intr 1 2 3\nctxt 4\n", "btime -5\n"])
def test_nothing_recognised_is_none(text):
    assert parse_stat(text) is None
