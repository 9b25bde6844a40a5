"""The stored layouts: what each position of a stored row means, pinned. A change here changes
what every row already on disk means; a new column goes last (and a test here is added)."""

from cloudmon.metrics import CATALOGUE, Scope, metrics_for
from cloudmon.storage.model import STORED_COLUMNS, EntityKind

LAYOUT_1 = {
    EntityKind.NODE: (
        "cpu_usage_seconds_total",
        "cpu_cores",
        "cpu_percent",
        "memory_total_bytes",
        "memory_available_bytes",
        "memory_used_bytes",
        "memory_percent",
        "disk_read_bytes_total",
        "disk_write_bytes_total",
        "disk_read_bps",
        "disk_write_bps",
        "network_rx_bytes_total",
        "network_tx_bytes_total",
        "network_rx_bps",
        "network_tx_bps",
        "load1",
        "load5",
        "load15",
        "fs_total_bytes",
        "fs_used_bytes",
        "pod_count",
        "cpu_capacity_cores",
        "clock_skew_seconds",
    ),
    EntityKind.POD: (
        "cpu_usage_seconds_total",
        "cpu_cores",
        "cpu_throttled_seconds_total",
        "cpu_limit_cores",
        "cpu_request_cores",
        "memory_usage_bytes",
        "memory_working_set_bytes",
        "memory_limit_bytes",
        "memory_request_bytes",
        "disk_read_bytes_total",
        "disk_write_bytes_total",
        "disk_read_bps",
        "disk_write_bps",
        "network_rx_bytes_total",
        "network_tx_bytes_total",
        "network_rx_bps",
        "network_tx_bps",
    ),
    EntityKind.NAMESPACE: (
        "cpu_cores",
        "cpu_limit_cores",
        "cpu_request_cores",
        "memory_usage_bytes",
        "memory_working_set_bytes",
        "memory_limit_bytes",
        "memory_request_bytes",
        "disk_read_bps",
        "disk_write_bps",
        "network_rx_bps",
        "network_tx_bps",
        "pod_count",
    ),
    EntityKind.CLUSTER: (
        "cpu_cores",
        "disk_read_bps",
        "disk_write_bps",
        "network_rx_bps",
        "network_tx_bps",
        "memory_used_bytes",
        "memory_total_bytes",
        "pod_count",
        "cpu_capacity_cores",
        "node_count",
    ),
}
LAYOUT_1[EntityKind.DEPLOYMENT] = LAYOUT_1[EntityKind.NAMESPACE]
LAYOUT_1[EntityKind.CONTAINER] = LAYOUT_1[EntityKind.POD][:13]
MASK_BITS = 32  # the stored rows' mask: "<I"


def test_layouts_are_pinned():
    for kind in EntityKind:
        layout = STORED_COLUMNS[kind]
        assert layout[: len(LAYOUT_1[kind])] == LAYOUT_1[kind], f"{kind}: a column moved"
        assert len(layout) <= MASK_BITS


def test_every_metric_of_the_catalogue_is_stored_where_it_applies():
    scopes = {EntityKind.NODE: Scope.NODE, EntityKind.POD: Scope.POD}
    scopes[EntityKind.CONTAINER] = Scope.CONTAINER
    for kind, scope in scopes.items():
        assert {m.name for m in metrics_for(scope)} <= set(STORED_COLUMNS[kind]), kind
    known = set().union(*STORED_COLUMNS.values())
    assert {m.name for m in CATALOGUE} <= known
