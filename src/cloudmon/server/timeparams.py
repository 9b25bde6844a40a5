"""The time parameters every GET /api endpoint takes: window, start, end, step, agg, metrics."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cloudmon import durations
from cloudmon.server.errors import ApiError
from cloudmon.storage.base import AGGREGATIONS, BUCKET, RESOLUTIONS, Span

TIME_PARAMETERS = ("window", "start", "end", "step", "agg", "metrics")
MAX_POINTS = 1000  # the default step keeps a series at most at this many points
MIN_POINTS = MAX_POINTS // 10  # and, from the coarsest resolution that allows it, this many
POINT_LIMIT = 20_000  # a chosen step may give at most this many


@dataclass(frozen=True)
class TimeQuery:
    """A request's time parameters: a span for a series (None: latest) and metric names."""

    span: Span | None
    metrics: tuple[str, ...] | None


def _bad(name: str, problem: str) -> ApiError:
    return ApiError(400, f"{name}: {problem}")


def parse_duration(name: str, text: str) -> int:
    """Seconds of a duration such as 30s, 5m, 1h, 7d (a bare number is seconds)."""
    try:
        return durations.parse_duration(text)
    except ValueError as error:
        raise _bad(name, str(error)) from None


def parse_time(name: str, text: str) -> float:
    """Unix seconds from unix seconds or an RFC 3339 time with an offset."""
    try:
        return durations.parse_time(text)
    except ValueError as error:
        raise _bad(name, str(error)) from None


def default_step(start: float, end: float) -> int:
    """The step of a series without one: the smallest multiple of the coarsest resolution
    (1 h, 1 min or 10 s) that keeps [start, end] at MIN_POINTS to MAX_POINTS steps."""
    seconds = end - start
    for res in sorted(RESOLUTIONS, reverse=True):
        step = max(res, math.ceil(seconds / MAX_POINTS / res) * res)
        if seconds / step >= MIN_POINTS:
            return step
    return step


def parse(args: Mapping[str, str], now: float) -> TimeQuery:
    """The TimeQuery of a request's query arguments; raises ApiError (400) naming the fault."""
    metrics = None
    if "metrics" in args:
        metrics = tuple(name.strip() for name in args["metrics"].split(",") if name.strip())
        if not metrics:
            raise _bad("metrics", "names no metric")
    if "window" in args:
        if "start" in args or "end" in args:
            raise _bad("window", "give either window or start/end, not both")
        end = now
        # A span reaching before 1970 starts there: there is nothing earlier.
        start = max(0.0, now - parse_duration("window", args["window"]))
    elif "start" in args:
        start = parse_time("start", args["start"])
        end = parse_time("end", args["end"]) if "end" in args else now
        if start > end:
            raise _bad("start", "is after end")
    else:
        for name in ("end", "step", "agg"):
            if name in args:
                raise _bad(name, "needs window or start")
        return TimeQuery(None, metrics)
    if "step" in args:
        step = parse_duration("step", args["step"])
        if step % BUCKET:
            raise _bad("step", f"must be a multiple of {BUCKET} s")
    else:
        step = default_step(start, end)
    agg = args.get("agg", "avg")
    if agg not in AGGREGATIONS:
        raise _bad("agg", f"{agg!r} is not one of {', '.join(AGGREGATIONS)}")
    span = Span(math.floor(start), math.floor(end), step, agg)
    if len(span.steps()) > POINT_LIMIT:
        raise _bad("step", f"gives {len(span.steps())} points; at most {POINT_LIMIT}")
    return TimeQuery(span, metrics)
