"""A Prometheus-compatible engine (Prometheus, VictoriaMetrics, Mimir, Thanos, ...) as the
store: written through remote-write 1.0, read through PromQL. The server keeps no state of
its own, so any number of replicas answer alike. `PrometheusStorage`, registered here under
its URL schemes, is made of the package's parts: `encoder` turns payloads into series
(framed by `remote_write`), `client` talks HTTP to the engine, `promql` builds the
expressions and `reader` turns the engine's answers into entities, latest values and series.
"""

import math
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from cloudmon.storage.base import Storage, register
from cloudmon.storage.prometheus.client import EngineClient
from cloudmon.storage.prometheus.encoder import PayloadEncoder
from cloudmon.storage.prometheus.reader import EngineReader

HISTORY = 15 * 86400  # seconds looked back for entities without a time bound (Prometheus's
# default retention)


def _options_from_query(query: dict[str, list[str]]) -> dict[str, str]:
    found = {}
    for name, values in query.items():
        if len(values) != 1:
            raise ValueError(f"storage URL: {name} given {len(values)} times")
        found[name] = values[0]
    return found


@register("prometheus+http")
@register("prometheus+https")
class PrometheusStorage(Storage):
    """Samples in a Prometheus-compatible engine (Prometheus, VictoriaMetrics, Mimir, ...)."""

    def __init__(
        self,
        client: EngineClient,
        *,
        cluster: str | None = None,
        history: float = HISTORY,
        clock=time.time,
        **embedded_only,
    ) -> None:
        """`client` reaches the engine; `cluster` labels every series written and read
        (several clusters in one engine); options of the embedded store (retention,
        autocheckpoint) have no effect here: the engine keeps its own retention."""
        self.client = client
        self.cluster = cluster
        self._clock = clock
        self._encoder = PayloadEncoder(cluster)
        self._reader = EngineReader(client, cluster, history, clock)

    @classmethod
    def from_url(cls, url: str, **options) -> "PrometheusStorage":
        """prometheus+http://HOST:PORT[/PREFIX][?OPTIONS] (or prometheus+https://): queries
        go to PREFIX/api/v1/query, writes to PREFIX/api/v1/write. Options: read_url=URL and
        write_url=URL for engines that split them (vmselect, vminsert), user:password@ in the
        URL or username= and password_file= for basic auth, bearer_token_file=, ca_file=
        (TLS to the engine), cluster= (a label on every series), timeout=, retries=,
        history= (seconds looked back for entities without a time bound); `options` may also
        give the clock and the `sleep` between a write's retries."""
        scheme, _, rest = url.partition("://")
        parts = urllib.parse.urlsplit(f"{scheme.removeprefix('prometheus+')}://{rest}")
        if not parts.hostname:
            raise ValueError(f"storage URL {url!r}: expected {scheme}://HOST[:PORT][/PREFIX]")
        query = _options_from_query(urllib.parse.parse_qs(parts.query, keep_blank_values=True))
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        known = {
            "read_url",
            "write_url",
            "username",
            "password_file",
            "bearer_token_file",
            "ca_file",
            "cluster",
            "timeout",
            "retries",
            "history",
        }
        unknown = set(query) - known
        if unknown:
            raise ValueError(f"storage URL {url!r}: unknown option {sorted(unknown)[0]!r}")
        username = query.get("username", urllib.parse.unquote(parts.username or "") or None)
        password = urllib.parse.unquote(parts.password) if parts.password else None
        if "password_file" in query:
            password = Path(query["password_file"]).read_text().strip()
        bearer = None
        if "bearer_token_file" in query:
            bearer = Path(query["bearer_token_file"]).read_text().strip()
        for name, kind in (("timeout", float), ("retries", int), ("history", float)):
            if name in query:
                try:
                    options[name] = kind(query[name])
                except ValueError:
                    raise ValueError(f"storage URL {url!r}: {name} is not a number") from None
        of_client = {
            name: options.pop(name) for name in ("timeout", "retries", "sleep") if name in options
        }
        client = EngineClient(
            query.get("read_url", base),
            query.get("write_url", base + "/api/v1/write"),
            username=username,
            password=password,
            bearer_token=bearer,
            ca_file=query.get("ca_file"),
            clock=options.get("clock", time.time),
            **of_client,
        )
        return cls(client, cluster=query.get("cluster"), **options)

    def write(self, payloads: Sequence) -> int:
        """Store payloads in one remote-write request (the engine appends it whole or not at
        all), retried on connection errors, 5xx and 429; OSError(EAGAIN) when the engine
        does not take it in the end, which ingest answers with 503."""
        body, samples = self._encoder.encode(payloads)
        self.client.write(body)
        return samples

    def entities(self, kind, filters=None, since=None, span=None):
        return self._reader.entities(kind, filters, since, span)

    def latest(self, entities, names):
        return self._reader.latest(entities, names)

    def series(self, entities, names, span):
        return self._reader.series(entities, names, span)

    def ping(self) -> None:
        self.client.ping()

    def stats(self) -> dict[str, float]:
        """The size of the store is the engine's to tell: NaN here."""
        return {"bytes": math.nan}

    def close(self) -> None:
        self.client.close()
