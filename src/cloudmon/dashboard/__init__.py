"""The web dashboard: one page at `/`, its assets under /assets/ (shipped in the package,
uPlot copied in by web/build.mjs) and the metric catalogue it labels charts with."""

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from cloudmon.metrics import BY_NAME, CATALOGUE
from cloudmon.storage.base import EXTRA_HELP

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


def catalogue() -> dict[str, dict[str, str]]:
    """Unit, kind and help text of every metric the API answers with, by name."""
    known = {m.name: {"unit": m.unit, "kind": str(m.kind), "help": m.help} for m in CATALOGUE}
    for name, help_text in EXTRA_HELP.items():
        unit = BY_NAME["cpu_cores"].unit if name == "cpu_capacity_cores" else ""
        known.setdefault(name, {"unit": unit, "kind": "gauge", "help": help_text})
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
