"""Where a write becomes rows: a payload's node, pod and container rows, packed (`codec`),
stored in their bucket with the ids of the entities they belong to, and its groups' sums.

`Prepared` is the work a payload needs before it waits for the writer (packing its rows,
taking them in the units of group sums); `Writer.store` is what
`connections.Connections.commit` runs under the writer lock: it upserts the node, pods,
containers and groups (remembering their ids and which groups each pod belongs to, so that
the next payload of the same node mostly finds them known), replaces the bucket's rows,
drops those of the node's pods that have gone since its previous report in that bucket,
gives `sums.Changes` every row added, replaced or dropped, widens the entities' spans (first
and last bucket) and marks the entities whose rolled-up periods a late sample changes
(rollup_stale), so that `upkeep` rolls theirs up again. A pod whose namespace or deployment
changes takes its rows' share of the sums from its old groups to its new ones, and counts in
pod_moves, so that every writer drops the groups it remembers of pods.
"""

import json
import operator
import sqlite3
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from cloudmon.storage.base import BUCKET, RESOLUTIONS, bucket_of
from cloudmon.storage.model import (
    CONTAINER_COLUMNS,
    NODE_COLUMNS,
    POD_COLUMNS,
    EntityKind,
    node_row,
)
from cloudmon.storage.sqlite import sealed
from cloudmon.storage.sqlite.codec import (
    pack,
    pack_ids,
    stored_values,
    unpack,
    unpack_ids,
)
from cloudmon.storage.sqlite.schema import GROUP_KIND
from cloudmon.storage.sqlite.summary import packed
from cloudmon.storage.sqlite.sums import NODE_SUM, Changes, PodMembers, node_member, pod_member

_NO_SPAN = (float("inf"), float("-inf"))
_UNKNOWN = (None, None)  # a container not remembered: no id, no container ID
# Pods whose ids a writer remembers before it starts afresh: every worker writes for every
# node, so a cluster with more pods than this writes them all again and again (1,000 nodes of
# 110 pods: ingest 98 payloads/s where it takes 117 remembering them). About 2 KiB a pod.
_KNOWN_PODS = 250_000
_POD_VALUES = operator.attrgetter(*POD_COLUMNS)
_CONTAINER_VALUES = operator.attrgetter(*CONTAINER_COLUMNS)
_POD_IDENTITY = operator.attrgetter(
    "name", "namespace", "deployment", "workload_kind", "workload", "qos"
)


class Prepared:
    """A payload's rows packed and its groups found: the work that needs no lock, done
    before a write waits for the writer."""

    __slots__ = (
        "bucket",
        "containers",
        "identities",
        "node_blob",
        "node_member",
        "node_row",
        "payload",
        "pod_blobs",
        "pod_members",
        "pods",
        "samples",
    )

    def __init__(self, payload) -> None:
        self.payload = payload
        self.bucket = bucket_of(payload.timestamp)
        self.pods = list({pod.uid: pod for pod in payload.pods}.values())
        self.identities = [(*_POD_IDENTITY(pod), payload.node) for pod in self.pods]
        self.node_row = node_row(payload)
        self.node_blob = pack(self.node_row)
        # (index of the pod, key, name, container ID, packed row) of each container; its key
        # is its name, else (with no metadata) its ID
        containers = [
            (index, key, container)
            for index, pod in enumerate(self.pods)
            for key, container in {c.name or c.id: c for c in pod.containers}.items()
        ]
        pod_rows = [_POD_VALUES(pod) for pod in self.pods]
        pod_values = _values(pod_rows, POD_COLUMNS)
        values = _values((_CONTAINER_VALUES(c) for *_, c in containers), CONTAINER_COLUMNS)
        self.pod_blobs = packed(pod_values, ~np.isnan(pod_values))
        self.containers = [
            (index, key, container.name, container.id, blob)
            for (index, key, container), blob in zip(
                containers, packed(values, ~np.isnan(values)), strict=True
            )
        ]
        self.samples = stored_values(self.node_blob) + int(
            np.count_nonzero(~np.isnan(pod_values)) + np.count_nonzero(~np.isnan(values))
        )
        # The rows as members of their groups' sums.
        self.pod_members = PodMembers(pod_values, pod_rows)
        self.node_member = node_member(self.node_row)


def _values(rows, names: Sequence[str]) -> np.ndarray:
    """Rows of values (None where missing) as an array (row, column), NaN where missing (a
    payload's JSON has no NaN)."""
    return np.array(list(rows), dtype=float).reshape(-1, len(names))


class _Transaction:
    """What one transaction's writes leave for its end: the group sums they change and, per
    (entity table, bucket), the ids written there whose spans to widen; and what it found
    rolled up, which late writes mark stale."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.changes = Changes()
        self.written: dict[tuple[str, int], list[int]] = defaultdict(list)
        self._rolled_up = _rolled_up(conn)

    def mark_stale(self, buckets: Sequence[int], entities: list) -> None:
        """Mark the entities (table, id) whose rows in buckets written late changed, in each
        period of them that is rolled up already, and count the write in each such period. A
        period some of whose rows were deleted for size keeps its rollup: rolled up again from
        the rest, a group's would lose the share of the members deleted."""
        for res, (upto, whole_from) in self._rolled_up.items():
            periods = {
                bucket // res * res
                for bucket in buckets
                if whole_from <= bucket // res * res and bucket < upto
            }
            if not periods or not entities:
                continue
            self.conn.executemany(
                "INSERT OR IGNORE INTO rollup_stale (res, bucket, tbl, id) VALUES (?, ?, ?, ?)",
                [(res, period, table, eid) for period in periods for table, eid in entities],
            )
            self.conn.executemany(
                "INSERT INTO rollup_late (res, bucket, writes) VALUES (?, ?, 1)"
                " ON CONFLICT (res, bucket) DO UPDATE SET writes = writes + 1",
                [(res, period) for period in periods],
            )


class Writer:
    """Stores prepared payloads as rows; remembers the ids and spans it has seen."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop every id and span remembered (after a rollback, or when too many)."""
        self._node_ids: dict[str, int] = {}
        self._pod_ids: dict[str, int] = {}
        self._group_ids: dict[tuple[int, str, str], int] = {}
        self._pod_identity: dict[str, tuple] = {}
        self._containers: dict[tuple[int, str], tuple[int, str]] = {}  # (pod, key): id, ID
        # Per entity table, per id: (first, last bucket) of its span, or of part of it
        self._spans: dict[str, dict[int, tuple[int, int]]] = {"pod": {}, "ctr": {}, "grp": {}}
        self._pod_groups: dict[int, tuple[int, ...]] = {}  # pod id: its groups' ids
        self._moves = -1  # pod_moves when _pod_groups was last known right

    def store(self, conn: sqlite3.Connection, payloads: Sequence[Prepared]) -> list[int]:
        """Write prepared payloads in the open transaction; the samples each stored."""
        if len(self._pod_ids) > _KNOWN_PODS:  # pods come and go: forget those of long ago
            self.forget()
        (moves,) = conn.execute("SELECT count FROM pod_moves").fetchone()
        if moves != self._moves:  # some pod changed its groups since
            self._pod_groups.clear()
            self._moves = moves
        tx = _Transaction(conn)
        counts = [self._write_one(tx, payload) for payload in payloads]
        tx.changes.apply(conn)
        self._widen(tx)
        return counts

    def _write_one(self, tx: _Transaction, prepared: Prepared) -> int:
        conn, changes, bucket, payload = tx.conn, tx.changes, prepared.bucket, prepared.payload
        node_id = self._node_id(conn, payload, bucket)
        pod_ids = self._upsert_pods(tx, prepared)
        container_ids = self._upsert_containers(tx, pod_ids, prepared.containers, bucket)
        previous = next(iter(sealed.lookup(conn, "node_sample", BUCKET, bucket, [node_id])), None)
        cluster = self.group_id(conn, EntityKind.CLUSTER, "", "", bucket)
        # The rows replaced or dropped here leave their groups' sums.
        gone = set() if previous is None else set(unpack_ids(previous[2])).difference(pod_ids)
        if previous is not None:
            changes.remove(
                bucket, (cluster,), node_member(unpack(previous[1], len(NODE_COLUMNS))), NODE_SUM
            )
        # A pod's sealed rows came with its node's report: where the node has none in this
        # bucket, its pods have none to look for there either.
        replaced = sealed.lookup(
            conn, "pod_sample", BUCKET, bucket, [*pod_ids, *gone], sealed=previous is not None
        )
        old_groups = self._groups_of(conn, [pid for pid, _, _ in replaced], bucket)
        for (_, blob, _), gids in zip(replaced, old_groups, strict=True):
            changes.remove(bucket, gids, pod_member(unpack(blob, len(POD_COLUMNS))))
        conn.executemany(
            "INSERT OR REPLACE INTO pod_sample (bucket, id, v) VALUES (?, ?, ?)",
            [(bucket, pid, blob) for pid, blob in zip(pod_ids, prepared.pod_blobs, strict=True)],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO ctr_sample (bucket, id, v) VALUES (?, ?, ?)",
            [
                (bucket, cid, container[-1])
                for cid, container in zip(container_ids, prepared.containers, strict=True)
            ],
        )
        conn.execute(
            "INSERT OR REPLACE INTO node_sample (bucket, id, v, pods) VALUES (?, ?, ?, ?)",
            (bucket, node_id, prepared.node_blob, pack_ids(pod_ids)),
        )
        changes.add(bucket, (cluster,), prepared.node_member, NODE_SUM)
        groups = self._groups_of(conn, pod_ids, bucket)
        changes.add_vectors(bucket, prepared.pod_members.vectors(groups))
        changed = {cluster, *(gid for gids in (*groups, *old_groups) for gid in gids)}
        tx.written["grp", bucket] += changed
        tx.mark_stale(
            [bucket],
            [
                ("node_sample", node_id),
                *(("pod_sample", pid) for pid in gone),
                *(("grp_sample", gid) for gid in changed),
            ],
        )
        if previous is not None:
            # The containers first: their sealed rows are kept against their pods'.
            ended = conn.execute(
                "SELECT id FROM ctr WHERE pod IN (SELECT value FROM json_each(?1))"
                " AND id NOT IN (SELECT value FROM json_each(?2))",
                (json.dumps(unpack_ids(previous[2])), json.dumps(container_ids)),
            )
            sealed.delete(conn, "ctr_sample", BUCKET, bucket, [cid for (cid,) in ended])
            sealed.delete(conn, "pod_sample", BUCKET, bucket, list(gone))
        return prepared.samples

    def _node_id(self, conn: sqlite3.Connection, payload, bucket: int) -> int:
        info = payload.node_info
        conn.execute(
            "INSERT INTO node (name, cpu_count, memory_total_bytes, kernel, cgroup_version,"
            " boot_time, first_bucket, last_bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET"
            " cpu_count = coalesce(excluded.cpu_count, cpu_count),"
            " memory_total_bytes = coalesce(excluded.memory_total_bytes, memory_total_bytes),"
            " kernel = coalesce(excluded.kernel, kernel),"
            " cgroup_version = coalesce(excluded.cgroup_version, cgroup_version),"
            " boot_time = coalesce(excluded.boot_time, boot_time),"
            " first_bucket = min(first_bucket, excluded.first_bucket),"
            " last_bucket = max(last_bucket, excluded.last_bucket)",
            (
                payload.node,
                info.cpu_count,
                info.memory_total_bytes,
                info.kernel,
                info.cgroup_version,
                info.boot_time,
                bucket,
                bucket,
            ),
        )
        node_id = self._node_ids.get(payload.node)
        if node_id is None:
            (node_id,) = conn.execute(
                "SELECT id FROM node WHERE name = ?", (payload.node,)
            ).fetchone()
            self._node_ids[payload.node] = node_id
        return node_id

    def _upsert_pods(self, tx: _Transaction, prepared: Prepared) -> list[int]:
        conn, bucket, pods, known = tx.conn, prepared.bucket, prepared.pods, self._pod_identity
        changed = [
            (pod, identity)
            for pod, identity in zip(pods, prepared.identities, strict=True)
            if known.get(pod.uid) != identity
        ]
        if changed:
            uids = json.dumps([pod.uid for pod, _ in changed])
            select = (
                "SELECT id, namespace, deployment, first_bucket, last_bucket FROM pod"
                " WHERE uid IN (SELECT value FROM json_each(?))"
            )
            before = {pid: row for pid, *row in conn.execute(select, (uids,))}
            conn.executemany(
                "INSERT INTO pod (name, namespace, deployment, workload_kind, workload, qos,"
                " node, uid, first_bucket, last_bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (uid) DO UPDATE SET"
                " name = coalesce(excluded.name, name),"
                " namespace = coalesce(excluded.namespace, namespace),"
                " deployment = coalesce(excluded.deployment, deployment),"
                " workload_kind = coalesce(excluded.workload_kind, workload_kind),"
                " workload = coalesce(excluded.workload, workload),"
                " qos = coalesce(excluded.qos, qos), node = excluded.node,"
                " first_bucket = min(first_bucket, excluded.first_bucket),"
                " last_bucket = max(last_bucket, excluded.last_bucket)",
                [(*identity, pod.uid, bucket, bucket) for pod, identity in changed],
            )
            for pid, namespace, deployment, _, _ in conn.execute(select, (uids,)):
                if pid in before and before[pid][:2] != [namespace, deployment]:
                    self._move(tx, pid, before[pid], (namespace, deployment))
            self._pod_ids.update(
                conn.execute(
                    "SELECT uid, id FROM pod WHERE uid IN (SELECT value FROM json_each(?))",
                    (uids,),
                )
            )
            for pod, identity in changed:
                self._pod_identity[pod.uid] = identity
        ids = [self._pod_ids[pod.uid] for pod in pods]
        if len(changed) < len(pods):
            tx.written["pod", bucket] += ids
        return ids

    def _move(self, tx: _Transaction, pid: int, before: list, groups: tuple) -> None:
        """A pod's rows' share of the sums taken from its old groups to its new ones."""
        conn, changes = tx.conn, tx.changes
        namespace, deployment, first, last = before
        old = self.groups_of(conn, namespace, deployment, first)
        new = self.groups_of(conn, *groups, first)
        moved = []
        for bucket, blob in sealed.entity_rows(conn, "pod_sample", BUCKET, first, last, pid):
            member = pod_member(unpack(blob, len(POD_COLUMNS)))
            changes.remove(bucket, old, member)
            changes.add(bucket, new, member)
            moved.append(bucket)
        tx.mark_stale(moved, [("grp_sample", gid) for gid in {*old, *new}])
        if moved:
            tx.written["grp", moved[0]] += new
            tx.written["grp", moved[-1]] += new
        self._pod_groups[pid] = new
        conn.execute("UPDATE pod_moves SET count = count + 1")
        self._moves += 1

    def _groups_of(self, conn, pod_ids: list[int], bucket: int) -> list[tuple[int, ...]]:
        """The ids of the groups of each pod, as the pod table has them."""
        missing = [pid for pid in pod_ids if pid not in self._pod_groups]
        if missing:
            rows = conn.execute(
                "SELECT id, namespace, deployment FROM pod WHERE id IN"
                " (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            ).fetchall()
            for pid, namespace, deployment in rows:
                self._pod_groups[pid] = self.groups_of(conn, namespace, deployment, bucket)
        return [self._pod_groups[pid] for pid in pod_ids]

    def _upsert_containers(self, tx: _Transaction, pod_ids, containers, bucket: int):
        ids, known = [], []
        for index, key, name, container_id, _ in containers:
            cid, was = self._containers.get((pod_ids[index], key), _UNKNOWN)
            if cid is None or was != container_id:
                (cid,) = tx.conn.execute(
                    "INSERT INTO ctr (pod, key, name, container_id, first_bucket, last_bucket)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pod, key) DO UPDATE SET"
                    " name = excluded.name, container_id = excluded.container_id,"
                    " first_bucket = min(first_bucket, excluded.first_bucket),"
                    " last_bucket = max(last_bucket, excluded.last_bucket) RETURNING id",
                    (pod_ids[index], key, name, container_id, bucket, bucket),
                ).fetchone()
                self._containers[pod_ids[index], key] = (cid, container_id)
            else:
                known.append(cid)
            ids.append(cid)
        tx.written["ctr", bucket] += known
        return ids

    def groups_of(self, conn, namespace, deployment, bucket) -> tuple[int, ...]:
        """The ids of a pod's namespace and deployment (none without a namespace)."""
        if namespace is None:
            return ()
        groups = [self.group_id(conn, EntityKind.NAMESPACE, namespace, "", bucket)]
        if deployment is not None:
            kind = EntityKind.DEPLOYMENT
            groups.append(self.group_id(conn, kind, namespace, deployment, bucket))
        return tuple(groups)

    def group_id(self, conn, kind: EntityKind, namespace: str, name: str, bucket: int) -> int:
        """A group's id, the group added (its span: this bucket) if it is new."""
        key = (GROUP_KIND[kind], namespace, name)
        gid = self._group_ids.get(key)
        if gid is None:
            conn.execute(
                "INSERT OR IGNORE INTO grp (kind, namespace, name, first_bucket, last_bucket)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, bucket, bucket),
            )
            (gid,) = conn.execute(
                "SELECT id FROM grp WHERE kind = ? AND namespace = ? AND name = ?", key
            ).fetchone()
            self._group_ids[key] = gid
        return gid

    def _widen(self, tx: _Transaction) -> None:
        """The spans of the entities written widened to hold the buckets written; those known
        to hold them already left as they are. What a writer knows of a span is within it:
        other writers only widen it."""
        for (table, bucket), ids in tx.written.items():
            known = self._spans[table]
            wider = []
            for eid in ids:
                first, last = known.get(eid, _NO_SPAN)
                if not first <= bucket <= last:
                    wider.append(eid)
                    known[eid] = (min(first, bucket), max(last, bucket))
            if wider:
                tx.conn.execute(
                    f"UPDATE {table} SET first_bucket = min(first_bucket, ?1),"
                    " last_bucket = max(last_bucket, ?1)"
                    " WHERE id IN (SELECT value FROM json_each(?2))",
                    (bucket, json.dumps(wider)),
                )


def _rolled_up(conn) -> dict[int, tuple[int, int]]:
    """Per resolution rolled up: up to where it is done, and from where the finer resolution
    still holds all the rows its periods were rolled up from (`size` deletes the oldest)."""
    deleted = dict(conn.execute("SELECT res, before FROM size_deleted"))
    return {
        res: (upto, deleted.get(RESOLUTIONS[RESOLUTIONS.index(res) - 1], 0))
        for res, upto in conn.execute("SELECT res, done FROM rollup_state")
    }
