"""The web dashboard: one page at `/`, its assets under /assets/ (shipped in the package,
uPlot copied in by web/build.mjs) and the metric catalogue it labels charts with."""

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from cloudmon.metrics import BY_NAME, CATALOGUE
from cloudmon.storage.model import EXTRA_HELP

STATIC = Path(__file__).parent / "static"

bp = Blueprint("dashboard", __name__)

# Only the dashboard's own files run, in no other site's frame, and nothing is sent to another
# origin. uPlot sizes its elements through the style property, which style-src does not limit.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@bp.after_request
def add_security_headers(response: Response) -> Response:
    """Every dashboard answer carries the security headers."""
    response.headers.update(SECURITY_HEADERS)
    return response


# What legends and column headers call a metric: a few words, with the unit where a figure
# alone does not name it ("250m" does not say cores). Help texts explain; these name.
LABELS = {
    "cpu_cores": "CPU used (cores)",
    "cpu_percent": "CPU %",
    "cpu_capacity_cores": "CPU capacity (cores)",
    "cpu_request_cores": "CPU request (cores)",
    "cpu_limit_cores": "CPU limit (cores)",
    "memory_used_bytes": "Memory used",
    "memory_total_bytes": "Memory total",
    "memory_available_bytes": "Memory available",
    "memory_percent": "Memory %",
    "memory_usage_bytes": "Memory usage",
    "memory_working_set_bytes": "Working set",
    "memory_request_bytes": "Memory request",
    "memory_limit_bytes": "Memory limit",
    "disk_read_bps": "Disk read",
    "disk_write_bps": "Disk write",
    "network_rx_bps": "Network in",
    "network_tx_bps": "Network out",
    "load1": "Load, 1 min",
    "load5": "Load, 5 min",
    "load15": "Load, 15 min",
    "fs_total_bytes": "Disk size",
    "fs_used_bytes": "Disk used",
    "pod_count": "Pods",
    "node_count": "Nodes",
    "clock_skew_seconds": "Clock skew (s)",
    "cpu_throttled_percent": "Throttled periods",
    "cpu_pressure_some_ratio": "CPU stall",
    "cpu_pressure_full_ratio": "CPU stall, all tasks",
    "memory_pressure_some_ratio": "Memory stall",
    "memory_pressure_full_ratio": "Memory stall, all tasks",
    "io_pressure_some_ratio": "IO stall",
    "io_pressure_full_ratio": "IO stall, all tasks",
    "memory_anon_bytes": "Anonymous memory",
    "memory_file_bytes": "Page cache",
    "memory_oom_kills_total": "OOM kills",
    "restarts_total": "Restarts",
    "last_termination_oom_killed": "Last ended OOM killed",
}


def catalogue() -> dict[str, dict[str, str]]:
    """Unit, kind, label and help text of every metric the API answers with, by name."""
    known = {m.name: {"unit": m.unit, "kind": str(m.kind), "help": m.help} for m in CATALOGUE}
    for name, help_text in EXTRA_HELP.items():
        unit = BY_NAME["cpu_cores"].unit if name == "cpu_capacity_cores" else ""
        known.setdefault(name, {"unit": unit, "kind": "gauge", "help": help_text})
    for name, entry in known.items():
        entry["label"] = LABELS.get(name) or entry["help"][:1].upper() + entry["help"][1:]
    return known


@bp.get("/")
def index() -> Response:
    """The dashboard."""
    return send_from_directory(STATIC, "index.html", max_age=0)


@bp.get("/assets/catalogue.json")
def catalogue_json():
    """The metric catalogue the dashboard labels its charts with."""
    return catalogue()


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    """A file of the dashboard."""
    return send_from_directory(STATIC, name, max_age=0)
