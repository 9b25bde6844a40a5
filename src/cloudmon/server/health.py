"""Liveness and readiness."""

from flask import Blueprint

from cloudmon.server.errors import ApiError
from cloudmon.server.state import state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The store answers queries."""
    try:
        state().storage.ping()
    except Exception as error:
        raise ApiError(503, f"storage: {error}") from None
    return {"status": "ready"}
