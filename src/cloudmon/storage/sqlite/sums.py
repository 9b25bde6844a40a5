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

import numpy as np

from cloudmon.storage.base import BUCKET
from cloudmon.storage.model import (
    CLUSTER_SUMS,
    GROUP_SUM,
    GROUP_SUMS,
    NODE_COLUMNS,
    POD_COLUMNS,
    EntityKind,
    add_vectors,
)
from cloudmon.storage.sqlite import sealed
from cloudmon.storage.sqlite.codec import pack_sum, unpack, unpack_sum

POD_SUM = GROUP_SUM[EntityKind.NAMESPACE]  # a deployment's vector is laid out the same
NODE_SUM = GROUP_SUM[EntityKind.CLUSTER]
_POD_SUMMED_AT = [POD_COLUMNS.index(name) for name in GROUP_SUMS]
_POD_SUMMED = operator.itemgetter(*_POD_SUMMED_AT)
_POD_SCALES = np.array(POD_SUM.scales, dtype=float)
_NODE_SUMMED = operator.itemgetter(*(NODE_COLUMNS.index(name) for name in CLUSTER_SUMS))


def pod_member(values: Sequence) -> tuple:
    """A pod's row (POD_COLUMNS) as a member of its namespace and deployment."""
    return POD_SUM.member(_POD_SUMMED(values))


def node_member(values: Sequence) -> tuple:
    """A node's row (NODE_COLUMNS) as a member of the cluster."""
    return NODE_SUM.member(_NODE_SUMMED(values))


class PodMembers:
    """Pods' rows as members of their namespaces and deployments, all at once: what
    `pod_member` makes of each, as arrays."""

    def __init__(self, values: np.ndarray, rows: Sequence[Sequence]) -> None:
        """`values`: the rows (POD_COLUMNS) as an array, NaN where missing; `rows` as given."""
        summed = values[:, _POD_SUMMED_AT]
        self.present = ~np.isnan(summed)
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = np.rint(np.where(self.present, summed, 0.0) * _POD_SCALES)
        # Below 2**53 a double's product and rounding are Python's, else Python's integers.
        if len(scaled) and not np.abs(scaled).max() < 2**53:
            members = [[value or 0 for value in pod_member(row)] for row in rows]
            self.scaled = np.array(members, dtype=object).reshape(scaled.shape)
        else:
            self.scaled = scaled.astype(np.int64)

    def vectors(self, groups: Sequence[Sequence[int]]) -> dict[int, list[int]]:
        """Per group, the `GroupSum` vector of the members in it; `groups`: each pod's."""
        pods = [at for at, gids in enumerate(groups) for _ in gids]
        if not pods:
            return {}
        unique, slot = np.unique([gid for gids in groups for gid in gids], return_inverse=True)
        sums = np.zeros((len(unique), self.scaled.shape[1]), self.scaled.dtype)
        np.add.at(sums, slot, self.scaled[pods])
        counts = np.zeros(sums.shape, np.int64)
        np.add.at(counts, slot, self.present[pods])
        found = zip(sums.tolist(), counts.tolist(), np.bincount(slot).tolist(), strict=True)
        return {
            gid: [*total, *count, members]
            for gid, (total, count, members) in zip(unique.tolist(), found, strict=True)
        }


class Changes:
    """What one transaction's writes change in group sums: per bucket and group id, the
    vector of the members added less those taken away."""

    def __init__(self) -> None:
        # bucket -> group id -> the vector of what changed
        self._groups: dict[int, dict[int, list[int]]] = defaultdict(dict)

    def add(self, bucket: int, gids: Sequence[int], member: tuple, layout=POD_SUM) -> None:
        """A member's row added to groups in a bucket."""
        self.add_vectors(bucket, dict.fromkeys(gids, layout.total([member])))

    def remove(self, bucket: int, gids: Sequence[int], member: tuple, layout=POD_SUM) -> None:
        """A member's row taken away from groups in a bucket."""
        self.add_vectors(bucket, dict.fromkeys(gids, layout.total([member])), -1)

    def add_vectors(self, bucket: int, vectors: dict, sign: int = 1) -> None:
        """Groups' vectors (of members) added to (sign 1) or taken from (-1) a bucket's."""
        groups = self._groups[bucket]
        for gid, vector in vectors.items():
            so_far = groups[gid] if gid in groups else [0] * len(vector)
            groups[gid] = add_vectors(so_far, vector, sign)

    def apply(self, conn) -> None:
        """Update the groups' rows by what changed; a group left without members loses its
        row in that bucket."""
        for bucket, groups in self._groups.items():
            kept = sealed.lookup(conn, "grp_sample", BUCKET, bucket, list(groups))
            vectors = {gid: unpack_sum(blob) for gid, blob, _ in kept}
            written, emptied = [], []
            for gid, vector in groups.items():
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
