"""Bearer tokens: read from files, compared in constant time, never logged."""

import hmac

from flask import request

from cloudmon.server.errors import ApiError
from cloudmon.tokens import read_token  # noqa: F401  (re-exported for the server)


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
