"""The commands' client of the server's API (`cloudmon top`, `cloudmon rightsize`): a GET
whose failures are told as the server or the network told them."""

import json
import urllib.error
import urllib.parse
import urllib.request

import click


class ServerError(click.ClickException):
    """The server could not be reached or refused the request (`status`: its HTTP status,
    None when unreached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def get_json(server: str, path: str, params: dict, token: str | None = None) -> dict:
    """The JSON answer of GET `path` with query `params` from the server at `server`."""
    url = server.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as a:
            return json.loads(a.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]
        except (ValueError, KeyError):
            message = error.reason
        raise ServerError(f"{server} answered {error.code}: {message}", error.code) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServerError(f"cannot reach the cloudmon server at {server}: {reason}") from None
