"""The stored layouts: what each position of a stored row means, pinned. A change to a pinned
prefix changes what every row already on disk means; a new column goes last."""

import hashlib

from cloudmon.metrics import CATALOGUE, Scope, metrics_for
from cloudmon.storage.model import STORED_COLUMNS, EntityKind
from cloudmon.storage.sqlite.codec import WIDEST

# Layout version 1 of each kind: how many columns, and the start of the SHA-256 of their
# names joined by spaces, as model.py wrote them out when the version was fixed.
LAYOUT_1 = {
    EntityKind.NODE: (23, "eb59b1e38efd1134"),
    EntityKind.POD: (17, "651c899294436640"),
    EntityKind.NAMESPACE: (12, "0670fa449cd0e3d0"),
    EntityKind.DEPLOYMENT: (12, "0670fa449cd0e3d0"),
    EntityKind.CLUSTER: (10, "0e25dca4fa29cdf9"),
    EntityKind.CONTAINER: (13, "ccc4cb070bb5d147"),
}


def digest(names) -> str:
    return hashlib.sha256(" ".join(names).encode()).hexdigest()[:16]


def test_layouts_are_pinned():
    for kind, (width, pinned) in LAYOUT_1.items():
        layout = STORED_COLUMNS[kind]
        assert digest(layout[:width]) == pinned, f"{kind}: a stored column moved or changed"
        assert len(layout) <= WIDEST


def test_a_moved_column_breaks_the_pin():
    width, pinned = LAYOUT_1[EntityKind.POD]
    moved = list(STORED_COLUMNS[EntityKind.POD][:width])
    moved[0], moved[1] = moved[1], moved[0]
    assert digest(moved) != pinned


def test_every_metric_of_the_catalogue_is_stored_where_it_applies():
    scopes = {EntityKind.NODE: Scope.NODE, EntityKind.POD: Scope.POD}
    scopes[EntityKind.CONTAINER] = Scope.CONTAINER
    for kind, scope in scopes.items():
        assert {m.name for m in metrics_for(scope)} <= set(STORED_COLUMNS[kind]), kind
    assert {m.name for m in CATALOGUE} <= set().union(*STORED_COLUMNS.values())
