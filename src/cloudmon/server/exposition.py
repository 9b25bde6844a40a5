"""GET /metrics: the latest values of what reported in the last 30 s, and the server's own
figures, in the Prometheus text format."""

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cloudmon.metrics import BY_NAME, Kind
from cloudmon.server import auth
from cloudmon.server.state import state
from cloudmon.storage.base import Storage, bucket_of
from cloudmon.storage.model import EXTRA_HELP, KINDS, EntityKind, answered

bp = Blueprint("exposition", __name__)

ACTIVE_SECONDS = 30
# promtool reserves the _count suffix for histograms and summaries.
_EXPOSED = {"pod_count": "pods", "node_count": "nodes"}
# Label -> identity field of each kind in the exposition (containers are not in it).
_LABELS = {
    kind: {spec.identity[field]: field for field in spec.exposed}
    for kind, spec in KINDS.items()
    if spec.exposed is not None
}


def family(kind: EntityKind, name: str, labels: list[str]):
    """The metric family of one column of one kind of entity."""
    metric = BY_NAME.get(name)
    if metric is not None and metric.kind is Kind.COUNTER:
        base = f"cloudmon_{kind}_{name.removesuffix('_total')}"
        return CounterMetricFamily(base, metric.help, labels=labels)
    text = metric.help if metric is not None else EXTRA_HELP[name]
    return GaugeMetricFamily(f"cloudmon_{kind}_{_EXPOSED.get(name, name)}", text, labels=labels)


class LatestCollector(Collector):
    """Yields the latest value of every column of every active entity."""

    def __init__(self, storage: Storage, now) -> None:
        self.storage = storage
        self.now = now

    def collect(self):
        since = bucket_of(self.now() - ACTIVE_SECONDS)
        for kind, labels in _LABELS.items():
            entities = self.storage.entities(kind, since=since)
            names = answered(kind)
            latest = self.storage.latest(entities, names)
            for i, name in enumerate(names):
                metrics = family(kind, name, list(labels))
                for entity, answer in zip(entities, latest, strict=True):
                    value = answer["metrics"][names[i]]
                    if value is not None:
                        values = [entity.identity[field] or "" for field in labels.values()]
                        metrics.add_metric(values, value)
                yield metrics
        yield from store_figures(self.storage.stats())


def store_figures(stats: dict[str, float]):
    """The store's own figures: its bytes, per tier where it measures them (the embedded
    store's upkeep does, every minute or less often), and the rows deleted for its size."""
    yield GaugeMetricFamily("cloudmon_storage_bytes", "bytes the store uses", value=stats["bytes"])
    if "disk_bytes" in stats:
        yield GaugeMetricFamily(
            "cloudmon_storage_disk_bytes",
            "bytes of the store's files on disk (database and WAL): what --retention-size bounds",
            value=stats["disk_bytes"],
        )
    tiers = GaugeMetricFamily(
        "cloudmon_storage_tier_bytes",
        "bytes of each resolution's rows (raw 10 s samples, 1 min and 1 h rollups), as the"
        " upkeep last measured them",
        labels=["tier"],
    )
    for tier in ("raw", "1m", "1h"):
        if f"bytes_{tier}" in stats:
            tiers.add_metric([tier], stats[f"bytes_{tier}"])
    if tiers.samples:
        yield tiers
    if "retention_size_bytes" in stats:
        yield GaugeMetricFamily(
            "cloudmon_storage_retention_size_bytes",
            "--retention-size: past 95 % of it the oldest data is deleted",
            value=stats["retention_size_bytes"],
        )
    if "disk_bytes" in stats:
        yield CounterMetricFamily(
            "cloudmon_storage_size_deleted_rows",
            "rows deleted to keep the store within --retention-size",
            value=stats.get("size_deleted_rows", 0.0),
        )


@bp.get("/metrics")
def metrics():
    """The Prometheus text exposition."""
    auth.require(current_app.config["CLOUDMON_READ_TOKEN"])
    return Response(generate_latest(state().registry), content_type=CONTENT_TYPE_LATEST)
