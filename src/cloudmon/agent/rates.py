"""Counters to rates over the real time between two samples."""

from cloudmon.metrics import Metric, Scope, rates_for, shares_for

_RATES = {scope: rates_for(scope) for scope in Scope}
_SHARES = {scope: shares_for(scope) for scope in Scope}
_RATE_FIELDS = {scope: [(m.name, m.rate_of, m.decimals) for m in _RATES[scope]] for scope in Scope}
# What a first sample has of them: nothing.
_DERIVED = {
    scope: dict.fromkeys(m.name for m in (*_RATES[scope], *_SHARES[scope])) for scope in Scope
}


class RateTracker:
    """Remembers each entity's counters from the previous cycle and fills in its rates."""

    def __init__(self) -> None:
        self._previous: dict[tuple, tuple[float, dict]] = {}
        self._current: dict[tuple, tuple[float, dict]] = {}

    def apply(self, scope: Scope, key: tuple, when: float, metrics: dict) -> None:
        """Set the rate and share fields of `metrics`: null on a first sample or when a
        counter went back."""
        previous = self._previous.get(key)
        self._current[key] = (when, metrics)
        if previous is None:
            metrics.update(_DERIVED[scope])
            return
        then, old = previous
        elapsed = when - then
        for name, counter, decimals in _RATE_FIELDS[scope]:
            increase = _increase(old.get(counter), metrics.get(counter))
            # `Metric.per_second`, inline: it runs for every rate of every pod and container.
            if increase is None or elapsed <= 0:
                metrics[name] = None
            else:
                metrics[name] = round(increase / elapsed, decimals)
        for share in _SHARES[scope]:
            metrics[share.name] = _share(share, old, metrics)

    def end_cycle(self) -> None:
        """Forget entities not seen this cycle, so pods that come and go don't pile up."""
        self._previous, self._current = self._current, {}


def _share(share: Metric, old: dict, metrics: dict) -> float | None:
    """100 x the increase of one counter / that of another since `old`; None where the
    second did not increase or either went back."""
    part, whole = share.share_of
    increases = [_increase(old.get(name), metrics.get(name)) for name in (part, whole)]
    if None in increases or not increases[1] or increases[0] > increases[1]:
        return None
    return share.share(*increases)


def _increase(old, new):
    """A counter's increase; None where either is unknown or it went back (it was reset: a
    cgroup made again, a disk attached again), rather than a negative one."""
    return None if old is None or new is None or new < old else new - old
