"""`cloudmon top`: current values and a sparkline of the window per row, from the server's API.

The server's helpers (durations, token files) are imported when the command runs, so the
`cloudmon` command line loads no server code for the agent."""

import itertools
import json
import math
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from cloudmon.client import ServerError, get_json
from cloudmon.options import DURATION, namespaces, one_namespace_choice, server_client
from cloudmon.tokens import read_token

if TYPE_CHECKING:  # rich is loaded when `top` runs, so the agent's command line never loads it
    from rich.console import Console, RenderableType
    from rich.table import Table

KINDS = ("nodes", "pods", "namespaces", "deployments")
SPARK_POINTS = 20
TREND = "CPU TREND"
UID_CHARS = 8  # of a pod without metadata, shown instead of its name
SKEW_WARNING = 2.0  # seconds; time sync (NTP) keeps a healthy clock within milliseconds
_BARS = "▁▂▃▄▅▆▇█"
_MI = 1 << 20
_RATE_UNITS = ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "KB/s"))


def cpu(value: float | None) -> str:
    """Cores as Kubernetes writes CPU requests: millicores (250m)."""
    return "-" if value is None else f"{round(value * 1000)}m"


def memory(value: float | None) -> str:
    """Bytes in mebibytes throughout, as `kubectl top` shows memory: 128Mi, 12288Mi."""
    return "-" if value is None else f"{round(value / _MI)}Mi"


def throughput(values: list[float | None]) -> list[str]:
    """Bytes per second in one decimal unit for the whole column, the one its largest value
    reads best in: 0.9KB/s, 12.5KB/s; 950B/s."""
    largest = max((v for v in values if v is not None), default=0)
    size, unit = next(((size, unit) for size, unit in _RATE_UNITS if largest >= size), (1, "B/s"))
    digits = 0 if size == 1 else 1
    return ["-" if v is None else f"{v / size:.{digits}f}{unit}" for v in values]


def percent(value: float | None) -> str:
    """A share as 12%."""
    return "-" if value is None else f"{round(value)}%"


def share(value: float | None) -> str:
    """A share of time (0-1) as 12%."""
    return "-" if value is None else f"{round(100 * value)}%"


def count(value: float | None) -> str:
    """A count."""
    return "-" if value is None else str(int(value))


def skew(value: float | None) -> str:
    """A clock's offset in seconds, signed: +63s, -2.5s."""
    if value is None:
        return "-"
    return f"{value:+.0f}s" if abs(value) >= 10 else f"{value:+.1f}s"


def clock_skew(values: list[float | None]) -> list[str]:
    """Skews, those of a clock that is off marked with '!'."""
    return [skew(v) + ("!" if _clock_is_off(v) else "") for v in values]


def _clock_is_off(value: float | None) -> bool:
    return value is not None and abs(value) >= SKEW_WARNING


def _each(format_one: Callable[[float | None], str]) -> Callable[[list[float | None]], list[str]]:
    return lambda values: [format_one(v) for v in values]


def sparkline(values: list[float | None]) -> str:
    """One block character per value, from the series' lowest (▁) to its highest (█); a gap
    where None. A flat series is all ▁."""
    present = [v for v in values if v is not None]
    low, high = min(present, default=0), max(present, default=0)
    top = len(_BARS) - 1
    return "".join(
        " " if v is None else _BARS[round((v - low) / (high - low) * top) if high > low else 0]
        for v in values
    )


def shrink(values: list[float | None], points: int) -> list[float | None]:
    """A series in at most `points` points, each the mean of a run of neighbours (None where
    the run has no value)."""
    if len(values) <= points:
        return values
    runs = (
        values[len(values) * k // points : len(values) * (k + 1) // points] for k in range(points)
    )
    return [
        statistics.fmean(present) if (present := [v for v in run if v is not None]) else None
        for run in runs
    ]


@dataclass(frozen=True)
class Column:
    """A column of `top`: its header, metric and the format of its values (the whole column at
    once, so that it has one unit); wide columns show only with -o wide."""

    header: str
    metric: str
    format: Callable[[list[float | None]], list[str]]
    wide: bool = False


_POD_USAGE = (
    Column("CPU", "cpu_cores", _each(cpu)),
    Column("CPU-REQ", "cpu_request_cores", _each(cpu), wide=True),
    Column("MEMORY", "memory_working_set_bytes", _each(memory)),
    Column("MEM-REQ", "memory_request_bytes", _each(memory), wide=True),
    Column("NET-IN", "network_rx_bps", throughput, wide=True),
    Column("NET-OUT", "network_tx_bps", throughput, wide=True),
)
_GROUP = (Column("PODS", "pod_count", _each(count)), *_POD_USAGE)
# Where a pod is in trouble: throttled periods, time stalled on CPU and memory (PSI), OOM kills
# in its cgroups and restarts.
_POD_TROUBLE = (
    Column("THROTTLED", "cpu_throttled_percent", _each(percent), wide=True),
    Column("CPU-STALL", "cpu_pressure_some_ratio", _each(share), wide=True),
    Column("MEM-STALL", "memory_pressure_some_ratio", _each(share), wide=True),
    Column("OOM", "memory_oom_kills_total", _each(count), wide=True),
    Column("RESTARTS", "restarts_total", _each(count), wide=True),
)
COLUMNS = {
    "nodes": (
        Column("CPU", "cpu_cores", _each(cpu)),
        Column("CPU%", "cpu_percent", _each(percent)),
        Column("MEMORY", "memory_used_bytes", _each(memory)),
        Column("MEMORY%", "memory_percent", _each(percent)),
        Column("PODS", "pod_count", _each(count), wide=True),
        Column("NET-IN", "network_rx_bps", throughput, wide=True),
        Column("NET-OUT", "network_tx_bps", throughput, wide=True),
        Column("CPU-STALL", "cpu_pressure_some_ratio", _each(share), wide=True),
        Column("MEM-STALL", "memory_pressure_some_ratio", _each(share), wide=True),
        Column("IO-STALL", "io_pressure_some_ratio", _each(share), wide=True),
        Column("OOM", "memory_oom_kills_total", _each(count), wide=True),
        Column("SKEW", "clock_skew_seconds", clock_skew, wide=True),
    ),
    "pods": (*_POD_USAGE, *_POD_TROUBLE),
    "namespaces": _GROUP,
    "deployments": _GROUP,
}
NAMES = {
    "nodes": ("node",),
    "pods": ("namespace", "name"),
    "namespaces": ("namespace",),
    "deployments": ("namespace", "name"),
}
WIDE_NAMES = {"pods": ("node", "deployment")}
SORTS = {
    "cpu": "cpu_cores",
    "memory": ("memory_used_bytes", "memory_working_set_bytes"),
    "pods": "pod_count",
    "network": "network_rx_bps",
}
SORT_CHOICES = ("cpu", "memory", "pods", "network", "name")


def fetch(
    server: str,
    kind: str,
    window: int,
    namespace: str | None,
    metrics: list[str],
    token: str | None = None,
) -> list[dict]:
    """The items of GET /api/<kind> over the last `window` seconds, with series for sparklines."""
    step = max(10, math.ceil(window / SPARK_POINTS / 10) * 10)
    params = {"window": f"{window}s", "step": f"{step}s", "metrics": ",".join(metrics)}
    path = f"/api/{kind}"
    if namespace is not None and kind == "namespaces":
        path = f"/api/namespaces/{urllib.parse.quote(namespace, safe='')}"
    elif namespace is not None:
        params["namespace"] = namespace
    try:
        answer = get_json(server, path, params, token)
    except ServerError as error:
        if error.status == 404 and kind == "namespaces":
            return []
        raise
    return answer.get("items", [answer])


def name_of(item: dict, field: str) -> str:
    """An item's identity field, "-" when unknown; a pod without metadata is named by the
    start of its UID."""
    value = item.get(field)
    if value is None and field == "name" and item.get("uid"):
        return item["uid"][:UID_CHARS]
    return str(value or "-")


def sort_metric(kind: str, sort: str) -> str | None:
    """The metric rows are sorted by (None: by name)."""
    if sort == "name":
        return None
    wanted = SORTS[sort]
    names = (wanted,) if isinstance(wanted, str) else wanted
    metric = next((n for n in names if any(c.metric == n for c in COLUMNS[kind])), None)
    if metric is None:
        raise click.BadParameter(f"{kind} cannot be sorted by {sort}", param_hint="--sort")
    return metric


def sort_items(items: list[dict], kind: str, sort: str) -> list[dict]:
    """Items by name, or by a metric with the largest first (missing values last)."""
    metric = sort_metric(kind, sort)
    if metric is None:
        return sorted(items, key=lambda item: tuple(name_of(item, k) for k in NAMES[kind]))

    def key(item):
        value = item["metrics"].get(metric)
        return (value is None, -(value or 0))

    return sorted(items, key=key)


def width_of(headers: list[str], cells: list[list[str]]) -> int:
    """The width of a table of these columns (a header and cells each), nothing cut."""
    from rich.cells import cell_len

    # rich pads each column with a space on either side, but not at the table's edges
    needed = sum(max(map(cell_len, [h, *c])) for h, c in zip(headers, cells, strict=True))
    return needed + 2 * (len(headers) - 1)


def table(items: list[dict], kind: str, wide: bool, width: int | None) -> "Table":
    """A rich table of items: names, current values and a sparkline of CPU over the window.

    Nothing is cut: to fit in `width` (None: no limit) the sparkline shrinks or goes; a table
    that is still too wide is left for the terminal to wrap, as kubectl's are."""
    from rich.cells import cell_len
    from rich.table import Table

    names = NAMES[kind] + (WIDE_NAMES.get(kind, ()) if wide else ())
    columns = [c for c in COLUMNS[kind] if wide or not c.wide]
    headers = [n.upper() for n in names] + [c.header for c in columns]
    cells = [[name_of(item, n) for item in items] for n in names]
    cells += [c.format([item["metrics"].get(c.metric) for item in items]) for c in columns]
    needed = width_of(headers, cells)
    room = SPARK_POINTS if width is None else min(SPARK_POINTS, width - needed - 2)
    with_trend = room >= len(TREND)
    if with_trend:
        series = [(item.get("series") or {}).get("cpu_cores", []) for item in items]
        sparks = [sparkline(shrink(values, room)) for values in series]
        needed += 2 + max(map(cell_len, [TREND, *sparks]))
        cells.append(sparks)
    grid = Table(box=None, header_style="bold", pad_edge=False, width=needed)
    for name in names:
        grid.add_column(name.upper(), no_wrap=True)
    for column in columns:
        grid.add_column(column.header, justify="right", no_wrap=True)
    if with_trend:
        grid.add_column(TREND, no_wrap=True, style="cyan")
    for row in zip(*cells, strict=True):
        grid.add_row(*row)
    return grid


def clock_warning(items: list[dict]) -> str | None:
    """A line naming the nodes whose clocks are off from the server's, and by how much."""
    off = [
        f"{name_of(item, 'node')} ({skew(value)})"
        for item in items
        if _clock_is_off(value := item["metrics"].get("clock_skew_seconds"))
    ]
    if not off:
        return None
    return (
        f"! clocks off from the server's by {SKEW_WARNING:g} s or more: {', '.join(off)}; "
        "check time sync (NTP) on these nodes"
    )


def render(
    items: list[dict], kind: str, output: str, window: str, width: int | None
) -> "RenderableType":
    """What to print: a rich table (with any clock warning under it), a message when there is
    nothing, or JSON text."""
    from rich.console import Group
    from rich.text import Text

    if output == "json":
        return json.dumps({"items": items}, indent=2)
    if not items:
        return f"No {kind} reported in the last {window}."
    grid = table(items, kind, output == "wide", width)
    warning = clock_warning(items)
    return Group(grid, Text(warning, style="yellow")) if warning else grid


def run_top(
    kind: str,
    server: str,
    namespace: str | None,
    sort: str,
    window: str,
    output: str,
    token: str | None,
    watch: float | None = None,
    console: "Console | None" = None,
    cycles: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print one table, or one every `watch` seconds (for `cycles` rounds, or forever): on a
    clear screen on a terminal, one after another otherwise."""
    seconds = DURATION.convert(window, None, None)
    from rich.console import Console

    console = console or Console()
    wide = output != "table"
    metrics = [c.metric for c in COLUMNS[kind] if wide or not c.wide]
    sorted_by = sort_metric(kind, sort)  # a sort the kind has not is refused before asking
    if sorted_by is not None and sorted_by not in metrics:
        metrics.append(sorted_by)

    def view():
        items = fetch(server, kind, seconds, namespace, metrics, token)
        width = console.width if console.is_terminal else None
        return render(sort_items(items, kind, sort), kind, output, window, width)

    for done in itertools.count(1):
        frame = view()
        if output == "json":
            click.echo(frame)
        else:
            # rich.live.Live would cut lines wider than the terminal; watch(1) clears instead.
            if watch is not None and console.is_terminal:
                console.clear()
            # Not on a terminal, no line is wrapped or cut to the console's width.
            console.print(frame, crop=False, soft_wrap=not console.is_terminal)
        if watch is None or done == cycles:
            return
        sleep(watch)


@click.command("top")
@click.argument("kind", type=click.Choice(KINDS))
@namespaces
@click.option(
    "--sort",
    type=click.Choice(SORT_CHOICES),
    default="cpu",
    show_default=True,
    help="Order rows by this, largest first (name: alphabetically).",
)
@click.option(
    "--window", default="1h", show_default=True, help="History the sparklines show (5m, 1h, 7d)."
)
@click.option(
    "--watch",
    "watch",
    is_flag=True,
    help="Redraw every --interval seconds until Ctrl-C (status 130); not on a terminal, print "
    "each table after the last.",
)
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds between redraws with --watch.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "json"]),
    default="table",
    show_default=True,
    help="wide adds columns (requests, network, the pod's node, throttling, time stalled on "
    "CPU, memory and IO, OOM kills, restarts, the node's clock skew); json "
    "prints the API's items.",
)
@server_client
def top(kind, namespace, all_namespaces, sort, window, watch, interval, output, server, token_file):
    """Current CPU, memory and network of nodes, pods, namespaces or deployments, with history."""
    one_namespace_choice(namespace, all_namespaces)
    if namespace is not None and kind == "nodes":
        raise click.UsageError("nodes have no namespace")
    token = read_token(token_file)
    try:
        run_top(kind, server, namespace, sort, window, output, token, interval if watch else None)
    except KeyboardInterrupt:
        # Ctrl-C is how --watch ends, so no "Aborted!"; but 130 (128 + SIGINT), as a shell
        # reports a program Ctrl-C stopped, so that a script can tell it did not finish.
        if sys.stdout.isatty():
            click.echo()  # the prompt goes under the terminal's ^C, as a shell would put it
        sys.exit(130)
