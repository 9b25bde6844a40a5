"""Group sums: the namespace, deployment and cluster rows (grp_sample), kept as their
members' rows are written, in the same transaction, by `model.GroupSum` (the one definition
of a group's sum: integers in fixed units, so that a sum kept piece by piece equals the sum
of the same rows taken at once, to the last bit).

`writer` gives `Changes` each pod row it writes (a node row, for the cluster) as a member
added to its groups, and the row it replaces, or a pod row that went, as a member taken
away; when a pod's namespace or deployment changes, the vectors of its rows move from the
old groups to the new (`writer`). `Changes.apply` adds up what changed per group and bucket
and updates their rows. `bucket_sums` takes a bucket's sums from its members at once: the
schema migration that brought exact sums in uses it, and the tests hold the kept sums
against it.
"""

import json
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from cloudmon.storage.base import BUCKET
from cloudmon.storage.model import (
    CLUSTER_SUMS,
    GROUP_SUM,
    GROUP_SUMS,
    NODE_COLUMNS,
    POD_COLUMNS,
    EntityKind,
    GroupSum,
    add_vectors,
)
from cloudmon.storage.sqlite import sealed
from cloudmon.storage.sqlite.codec import pack_sum, unpack, unpack_sum

POD_SUM = GROUP_SUM[EntityKind.NAMESPACE]  # a deployment's vector is laid out the same
NODE_SUM = GROUP_SUM[EntityKind.CLUSTER]
_POD_SUMMED = operator.itemgetter(*(POD_COLUMNS.index(name) for name in GROUP_SUMS))
_NODE_SUMMED = operator.itemgetter(*(NODE_COLUMNS.index(name) for name in CLUSTER_SUMS))


def pod_member(values: Sequence) -> tuple:
    """A pod's row (POD_COLUMNS) as a member of its namespace and deployment."""
    return POD_SUM.member(_POD_SUMMED(values))


def node_member(values: Sequence) -> tuple:
    """A node's row (NODE_COLUMNS) as a member of the cluster."""
    return NODE_SUM.member(_NODE_SUMMED(values))


class Changes:
    """What one transaction's writes change in group sums: per bucket and group id, the
    members added and those taken away."""

    def __init__(self) -> None:
        # bucket -> group id -> (its GroupSum, members added, members taken away)
        self._groups: dict[int, dict[int, tuple[GroupSum, list, list]]] = defaultdict(dict)

    def add(self, bucket: int, gids: Sequence[int], member: tuple, layout=POD_SUM) -> None:
        """A member's row added to groups in a bucket."""
        for gid in gids:
            self._entry(bucket, gid, layout)[1].append(member)

    def remove(self, bucket: int, gids: Sequence[int], member: tuple, layout=POD_SUM) -> None:
        """A member's row taken away from groups in a bucket."""
        for gid in gids:
            self._entry(bucket, gid, layout)[2].append(member)

    def _entry(self, bucket: int, gid: int, layout: GroupSum):
        entry = self._groups[bucket].get(gid)
        if entry is None:
            entry = self._groups[bucket][gid] = (layout, [], [])
        return entry

    def apply(self, conn) -> None:
        """Update the groups' rows by what changed; a group left without members loses its
        row in that bucket."""
        for bucket, groups in self._groups.items():
            kept = sealed.lookup(conn, "grp_sample", BUCKET, bucket, list(groups))
            vectors = {gid: unpack_sum(blob) for gid, blob, _ in kept}
            written, emptied = [], []
            for gid, (layout, added, removed) in groups.items():
                vector = layout.total(added)
                if removed:
                    vector = add_vectors(vector, layout.total(removed), -1)
                if gid in vectors:
                    vector = add_vectors(vectors[gid], vector)
                if vector[-1]:
                    written.append((bucket, gid, pack_sum(vector)))
                else:
                    emptied.append(gid)
            conn.executemany(
                "INSERT OR REPLACE INTO grp_sample (bucket, id, v) VALUES (?, ?, ?)", written
            )
            sealed.delete(conn, "grp_sample", BUCKET, bucket, emptied)
        self._groups.clear()


def bucket_sums(
    conn,
    bucket: int,
    group_id: Callable[[EntityKind, str, str], int],
    rows_of: Callable[[str], Iterable[tuple[int, bytes]]],
) -> dict[int, list[int]]:
    """Every group's vector in one bucket, taken from its node and pod rows at once;
    `group_id(kind, namespace, name)` names the groups, `rows_of(table)` gives the bucket's
    (id, v) rows of a table."""
    members: dict[int, list] = defaultdict(list)
    cluster = group_id(EntityKind.CLUSTER, "", "")
    for _, blob in rows_of("node_sample"):
        members[cluster].append(node_member(unpack(blob, len(NODE_COLUMNS))))
    pods = dict(rows_of("pod_sample"))
    groups = conn.execute(
        "SELECT id, namespace, deployment FROM pod WHERE namespace IS NOT NULL"
        " AND id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(pods)),),
    )
    for pid, namespace, deployment in groups:
        member = pod_member(unpack(pods[pid], len(POD_COLUMNS)))
        members[group_id(EntityKind.NAMESPACE, namespace, "")].append(member)
        if deployment is not None:
            members[group_id(EntityKind.DEPLOYMENT, namespace, deployment)].append(member)
    return {
        gid: (NODE_SUM if gid == cluster else POD_SUM).total(vectors)
        for gid, vectors in members.items()
    }
