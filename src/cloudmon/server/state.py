"""What one application holds: its store and its own figures."""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask import current_app
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
    values,
)

from cloudmon.storage.base import Storage

log = logging.getLogger(__name__)
disable_created_metrics()

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode
# Ignored field names counted apart, per process: a payload's field names are the sender's to
# choose, and each one is a series of /metrics.
IGNORED_FIELD_NAMES = 100
OTHER_FIELDS = "(others)"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass
class ServerState:
    """The store and the server's counters, kept in app.extensions["cloudmon"]."""

    storage: Storage
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        own = self.registry
        if SHARED_DIR_ENV in os.environ:
            # The figures of every process live in files there; /metrics sums them.
            own = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        self.payloads = Counter("cloudmon_ingested_payloads", "Payloads stored", registry=own)
        self.samples = Counter("cloudmon_ingested_samples", "Metric values stored", registry=own)
        self.rejected = Counter(
            "cloudmon_rejected_requests",
            "Requests refused, by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=own,
        )
        self.ingest_seconds = Histogram(
            "cloudmon_ingest_seconds",
            "Time to validate and store one ingest request",
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )
        self.ignored_fields = Counter(
            "cloudmon_ingest_ignored_fields",
            "Payloads stored with a field this version does not know (from a newer agent), "
            "by field",
            ["field"],
            registry=own,
        )
        self._ignored_seen: set[str] = set()
        self.query_seconds = Histogram(
            "cloudmon_query_seconds",
            "Time to answer one GET /api request",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )

    def ingested(
        self, payloads: int, samples: int, seconds: float, ignored: Sequence[str] = ()
    ) -> None:
        """Count one stored ingest request and the fields it held that were ignored, each
        logged the first time this process meets it."""
        self.payloads.inc(payloads)
        self.samples.inc(samples)
        self.ingest_seconds.observe(seconds)
        for name in ignored:
            if name not in self._ignored_seen:
                if len(self._ignored_seen) >= IGNORED_FIELD_NAMES:
                    self.ignored_fields.labels(OTHER_FIELDS).inc()
                    continue
                self._ignored_seen.add(name)
                log.warning(
                    "ingest ignores the payload field %s: this server does not know it "
                    "(a newer agent's, or misspelled); the rest is stored",
                    name,
                )
            self.ignored_fields.labels(name).inc()


def state() -> ServerState:
    """The current application's state."""
    return current_app.extensions["cloudmon"]


def share_between_processes(directory: str) -> None:
    """Keep the server's own figures of every process started from now on in files in
    `directory`, so that /metrics answers their sums whichever process serves it."""
    os.environ[SHARED_DIR_ENV] = directory
    # prometheus-client chooses its value class from this variable when first imported.
    values.ValueClass = values.get_value_class()
