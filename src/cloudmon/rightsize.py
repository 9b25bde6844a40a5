"""`cloudmon rightsize`: each workload's usage against its requests and limits, and what to
set them to, from the server's GET /api/rightsize; a table like krr's, or JSON, YAML, CSV."""

import csv
import io
import json
from dataclasses import fields

import click

from cloudmon.client import get_json
from cloudmon.options import namespaces, one_namespace_choice, server_client
from cloudmon.rightsizing import KNOB_HELP, Strategy
from cloudmon.tokens import read_token
from cloudmon.top import cpu, memory, share, width_of

# A row of the CSV: a container of a workload.
CSV_FIELDS = (
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "pods",
    "replicas",
    "cpu_minutes",
    "cpu_p50",
    "cpu_p95",
    "cpu_p99",
    "cpu_max",
    "cpu_request",
    "cpu_limit",
    "cpu_throttled_share",
    "memory_p50",
    "memory_p95",
    "memory_max",
    "memory_request",
    "memory_limit",
    "oom_kills",
    "restarts",
    "recommended_cpu_request",
    "recommended_cpu_limit",
    "recommended_memory_request",
    "recommended_memory_limit",
    "findings",
)


def rows(answer: dict) -> list[dict]:
    """A flat row (CSV_FIELDS) per container of each workload of an answer."""
    found = []
    for item in answer["items"]:
        for container in item["containers"]:
            usage_cpu, usage_memory = container["cpu"], container["memory"]
            recommended = container["recommendation"] or {}
            row = {
                "namespace": item["namespace"],
                "workload_kind": item["workload_kind"],
                "workload": item["workload"],
                "container": container["name"],
                "pods": item["pods"],
                "replicas": item["replicas"],
                "cpu_minutes": container["minutes"]["cpu"],
                "cpu_throttled_share": usage_cpu["throttled_share"],
                "oom_kills": container["oom_kills"],
                "restarts": container["restarts"],
                "findings": " ".join(map(_finding, container["findings"])),
            }
            for name in ("p50", "p95", "p99", "max", "request", "limit"):
                row[f"cpu_{name}"] = usage_cpu[name]
            for name in ("p50", "p95", "max", "request", "limit"):
                row[f"memory_{name}"] = usage_memory[name]
            for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
                unit = "cores" if name.startswith("cpu") else "bytes"
                row[f"recommended_{name}"] = recommended.get(f"{name}_{unit}")
            found.append(row)
    return found


def _finding(finding: dict) -> str:
    """A finding by name, and resource where it has one: under_provisioned:memory."""
    resource = finding.get("resource")
    return finding["finding"] if resource is None else f"{finding['finding']}:{resource}"


def _change(row: dict, name: str, show) -> str:
    """A value now, and the one recommended where there is one and it differs: 100m -> 250m."""
    now = show(row[name])
    if row["recommended_cpu_request"] is None or show(row[f"recommended_{name}"]) == now:
        return now
    return f"{now} -> {show(row[f'recommended_{name}'])}"


HEADERS = (
    "NAMESPACE",
    "WORKLOAD",
    "CONTAINER",
    "PODS",
    "CPU P95",
    "CPU REQUEST",
    "CPU LIMIT",
    "MEM MAX",
    "MEM REQUEST",
    "MEM LIMIT",
    "THROTTLED",
    "FINDINGS",
)


def table(answer: dict):
    """A rich table: a row per container of each workload, its requests and limits now and
    recommended; nothing cut (a table wider than the terminal is left for it to wrap)."""
    from rich.table import Table

    lines = []
    for row in rows(answer):
        recommended = row["recommended_cpu_request"] is not None
        lines.append(
            [
                row["namespace"],
                f"{row['workload_kind']}/{row['workload']}",
                row["container"] or "-",
                str(row["pods"]),
                cpu(row["cpu_p95"]),
                *(_change(row, name, cpu) for name in ("cpu_request", "cpu_limit")),
                memory(row["memory_max"]),
                *(_change(row, name, memory) for name in ("memory_request", "memory_limit")),
                share(row["cpu_throttled_share"]),
                row["findings"] or ("-" if recommended else "not enough data"),
            ]
        )
    columns = [list(cells) for cells in zip(*lines, strict=True)] or [[] for _ in HEADERS]
    view = Table(box=None, header_style="bold", pad_edge=False, width=width_of(HEADERS, columns))
    for title in HEADERS:
        view.add_column(title, no_wrap=True)
    for line in lines:
        view.add_row(*line)
    return view


def render(answer: dict, output: str) -> str:
    """The answer as `output` says: json, yaml or csv (the table is printed by rich)."""
    if output == "json":
        return json.dumps(answer, indent=2)
    if output == "yaml":
        import yaml

        return yaml.safe_dump(answer, sort_keys=False)
    text = io.StringIO()
    writer = csv.DictWriter(text, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(answer))
    return text.getvalue()


def _knob_options(command):
    """An option of each knob of the strategy: --cpu-percentile, --memory-buffer, ..."""
    for knob in reversed(fields(Strategy)):
        kind = int if knob.type is int else float
        command = click.option(
            f"--{knob.name.replace('_', '-')}",
            knob.name,
            type=kind,
            default=None,
            help=f"{KNOB_HELP[knob.name][0].upper()}{KNOB_HELP[knob.name][1:]} (default"
            f" {knob.default}).",
        )(command)
    return command


@click.command("rightsize")
@namespaces
@click.option("--window", default="7d", show_default=True, help="The history used (1d, 7d, 30d).")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "yaml", "csv"]),
    default="table",
    show_default=True,
    help="json and yaml print the API's answer whole (with the findings' sums and each"
    " workload's kubectl patch); csv a row per container of each workload.",
)
@_knob_options
@server_client
def rightsize(namespace, all_namespaces, window, output, server, token_file, **knobs):
    """Each workload's CPU and memory usage against its requests and limits, and
    recommendations (see the README for the strategy and its knobs)."""
    one_namespace_choice(namespace, all_namespaces)
    params = {"window": window} | {k: v for k, v in knobs.items() if v is not None}
    if namespace is not None:
        params["namespace"] = namespace
    answer = get_json(server, "/api/rightsize", params, read_token(token_file))
    if output != "table":
        click.echo(render(answer, output), nl=False)
        return
    from rich.console import Console

    console = Console()
    console.print(table(answer), crop=False, soft_wrap=not console.is_terminal)
    summary = answer["summary"]["cluster"]
    console.print(
        f"could be released: {cpu(summary['released_cpu_cores'])} CPU,"
        f" {memory(summary['released_memory_bytes'])} memory; missing:"
        f" {cpu(summary['missing_cpu_cores'])} CPU, {memory(summary['missing_memory_bytes'])}"
        " memory",
        crop=False,
        soft_wrap=True,
    )
