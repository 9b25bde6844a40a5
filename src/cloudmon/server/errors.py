"""Every error answer is JSON {"error": "..."} naming the field or parameter at fault."""

import logging

import msgspec
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from cloudmon.storage.base import EngineError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 2xx, with a message for the client."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.details = details or {}  # more fields of the JSON answer, for programs

    def answer(self) -> dict:
        """The JSON answer: {"error": message} and the details."""
        return {"error": self.message, **self.details}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON answer of an error, counted in the server's figures."""
    return _response(ApiError(status, message, headers))


def _response(error: ApiError) -> Response:
    server = current_app.extensions.get("cloudmon")
    if server is not None:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unknown"
        server.rejected.labels(endpoint, str(error.status)).inc()
    body = msgspec.json.encode(error.answer())
    return Response(body, status=error.status, mimetype="application/json", headers=error.headers)


def _http_error(error: HTTPException) -> Response:
    if error.code == 404:
        message = "no such path"
    elif error.code == 413:
        message = "body: larger than the limit"
    else:
        message = error.description or error.name
    response = error_response(error.code or 500, message)
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def engine_error(error: EngineError) -> "ApiError":
    """A store's engine refusing a request, as the 502 that says so."""
    log.warning("the store's engine refused a request: %s", error)
    return ApiError(502, f"storage: the store's engine answered {error}")


def _unexpected(error: Exception) -> Response:
    log.exception("unexpected error")
    return error_response(500, "internal error; see the server's log")


def register(app: Flask) -> None:
    """Install the JSON error handlers."""
    app.register_error_handler(ApiError, _response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(EngineError, lambda e: error_response(502, engine_error(e).message))
    app.register_error_handler(Exception, _unexpected)
