import pytest

from cloudmon.agent.rates import RateTracker
from cloudmon.metrics import Scope


def _sample(tracker, when, **counters):
    metrics = dict(counters)
    tracker.apply(Scope.POD, ("pod", "u1"), when, metrics)
    tracker.end_cycle()
    return metrics


def test_first_sample_has_no_rates():
    metrics = _sample(RateTracker(), 100.0, cpu_usage_seconds_total=5.0)
    assert metrics["cpu_cores"] is None
    assert metrics["disk_read_bps"] is None
    assert metrics["network_tx_bps"] is None


@pytest.mark.parametrize(
    ("then", "cpu", "written", "cores", "bps"),
    [
        (102.5, 7.5, 6000, 1.0, 2000.0),  # over the real time between samples
        (103.0, 6.0, 1001, 0.333333333, 0.333),  # whole nanocores, thousandths of a byte a second
    ],
)
def test_rate_over_the_real_time_between_samples(then, cpu, written, cores, bps):
    tracker = RateTracker()
    _sample(tracker, 100.0, cpu_usage_seconds_total=5.0, disk_write_bytes_total=1000)
    metrics = _sample(tracker, then, cpu_usage_seconds_total=cpu, disk_write_bytes_total=written)
    assert metrics["cpu_cores"] == cores
    assert metrics["disk_write_bps"] == bps


def test_counter_reset_gives_null_not_negative():
    tracker = RateTracker()
    _sample(tracker, 100.0, cpu_usage_seconds_total=50.0)
    metrics = _sample(tracker, 110.0, cpu_usage_seconds_total=1.0)
    assert metrics["cpu_cores"] is None
    # The reset value becomes the new base.
    assert _sample(tracker, 120.0, cpu_usage_seconds_total=11.0)["cpu_cores"] == 1.0


def test_missing_counter_gives_null_rate():
    tracker = RateTracker()
    _sample(tracker, 100.0, cpu_usage_seconds_total=None)
    assert _sample(tracker, 110.0, cpu_usage_seconds_total=3.0)["cpu_cores"] is None
    assert _sample(tracker, 120.0, cpu_usage_seconds_total=None)["cpu_cores"] is None


def test_entities_not_seen_are_forgotten():
    tracker = RateTracker()
    _sample(tracker, 100.0, cpu_usage_seconds_total=1.0)
    tracker.end_cycle()  # a cycle in which the pod was not seen
    assert _sample(tracker, 120.0, cpu_usage_seconds_total=3.0)["cpu_cores"] is None


def test_scopes_only_get_their_rates():
    tracker = RateTracker()
    metrics = {"cpu_usage_seconds_total": 1.0}
    tracker.apply(Scope.CONTAINER, ("container", "u", "c"), 1.0, metrics)
    assert "network_rx_bps" not in metrics
    assert "cpu_cores" in metrics


@pytest.mark.parametrize(
    ("periods", "throttled", "share"),
    [
        ((100, 150), (10, 30), 40.0),  # throttled in 20 of the last 50 periods
        ((100, 100), (10, 10), None),  # no period ran: no quota, or idle
        ((100, 150), (10, 10), 0.0),
        ((100, 20), (10, 12), None),  # the cgroup was made again: its counters went back
        ((100, 150), (None, 30), None),
    ],
)
def test_throttled_share_of_the_periods_since_the_previous_sample(periods, throttled, share):
    tracker = RateTracker()
    for when, ran, held in zip((100.0, 110.0), periods, throttled, strict=True):
        metrics = _sample(tracker, when, cpu_periods_total=ran, cpu_throttled_periods_total=held)
    assert metrics["cpu_throttled_percent"] == share


def test_first_sample_has_no_throttled_share():
    metrics = _sample(RateTracker(), 100.0, cpu_periods_total=10, cpu_throttled_periods_total=5)
    assert metrics["cpu_throttled_percent"] is None
