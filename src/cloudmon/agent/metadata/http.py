"""HTTPS GETs to the API server and the kubelet: bearer token re-read per request, TLS verified."""

import contextlib
import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Iterator

import msgspec

from cloudmon.agent.files import read_text
from cloudmon.agent.metadata.base import MetadataError


class HttpStatusError(MetadataError):
    """The server answered with a status other than 200."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode_json(data: bytes, what: str) -> object:
    """JSON from bytes; MetadataError naming `what` when it is not JSON."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise MetadataError(f"{what} is not JSON: {error}") from None


class Stream:
    """An open response read line by line (a watch); abort() wakes a blocked reader."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection = connection
        self._response = response

    def lines(self) -> Iterator[bytes]:
        """The non-empty lines of the body until the server ends it."""
        while line := self._response.readline():
            if line.strip():
                yield line

    def read(self) -> bytes:
        """The whole body."""
        return self._response.read()

    def abort(self) -> None:
        """Shut the socket down, from any thread."""
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the connection."""
        self._connection.close()


class Client:
    """GETs against one base URL with `Authorization: Bearer <token file>` and a CA file."""

    def __init__(
        self, base_url: str, *, token_file: str | None, ca_file: str | None, timeout: float
    ):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "https" or not url.hostname:
            raise MetadataError(f"not an https URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._url = url
        self._token_file = token_file
        self._ca_file = ca_file
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            try:
                self._context = ssl.create_default_context(cafile=self._ca_file)
            except (OSError, ssl.SSLError) as error:
                raise MetadataError(f"cannot load CA file {self._ca_file}: {error}") from None
        return self._context

    def _token(self) -> str | None:
        if self._token_file is None:
            return None
        token = read_text(self._token_file)
        if token is None or not token.strip():
            raise MetadataError(f"no token in {self._token_file}")
        return token.strip()

    def _connect(self, timeout: float) -> http.client.HTTPSConnection:
        host, port = self._url.hostname, self._url.port
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls())

    def open(self, path: str, *, timeout: float | None = None) -> Stream:
        """GET `path`; a Stream of a 200 answer, else HttpStatusError; a 401 is retried once."""
        try:
            return self._open_once(path, timeout or self._timeout)
        except HttpStatusError as error:
            # The projected service-account token rotates: a 401 may mean an old token.
            if error.status != 401:
                raise
        return self._open_once(path, timeout or self._timeout)

    def _open_once(self, path: str, timeout: float) -> Stream:
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json"}
        if (token := self._token()) is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = self._connect(timeout)
        try:
            connection.request("GET", f"{self._url.path.rstrip('/')}{path}", headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                detail = _status_message(response.read(4096))
                raise HttpStatusError(
                    response.status, f"GET {url}: HTTP {response.status} {detail}".rstrip()
                )
        except ssl.SSLCertVerificationError as error:
            connection.close()
            raise MetadataError(
                f"GET {url}: TLS verification failed: {error.verify_message}"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise MetadataError(f"GET {url}: {_describe(error)}") from None
        except HttpStatusError:
            connection.close()
            raise
        return Stream(connection, response)

    def get_json(self, path: str) -> object:
        """GET `path` and decode its JSON body."""
        stream = self.open(path)
        try:
            body = stream.read()
        except (OSError, http.client.HTTPException) as error:
            raise MetadataError(f"GET {self.base_url}{path}: {_describe(error)}") from None
        finally:
            stream.close()
        return decode_json(body, f"GET {self.base_url}{path}")


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


def _status_message(body: bytes) -> str:
    # Kubernetes answers errors with a Status object whose "message" says why.
    try:
        status = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return status["message"]
    return ""
