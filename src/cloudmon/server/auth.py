"""Bearer tokens: read from files, compared in constant time, never logged."""

import hmac
from pathlib import Path

from flask import request

from cloudmon.server.errors import ApiError


def read_token(path: str | Path | None) -> str | None:
    """The token in a file, surrounding white space removed; None without a file."""
    if path is None:
        return None
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"{path}: the token file is empty")
    return token


def require(token: str | None) -> None:
    """Raise 401 unless the request carries `Authorization: Bearer <token>` (when set)."""
    check(request.headers.get("Authorization", ""), token)


def check(authorization: str, token: str | None) -> None:
    """Raise 401 unless an Authorization header value is `Bearer <token>` (when set)."""
    if token is None:
        return
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(
            401, "Authorization: missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
        )
