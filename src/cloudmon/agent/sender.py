"""Sending payloads to the server: batches from the spool, oldest first, with backoff.

The agent's one thread calls submit() once per cycle; a Sender is not shared between threads.
"""

import datetime
import email.utils
import gzip
import http.client
import json
import logging
import os
import random
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from cloudmon.agent.spool import Spool

log = logging.getLogger(__name__)

MiB = 1 << 20
INGEST_PATH = "/api/ingest"

# Statuses that say the server (or a proxy before it) cannot take anything right now.
_RETRY_LATER = {408, 425, 429}
# Statuses that say the token is wrong: every payload would meet the same answer.
_TOKEN_REFUSED = {401, 403, 407}
# Statuses that say the URL is wrong: dropping payloads one by one would lose them all.
_WRONG_ENDPOINT = {404, 405}
_HEADER_TOKEN = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Answer:
    """The outcome of one POST: the status (None when no answer came) and what it said."""

    status: int | None
    detail: str
    retry_after: float | None = None
    clock_skew: float | None = None  # seconds this node's clock is ahead, when refused for it


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 9110 §5.6.7: HTTP dates are UTC; parsedate_to_datetime leaves "-0000" naive.
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


class Sender:
    """POSTs spooled payloads to `<server_url>/api/ingest` as gzipped JSON arrays.

    A payload leaves the spool only after a 2xx, or when the server refuses it on its own
    (400, 413, 415 and other 4xx about content). Everything else (no answer, 5xx, 408, 429,
    401/403, 404/405, 3xx) keeps the spool and backs off. `timeout` bounds each socket
    operation; `flush_seconds` bounds a whole flush, so the agent's cycle stays on time.
    """

    def __init__(
        self,
        server_url: str,
        *,
        spool: Spool,
        token_file: str | None = None,
        timeout: float = 5.0,
        clock=time.monotonic,
        max_batch_bytes: int = 4 * MiB,
        flush_seconds: float = 5.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        retry_after_cap: float = 600.0,
        jitter=random.random,
        wall_clock=time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(server_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"server URL must be http:// or https://, not {server_url!r}")
        self.server_url = server_url
        self._scheme = url.scheme
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._path = url.path.rstrip("/") + INGEST_PATH
        self._ssl_context = ssl_context
        self.spool = spool
        self.timeout = timeout
        self.max_batch_bytes = max_batch_bytes
        self.flush_seconds = flush_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._clock = clock
        self._jitter = jitter
        self._wall_clock = wall_clock
        self._token_file = token_file
        self._token: str | None = None
        self._token_stat: tuple | None = None
        self._token_problem: str | None = None
        self.sent = 0
        self.failures = 0
        self.rejected = 0
        self._streak = 0
        self._retry_at = float("-inf")
        self._problem: str | None = None
        self._clock_refused = False  # the server refused a payload for this node's clock

    @property
    def dropped(self) -> int:
        """Payloads lost: refused by the server on their own, or pushed out of the full spool."""
        return self.rejected + self.spool.dropped

    @property
    def retry_at(self) -> float:
        """The clock time before which no request is made (backing off)."""
        return self._retry_at

    def submit(self, item: bytes, deadline: float | None = None) -> None:
        """Spool one encoded payload, then send what the spool holds unless backing off."""
        self.spool.append(item)
        self.flush(deadline)

    def flush(self, deadline: float | None = None) -> int:
        """Send the spool oldest first until empty, a failure or `deadline`; the count delivered."""
        now = self._clock()
        if now < self._retry_at or not len(self.spool):
            return 0
        if deadline is None:
            deadline = now + self.flush_seconds
        delivered = 0
        recovered_after = 0
        cap: int | None = None
        singles = 0
        failure: Answer | None = None
        while len(self.spool):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            wanted = 1 if singles else cap or len(self.spool)
            stamp = b'{"sent_at":%.3f,' % self._wall_clock()
            batch = self.spool.oldest(wanted, self.max_batch_bytes, len(stamp) - 1)
            if not batch:
                break
            answer = self._post(_stamped(batch, stamp), min(self.timeout, remaining))
            status = answer.status
            if status is not None and 200 <= status < 300:
                self.spool.remove_oldest(len(batch))
                delivered += len(batch)
                self.sent += len(batch)
                singles = max(singles - len(batch), 0)
                if self._problem is not None:
                    recovered_after = self._streak
                    self._problem = None
                self._streak = 0
                if self._clock_refused:
                    self._clock_refused = False
                    log.warning("the server takes this node's payloads again: its clock is right")
            elif status == 413 and len(batch) > 1:
                cap = len(batch) // 2
            elif _refuses_content(status) and len(batch) > 1:
                singles = len(batch)
            elif _refuses_content(status):
                if answer.clock_skew is None:
                    log.warning(
                        "the server refused a payload of %d bytes on its own (HTTP %d: %s); "
                        "dropped it",
                        len(batch[0]),
                        status,
                        answer.detail,
                    )
                elif not self._clock_refused:
                    self._clock_refused = True
                    log.error(
                        "the server refuses this node's payloads: its clock is %.0f s ahead of "
                        "the server's; fix the node's time sync (NTP). Payloads are dropped "
                        "until then (HTTP %d: %s)",
                        answer.clock_skew,
                        status,
                        answer.detail,
                    )
                self.spool.remove_oldest(1)
                self.rejected += 1
                singles = max(singles - 1, 0)
            else:
                failure = answer
                break
        if recovered_after:
            log.warning(
                "server %s is reachable again after %d failed attempts; "
                "delivered %d spooled payloads, %d left",
                self.server_url,
                recovered_after,
                delivered,
                len(self.spool),
            )
        if failure is not None:
            self._failed(failure)
        return delivered

    def _failed(self, answer: Answer) -> None:
        self.failures += 1
        self._streak += 1
        if answer.retry_after is not None:
            delay = min(answer.retry_after, self.retry_after_cap) * (1 + 0.1 * self._jitter())
        else:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (self._streak - 1))
            delay *= 0.5 + 0.5 * self._jitter()
        self._retry_at = self._clock() + delay
        problem, message = _problem(answer)
        if problem != self._problem:
            self._problem = problem
            log.warning(
                "server %s %s; keeping %d payloads and retrying with backoff",
                self.server_url,
                message,
                len(self.spool),
            )

    def _read_token(self) -> str | None:
        if self._token_file is None:
            return None
        try:
            stat = os.stat(self._token_file)
            key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if key != self._token_stat:
                with open(self._token_file, encoding="utf-8", errors="replace") as file:
                    token = file.read().strip()
                self._token_stat = key
                if _HEADER_TOKEN.match(token):
                    self._token = token
                    self._token_problem = None
                else:
                    self._token = None
                    self._token_reported(
                        "is empty" if not token else "holds characters not allowed in a header"
                    )
        except OSError as error:
            self._token_reported(f"cannot be read ({error.strerror})")
        return self._token

    def _token_reported(self, problem: str) -> None:
        if problem != self._token_problem:
            self._token_problem = problem
            log.warning("the token file %s %s", self._token_file, problem)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _post(self, body: bytes, timeout: float) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": "cloudmon-agent",
        }
        token = self._read_token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = self._connection(timeout)
        try:
            connection.request("POST", self._path, gzip.compress(body, 6, mtime=0), headers)
            response = connection.getresponse()
            text = response.read(4096)
        except (OSError, http.client.HTTPException) as error:
            return Answer(None, str(error) or type(error).__name__)
        finally:
            connection.close()
        retry_after = parse_retry_after(response.getheader("Retry-After"), self._wall_clock())
        detail, clock_skew = _error_of(text)
        return Answer(response.status, detail, retry_after, clock_skew)


def _stamped(batch: list[bytes], stamp: bytes) -> bytes:
    """A JSON array of encoded payloads, each opened by `stamp` ('{"sent_at":T,')."""
    # Each starts with '{' and has no `sent_at` (payload.encode omits it while unset).
    return b"[" + b",".join(stamp + item[1:] for item in batch) + b"]"


def _refuses_content(status: int | None) -> bool:
    """A 4xx that is about what was sent, not about the token, the URL or the server's load."""
    return (
        status is not None
        and 400 <= status < 500
        and status not in _RETRY_LATER | _TOKEN_REFUSED | _WRONG_ENDPOINT
    )


def _problem(answer: Answer) -> tuple[str, str]:
    status = answer.status
    if status is None:
        return "unreachable", f"is unreachable ({answer.detail})"
    if status in _TOKEN_REFUSED:
        return "token", f"refuses the token (HTTP {status}: {answer.detail})"
    if status in _WRONG_ENDPOINT or status < 200 or 300 <= status < 400:
        return f"HTTP {status}", f"answers HTTP {status} at {INGEST_PATH}; is the URL right?"
    return f"HTTP {status}", f"answers HTTP {status} ({answer.detail})"


def _error_of(body: bytes) -> tuple[str, float | None]:
    """The server's {"error": ...} message (else the start of its answer), and the clock skew
    it names when it refused a payload for the node's clock."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    error, skew = answer.get("error"), answer.get("clock_skew_seconds")
    text = error if isinstance(error, str) else body.decode("utf-8", "replace")
    skew = float(skew) if isinstance(skew, int | float) and not isinstance(skew, bool) else None
    return text.strip()[:200] or "no detail", skew
