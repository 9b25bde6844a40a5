"""Counters to rates over the real time between two samples."""

from cloudmon.metrics import Metric, Scope, rates_for, shares_for

_RATES = {scope: rates_for(scope) for scope in Scope}
_SHARES = {scope: shares_for(scope) for scope in Scope}


class RateTracker:
    """Remembers each entity's counters from the previous cycle and fills in its rates."""

    def __init__(self) -> None:
        self._previous: dict[tuple, tuple[float, dict]] = {}
        self._current: dict[tuple, tuple[float, dict]] = {}

    def apply(self, scope: Scope, key: tuple, when: float, metrics: dict) -> None:
        """Set the rate and share fields of `metrics`: null on a first sample or when a
        counter went back."""
        previous = self._previous.get(key)
        for rate in _RATES[scope]:
            metrics[rate.name] = _rate(rate, previous, when, metrics.get(rate.rate_of))
        for share in _SHARES[scope]:
            metrics[share.name] = _share(share, previous, metrics)
        self._current[key] = (when, metrics)

    def end_cycle(self) -> None:
        """Forget entities not seen this cycle, so pods that come and go don't pile up."""
        self._previous, self._current = self._current, {}


def _rate(rate: Metric, previous, when: float, value) -> float | None:
    if previous is None or value is None:
        return None
    then, old_metrics = previous
    old = old_metrics.get(rate.rate_of)
    elapsed = when - then
    # A counter that went back was reset (a cgroup recreated, a disk re-attached): no rate
    # rather than a negative one.
    if old is None or elapsed <= 0 or value < old:
        return None
    return rate.per_second(value - old, elapsed)


def _share(share: Metric, previous, metrics: dict) -> float | None:
    """100 x the increase of one counter / that of another; None where the second did not
    increase or either went back."""
    if previous is None:
        return None
    part, whole = share.share_of
    increases = [_increase(previous[1].get(name), metrics.get(name)) for name in (part, whole)]
    if None in increases or not increases[1] or increases[0] > increases[1]:
        return None
    return 100 * increases[0] / increases[1]


def _increase(old, new):
    return None if old is None or new is None or new < old else new - old
