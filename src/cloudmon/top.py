"""`cloudmon top`: current values and a sparkline of the window per row, from the server's API.

The server's helpers (durations, token files) are imported when the command runs, so the
`cloudmon` command line loads no server code for the agent."""

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # rich is loaded when `top` runs, so the agent's command line never loads it
    from rich.console import Console
    from rich.table import Table

KINDS = ("nodes", "pods", "namespaces", "deployments")
SPARK_POINTS = 20
_BARS = "▁▂▃▄▅▆▇█"
_KI, _MI, _GI = 1 << 10, 1 << 20, 1 << 30


def cpu(value: float | None) -> str:
    """Cores as Kubernetes writes CPU requests: millicores (250m)."""
    return "-" if value is None else f"{round(value * 1000)}m"


def memory(value: float | None) -> str:
    """Bytes as Kubernetes writes memory requests: 512Ki, 128Mi, 12Gi."""
    if value is None:
        return "-"
    if value >= 10 * _GI:
        return f"{value / _GI:.1f}Gi"
    if value >= _MI:
        return f"{round(value / _MI)}Mi"
    return f"{round(value / _KI)}Ki"


def throughput(value: float | None) -> str:
    """Bytes per second in decimal units: 950B/s, 12.5KB/s, 3.2MB/s."""
    if value is None:
        return "-"
    for size, unit in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "KB/s")):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{round(value)}B/s"


def percent(value: float | None) -> str:
    """A share as 12%."""
    return "-" if value is None else f"{round(value)}%"


def count(value: float | None) -> str:
    """A count."""
    return "-" if value is None else str(int(value))


def sparkline(values: list[float | None]) -> str:
    """One block character per value, scaled from 0 to the largest; a gap where None."""
    largest = max((v for v in values if v is not None), default=None)
    if not largest:
        return "".join(" " if v is None else _BARS[0] for v in values)
    top = len(_BARS) - 1
    return "".join(
        " " if v is None else _BARS[min(top, max(0, math.ceil(v / largest * top)))] for v in values
    )


@dataclass(frozen=True)
class Column:
    """A column of `top`: its header, metric and format; wide columns show only with -o wide."""

    header: str
    metric: str
    format: Callable[[float | None], str]
    wide: bool = False


_GROUP = (
    Column("PODS", "pod_count", count),
    Column("CPU", "cpu_cores", cpu),
    Column("CPU-REQ", "cpu_request_cores", cpu, wide=True),
    Column("MEMORY", "memory_working_set_bytes", memory),
    Column("MEM-REQ", "memory_request_bytes", memory, wide=True),
    Column("NET-IN", "network_rx_bps", throughput, wide=True),
    Column("NET-OUT", "network_tx_bps", throughput, wide=True),
)
COLUMNS = {
    "nodes": (
        Column("CPU", "cpu_cores", cpu),
        Column("CPU%", "cpu_percent", percent),
        Column("MEMORY", "memory_used_bytes", memory),
        Column("MEMORY%", "memory_percent", percent),
        Column("PODS", "pod_count", count, wide=True),
        Column("NET-IN", "network_rx_bps", throughput, wide=True),
        Column("NET-OUT", "network_tx_bps", throughput, wide=True),
    ),
    "pods": (
        Column("CPU", "cpu_cores", cpu),
        Column("CPU-REQ", "cpu_request_cores", cpu, wide=True),
        Column("MEMORY", "memory_working_set_bytes", memory),
        Column("MEM-REQ", "memory_request_bytes", memory, wide=True),
        Column("NET-IN", "network_rx_bps", throughput, wide=True),
        Column("NET-OUT", "network_tx_bps", throughput, wide=True),
    ),
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


class TopError(click.ClickException):
    """The server could not be reached or refused the request."""


def fetch(
    server: str, kind: str, window: int, namespace: str | None, token: str | None = None
) -> list[dict]:
    """The items of GET /api/<kind> over the last `window` seconds, with series for sparklines."""
    step = max(10, math.ceil(window / SPARK_POINTS / 10) * 10)
    params = {
        "window": f"{window}s",
        "step": f"{step}s",
        "metrics": ",".join(c.metric for c in COLUMNS[kind]),
    }
    path = f"/api/{kind}"
    if namespace is not None and kind == "namespaces":
        path = f"/api/namespaces/{urllib.parse.quote(namespace, safe='')}"
    elif namespace is not None:
        params["namespace"] = namespace
    url = server.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as a:
            answer = json.loads(a.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]
        except (ValueError, KeyError):
            message = error.reason
        if error.code == 404 and kind == "namespaces":
            return []
        raise TopError(f"{server} answered {error.code}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TopError(f"cannot reach the cloudmon server at {server}: {reason}") from None
    return answer.get("items", [answer])


def sort_items(items: list[dict], kind: str, sort: str) -> list[dict]:
    """Items by name, or by a metric with the largest first (missing values last)."""
    if sort == "name":
        return sorted(items, key=lambda item: tuple(item.get(k) or "" for k in NAMES[kind]))
    wanted = SORTS[sort]
    names = (wanted,) if isinstance(wanted, str) else wanted
    metric = next((n for n in names if any(c.metric == n for c in COLUMNS[kind])), None)
    if metric is None:
        raise click.BadParameter(f"{kind} cannot be sorted by {sort}", param_hint="--sort")

    def key(item):
        value = item["metrics"].get(metric)
        return (value is None, -(value or 0))

    return sorted(items, key=key)


def table(items: list[dict], kind: str, wide: bool) -> "Table":
    """A rich table of items: names, current values and a sparkline of CPU over the window."""
    from rich.table import Table

    grid = Table(box=None, header_style="bold", pad_edge=False)
    names = NAMES[kind] + (WIDE_NAMES.get(kind, ()) if wide else ())
    columns = [c for c in COLUMNS[kind] if wide or not c.wide]
    for name in names:
        grid.add_column(name.upper(), no_wrap=True)
    for column in columns:
        grid.add_column(column.header, justify="right", no_wrap=True)
    grid.add_column("CPU TREND", no_wrap=True, style="cyan")
    for item in items:
        metrics = item["metrics"]
        trend = (item.get("series") or {}).get("cpu_cores", [])
        grid.add_row(
            *(str(item.get(n) or "-") for n in names),
            *(c.format(metrics.get(c.metric)) for c in columns),
            sparkline(trend),
        )
    return grid


def render(items: list[dict], kind: str, output: str, window: str):
    """What to print: a rich table, a message when there is nothing, or JSON text."""
    if output == "json":
        return json.dumps({"items": items}, indent=2)
    if not items:
        return f"No {kind} reported in the last {window}."
    return table(items, kind, output == "wide")


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
    """Print one table, or refresh it every `watch` seconds (for `cycles` rounds, or forever)."""
    from cloudmon.server.errors import ApiError
    from cloudmon.server.timeparams import parse_duration

    try:
        seconds = parse_duration("--window", window)
    except ApiError as error:
        raise click.BadParameter(error.message) from None
    from rich.console import Console
    from rich.live import Live

    console = console or Console()

    def view():
        items = fetch(server, kind, seconds, namespace, token)
        return render(sort_items(items, kind, sort), kind, output, window)

    if watch is None:
        shown = view()
        if output == "json":
            click.echo(shown)
        else:
            console.print(shown)
        return
    with Live(view(), console=console, auto_refresh=False) as live:
        done = 1
        while cycles is None or done < cycles:
            sleep(watch)
            live.update(view(), refresh=True)
            done += 1


@click.command("top")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("-n", "--namespace", default=None, help="Only this namespace.")
@click.option(
    "-A", "--all-namespaces", is_flag=True, help="All namespaces (the default without -n)."
)
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
    help="Redraw every --interval seconds until interrupted.",
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
    help="wide adds columns (requests, network, the pod's node); json prints the API's items.",
)
@click.option(
    "--server",
    envvar="CLOUDMON_SERVER",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of the cloudmon server.",
)
@click.option(
    "--token-file",
    envvar="CLOUDMON_READ_TOKEN_FILE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="File holding the bearer token the server's read endpoints require.",
)
def top(kind, namespace, all_namespaces, sort, window, watch, interval, output, server, token_file):
    """Current CPU, memory and network of nodes, pods, namespaces or deployments, with history."""
    if namespace is not None and all_namespaces:
        raise click.UsageError("give either -n/--namespace or -A/--all-namespaces")
    if namespace is not None and kind == "nodes":
        raise click.UsageError("nodes have no namespace")
    from cloudmon.server.auth import read_token

    token = read_token(token_file)
    run_top(kind, server, namespace, sort, window, output, token, interval if watch else None)
