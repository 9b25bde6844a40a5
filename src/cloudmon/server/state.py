"""What one application holds: its store and its own figures."""

import os
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

disable_created_metrics()

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode
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
        self.query_seconds = Histogram(
            "cloudmon_query_seconds",
            "Time to answer one GET /api request",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )

    def ingested(self, payloads: int, samples: int, seconds: float) -> None:
        """Count one stored ingest request."""
        self.payloads.inc(payloads)
        self.samples.inc(samples)
        self.ingest_seconds.observe(seconds)


def state() -> ServerState:
    """The current application's state."""
    return current_app.extensions["cloudmon"]


def share_between_processes(directory: str) -> None:
    """Keep the server's own figures of every process started from now on in files in
    `directory`, so that /metrics answers their sums whichever process serves it."""
    os.environ[SHARED_DIR_ENV] = directory
    # prometheus-client chooses its value class from this variable when first imported.
    values.ValueClass = values.get_value_class()
