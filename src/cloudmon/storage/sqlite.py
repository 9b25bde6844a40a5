"""The embedded store: one SQLite file in WAL mode, one writer, concurrent readers.

A row holds one entity's bucket: its present values packed as a 32-bit mask of the
columns present followed by those values as little-endian doubles. Sample tables are
WITHOUT ROWID and keyed (bucket, id), so a bucket's rows are written at the end of the
B-tree and the pages stay full. The namespace, deployment and cluster sums of each bucket
are taken once the bucket is closed (SUM_GRACE after it starts, by `checkpoint` and
`roll_up`, which the server's master process runs) from its pod and node rows into
grp_sample; until then, and while a late sample has made them stale, a query sums the rows
it needs itself. Rollup tables hold, per 1 min or 1 h period, the STATS (sum, count, min,
max, last) of each column; rollup_state says up to where each resolution is done (for the
10 s resolution: up to where the sums are taken) and rollup_dirty which periods (buckets)
late samples changed.
"""

import contextlib
import errno
import fcntl
import json
import operator
import os
import sqlite3
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from cloudmon.storage.base import (
    BUCKET,
    RESOLUTIONS,
    RETENTION,
    STATS,
    Entity,
    Span,
    Storage,
    as_latest,
    bucket_of,
    complete_bucket,
    fold,
    merge_stats,
    register,
)
from cloudmon.storage.model import (
    CLUSTER_SUMS,
    CONTAINER_COLUMNS,
    GROUP_COLUMNS,
    IDENTITY,
    KINDS,
    NODE_COLUMNS,
    POD_COLUMNS,
    STORED_COLUMNS,
    EntityKind,
    columns,
    derive,
    node_row,
    sum_columns,
)

_MASK = struct.Struct("<I")
_NO_SPAN = (float("inf"), float("-inf"))
_EXPIRE_CHUNK = 6  # periods of a resolution deleted per transaction
_ROLLUP_CHUNK = 1500  # rows summarised per transaction: about 100 ms on 2 cores
_FEW_GROUPS = 3  # up to this many groups in one answer, their sums are taken one by one
_KNOWN_PODS = 100_000  # pods whose ids a writer remembers before it starts afresh
_GROUP_KIND = {EntityKind.CLUSTER: 0, EntityKind.NAMESPACE: 1, EntityKind.DEPLOYMENT: 2}
_NAMESPACE, _DEPLOYMENT = _GROUP_KIND[EntityKind.NAMESPACE], _GROUP_KIND[EntityKind.DEPLOYMENT]
_GROUPS = "SELECT id, kind, namespace, name FROM grp"
_NODE_ROWS = "SELECT v FROM node_sample WHERE bucket = ? ORDER BY id"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE node (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        cpu_count INTEGER, memory_total_bytes INTEGER, kernel TEXT, cgroup_version INTEGER,
        boot_time REAL, first_bucket INTEGER NOT NULL, last_bucket INTEGER NOT NULL);
    CREATE TABLE pod (
        id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, name TEXT, namespace TEXT,
        deployment TEXT, workload_kind TEXT, workload TEXT, node TEXT, qos TEXT,
        first_bucket INTEGER NOT NULL, last_bucket INTEGER NOT NULL);
    CREATE INDEX pod_by_name ON pod (namespace, name);
    CREATE TABLE grp (
        id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, namespace TEXT NOT NULL,
        name TEXT NOT NULL, first_bucket INTEGER NOT NULL, last_bucket INTEGER NOT NULL,
        UNIQUE (kind, namespace, name));
    CREATE TABLE node_sample (
        bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL, pods BLOB NOT NULL,
        PRIMARY KEY (bucket, id)) WITHOUT ROWID;
    CREATE TABLE pod_sample (
        bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (bucket, id)) WITHOUT ROWID;
    CREATE TABLE grp_sample (
        bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (bucket, id)) WITHOUT ROWID;
    """,
    """
    CREATE TABLE node_rollup (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (res, bucket, id)) WITHOUT ROWID;
    CREATE TABLE pod_rollup (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (res, bucket, id)) WITHOUT ROWID;
    CREATE TABLE grp_rollup (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (res, bucket, id)) WITHOUT ROWID;
    CREATE TABLE rollup_state (res INTEGER PRIMARY KEY, done INTEGER NOT NULL);
    CREATE TABLE rollup_dirty (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (res, bucket)) WITHOUT ROWID;
    """,
    """
    CREATE TABLE ctr (
        id INTEGER PRIMARY KEY, pod INTEGER NOT NULL, key TEXT NOT NULL, name TEXT,
        container_id TEXT, first_bucket INTEGER NOT NULL, last_bucket INTEGER NOT NULL,
        UNIQUE (pod, key));
    CREATE TABLE ctr_sample (
        bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (bucket, id)) WITHOUT ROWID;
    CREATE TABLE ctr_rollup (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, id INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (res, bucket, id)) WITHOUT ROWID;
    """,
    # Sums were kept at ingest up to here: the buckets they cover are closed.
    """
    INSERT INTO rollup_state (res, done)
        SELECT 10, max(bucket) + 10 FROM grp_sample HAVING max(bucket) IS NOT NULL;
    CREATE TABLE rollup_doing (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (res, bucket)) WITHOUT ROWID;
    """,
)

_ROLLUP_TABLE = {
    "node_sample": "node_rollup",
    "pod_sample": "pod_rollup",
    "grp_sample": "grp_rollup",
    "ctr_sample": "ctr_rollup",
}
MAX_WAITING = 32  # writes waiting or writing, in all processes, before more are refused
ROLLUP_GRACE = 60  # seconds after a minute ends before it is rolled up: agents send late
SUM_GRACE = 20  # seconds after a bucket starts before its sums are taken and kept

_SAMPLE_TABLE = {
    EntityKind.NODE: "node_sample",
    EntityKind.POD: "pod_sample",
    EntityKind.NAMESPACE: "grp_sample",
    EntityKind.DEPLOYMENT: "grp_sample",
    EntityKind.CLUSTER: "grp_sample",
    EntityKind.CONTAINER: "ctr_sample",
}


def _struct(count: int) -> struct.Struct:
    packer = _STRUCTS.get(count)
    if packer is None:
        packer = _STRUCTS[count] = struct.Struct(f"<I{count}d")
    return packer


_STRUCTS: dict[int, struct.Struct] = {}


def pack(values: Sequence) -> bytes:
    """A row's values (None for missing) as mask + present doubles."""
    if None not in values:
        return _struct(len(values)).pack((1 << len(values)) - 1, *values)
    mask = 0
    present = []
    for i, value in enumerate(values):
        if value is not None:
            mask |= 1 << i
            present.append(value)
    return _struct(len(present)).pack(mask, *present)


def stored_values(blob: bytes) -> int:
    """How many values a packed row holds."""
    return (len(blob) - 4) // 8


def unpack(blob: bytes, width: int) -> list:
    """The values of a packed row, None where missing."""
    (mask,) = _MASK.unpack_from(blob)
    present = iter(struct.unpack_from(f"<{(len(blob) - 4) // 8}d", blob, 4))
    return [next(present) if mask >> i & 1 else None for i in range(width)]


def pack_stats(values: Sequence) -> bytes:
    """A rollup row: mask + the STATS of each present column."""
    mask = 0
    present = []
    for i, stats in enumerate(values):
        if stats is not None:
            mask |= 1 << i
            present += stats
    return struct.pack(f"<I{len(present)}d", mask, *present)


def unpack_stats(blob: bytes, width: int) -> list:
    """The STATS tuples of a rollup row, None where missing."""
    (mask,) = _MASK.unpack_from(blob)
    flat = struct.unpack_from(f"<{(len(blob) - 4) // 8}d", blob, 4)
    out: list = [None] * width
    at = 0
    for i in range(width):
        if mask >> i & 1:
            out[i] = flat[at : at + len(STATS)]
            at += len(STATS)
    return out


# The positions in STATS that an aggregation folds.
_FIGURES_OF = {
    "avg": (STATS.index("sum"), STATS.index("count")),
    "sum": (STATS.index("sum"),),
    "min": (STATS.index("min"),),
    "max": (STATS.index("max"),),
    "last": (STATS.index("last"),),
}


def unpack_figures(blob: bytes, width: int, figures: Sequence[int]) -> list:
    """Per figure (a position in STATS), its values in a rollup row; None where missing."""
    (mask, *flat) = _struct((len(blob) - 4) // 8).unpack(blob)
    if len(flat) == width * len(STATS):
        return [flat[figure :: len(STATS)] for figure in figures]
    found = []
    for figure in figures:
        present = flat[figure :: len(STATS)]
        if len(present) == width:
            found.append(present)
        else:
            values = iter(present)
            found.append([next(values) if mask >> i & 1 else None for i in range(width)])
    return found


def _ids(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 4}I", blob)


_FULL_MASK = (1 << len(POD_COLUMNS)) - 1
_POD_SUMMED = operator.itemgetter(*(POD_COLUMNS.index(name) for name in GROUP_COLUMNS[:-1]))
_NODE_SUMMED = operator.itemgetter(*(NODE_COLUMNS.index(name) for name in CLUSTER_SUMS))
_POD_VALUES = operator.attrgetter(*POD_COLUMNS)
_CONTAINER_VALUES = operator.attrgetter(*CONTAINER_COLUMNS)
_POD_IDENTITY = operator.attrgetter(
    "name", "namespace", "deployment", "workload_kind", "workload", "qos"
)


class _Job:
    """One caller's payloads waiting to be written, and the outcome once they are."""

    def __init__(self, payloads: Sequence) -> None:
        self.payloads = payloads
        self.finished = False
        self.stored = 0
        self.error: Exception | None = None

    def finish(self, stored: int = 0, error: Exception | None = None) -> None:
        self.stored, self.error, self.finished = stored, error, True


class _Partials:
    """Sums of one bucket per group id: vectors of column sums ending in a count."""

    def __init__(self) -> None:
        self.rows: dict[int, list[Sequence]] = defaultdict(list)

    def add_pod(self, group_ids: Sequence[int], values: Sequence) -> None:
        summed = (*_POD_SUMMED(values), 1)
        for gid in group_ids:
            self.rows[gid].append(summed)

    def add_node(self, cluster_id: int, values: Sequence) -> None:
        self.rows[cluster_id].append((*_NODE_SUMMED(values), 1))

    def sums(self) -> dict[int, list]:
        """Per group: its vectors' column sums (None where none has a value)."""
        return {gid: sum_columns(rows) for gid, rows in self.rows.items()}


class _Prepared:
    """A payload's rows packed and its groups found: the work that needs no lock, done
    before a write waits for the writer."""

    __slots__ = (
        "bucket",
        "containers",
        "groups",
        "node_blob",
        "node_row",
        "payload",
        "pod_blobs",
        "pod_rows",
        "pods",
        "samples",
    )

    def __init__(self, payload) -> None:
        self.payload = payload
        self.bucket = bucket_of(payload.timestamp)
        self.pods = list({pod.uid: pod for pod in payload.pods}.values())
        self.pod_rows = [_POD_VALUES(pod) for pod in self.pods]
        self.node_row = node_row(payload)
        full = _struct(len(POD_COLUMNS)).pack
        self.pod_blobs = [
            full(_FULL_MASK, *row) if None not in row else pack(row) for row in self.pod_rows
        ]
        self.node_blob = pack(self.node_row)
        # (index of the pod, key, name, container ID, packed row) of each container; its key
        # is its name, else (with no metadata) its ID
        self.containers = [
            (index, key, container.name, container.id, pack(_CONTAINER_VALUES(container)))
            for index, pod in enumerate(self.pods)
            for key, container in {c.name or c.id: c for c in pod.containers}.items()
        ]
        self.samples = (
            stored_values(self.node_blob)
            + sum(map(stored_values, self.pod_blobs))
            + sum(stored_values(blob) for *_, blob in self.containers)
        )
        # The namespaces and deployments reporting in this bucket.
        self.groups = {(EntityKind.NAMESPACE, pod.namespace, "") for pod in self.pods}
        self.groups |= {(EntityKind.DEPLOYMENT, pod.namespace, pod.deployment) for pod in self.pods}
        self.groups = {key for key in self.groups if None not in key}


@register("sqlite")
class SqliteStorage(Storage):
    """Samples in one SQLite file; safe to share between threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike,
        cache_mb: int = 64,
        retention: dict[int, float] | None = None,
        clock=time.time,
        autocheckpoint: bool = True,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        """With autocheckpoint off, writes leave the WAL to `checkpoint` (run elsewhere);
        past `max_waiting` writes waiting or writing, in all processes, write refuses more."""
        self.path = Path(path)
        self.retention = {**RETENTION, **(retention or {})}
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cache_kib = cache_mb * 1024
        self._write_lock = threading.Lock()
        # Writers in other processes (gunicorn's workers, the upkeep) queue on this file
        # lock rather than in SQLite's busy handler, which polls with sleeps of 1 ms and more.
        self._lock_file = open(self.path.with_name(self.path.name + "-writer"), "a+b")  # noqa: SIM115
        self._pending_lock = threading.Lock()
        self._pending: list[_Job] = []
        # Slot i: byte i of this file (a POSIX lock, for other processes) and a Lock (for
        # the threads of this one).
        self._queue_file = open(self.path.with_name(self.path.name + "-queue"), "a+b")  # noqa: SIM115
        self._slots = [threading.Lock() for _ in range(max_waiting)]
        self._local = threading.local()
        self._writer = self._connect()
        if not autocheckpoint:
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer: sqlite3.Connection | None = None
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise
        self._forget()

    @classmethod
    def from_url(cls, url: str, **options) -> "SqliteStorage":
        """sqlite:///relative/path or sqlite:////absolute/path."""
        path = url.removeprefix("sqlite:///")
        if not path or path == url:
            raise ValueError(f"storage URL {url!r}: expected sqlite:///PATH")
        return cls(path, **options)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{self._cache_kib}")
        return conn

    @contextlib.contextmanager
    def _writing(self):
        with self._write_lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield self._writer
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
        return conn

    def _migrate(self) -> None:
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version > len(MIGRATIONS):
                    raise RuntimeError(
                        f"{self.path}: schema version {version} is newer than this cloudmon "
                        f"({len(MIGRATIONS)})"
                    )
                for number in range(version, len(MIGRATIONS)):
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={number + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        """The schema version of the file."""
        return self._reader().execute("PRAGMA user_version").fetchone()[0]

    # -- writing -------------------------------------------------------------------------

    def _forget(self) -> None:
        self._node_ids: dict[str, int] = {}
        self._pod_ids: dict[str, int] = {}
        self._group_ids: dict[tuple[int, str, str], int] = {}
        self._pod_identity: dict[str, tuple] = {}
        self._containers: dict[tuple[int, str], tuple[int, str]] = {}  # (pod, key): id, ID
        self._group_spans: dict[int, tuple[int, int]] = {}  # (first, last bucket) stored

    def write(self, payloads: Sequence) -> int:
        """Store payloads; OSError(EAGAIN) when too many writes wait already."""
        # Group commit: the writes that wait while one is committed go together in the next
        # transaction; each caller returns once its own payloads are committed.
        job = _Job([_Prepared(payload) for payload in payloads])
        with self._queue_slot():
            with self._pending_lock:
                self._pending.append(job)
            with self._writing():
                if not job.finished:
                    with self._pending_lock:
                        batch, self._pending = self._pending, []
                    self._write_batch(batch)
        if job.error is not None:
            raise job.error
        return job.stored

    @contextlib.contextmanager
    def _queue_slot(self):
        for number, slot in enumerate(self._slots):
            if not slot.acquire(blocking=False):
                continue
            try:
                fcntl.lockf(self._queue_file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, number)
            except OSError:
                slot.release()
                continue
            try:
                yield
            finally:
                fcntl.lockf(self._queue_file, fcntl.LOCK_UN, 1, number)
                slot.release()
            return
        raise OSError(errno.EAGAIN, f"{len(self._slots)} writes are waiting already")

    def _write_batch(self, batch: list["_Job"]) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            counts = self._store(conn, [payload for job in batch for payload in job.payloads])
            conn.execute("COMMIT")
        except Exception as error:
            self._rollback(conn)
            error = self._disk_full(error)
            if isinstance(error, OSError):
                for job in batch:
                    job.finish(error=error)
                return
            if len(batch) > 1:  # each on its own, so that one bad write fails alone
                for job in batch:
                    self._write_batch([job])
                return
            batch[0].finish(error=error)
            return
        at = 0
        for job in batch:
            job.finish(stored=sum(counts[at : at + len(job.payloads)]))
            at += len(job.payloads)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # SQLite may have rolled back already, as it does on SQLITE_FULL.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        self._forget()

    def _disk_full(self, error: Exception) -> Exception:
        """SQLITE_FULL as OSError(ENOSPC), which the server answers with 503."""
        if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            return error
        full = OSError(errno.ENOSPC, "the disk is full", str(self.path.parent))
        full.__cause__ = error
        return full

    def _store(self, conn: sqlite3.Connection, payloads: Sequence) -> list[int]:
        self._done = dict(conn.execute("SELECT res, done FROM rollup_state"))
        if len(self._pod_ids) > _KNOWN_PODS:  # pods come and go: forget those of long ago
            self._forget()
        # Per (table, bucket): the pods and containers known already, whose spans to widen.
        seen: dict[tuple[str, int], list[int]] = defaultdict(list)
        counts = [self._write_one(conn, payload, seen) for payload in payloads]
        for (table, bucket), ids in seen.items():
            conn.execute(
                f"UPDATE {table} SET last_bucket = max(last_bucket, ?1),"
                " first_bucket = min(first_bucket, ?1)"
                " WHERE id IN (SELECT value FROM json_each(?2))",
                (bucket, json.dumps(ids)),
            )
        return counts

    def _write_one(self, conn: sqlite3.Connection, prepared: _Prepared, seen) -> int:
        bucket, payload = prepared.bucket, prepared.payload
        for res, done in self._done.items():
            if bucket < done:
                conn.execute(
                    "INSERT OR IGNORE INTO rollup_dirty (res, bucket) VALUES (?, ?)",
                    (res, bucket // res * res),
                )
        node_id = self._node_id(conn, payload, bucket)
        pod_ids = self._upsert_pods(conn, payload.node, prepared.pods, bucket, seen["pod", bucket])
        container_ids = self._upsert_containers(
            conn, pod_ids, prepared.containers, bucket, seen["ctr", bucket]
        )
        previous = conn.execute(
            "SELECT pods FROM node_sample WHERE bucket = ? AND id = ?", (bucket, node_id)
        ).fetchone()
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
            (bucket, node_id, prepared.node_blob, struct.pack(f"<{len(pod_ids)}I", *pod_ids)),
        )
        groups = [self._group_id(conn, *key, bucket) for key in prepared.groups]
        self._widen(
            conn, bucket, [self._group_id(conn, EntityKind.CLUSTER, "", "", bucket), *groups]
        )
        if previous is not None:
            gone = set(_ids(previous[0])).difference(pod_ids)
            conn.executemany(
                "DELETE FROM pod_sample WHERE bucket = ? AND id = ?",
                [(bucket, pid) for pid in gone],
            )
            conn.execute(
                "DELETE FROM ctr_sample WHERE bucket = ?1 AND id IN (SELECT id FROM ctr WHERE pod"
                " IN (SELECT value FROM json_each(?2))) AND id NOT IN"
                " (SELECT value FROM json_each(?3))",
                (bucket, json.dumps(_ids(previous[0])), json.dumps(container_ids)),
            )
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

    def _upsert_pods(self, conn, node: str, pods: list, bucket: int, seen: list[int]):
        changed = []
        for pod in pods:
            identity = (*_POD_IDENTITY(pod), node)
            if self._pod_identity.get(pod.uid) != identity:
                changed.append((pod, identity))
        if changed:
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
            self._pod_ids.update(
                conn.execute(
                    "SELECT uid, id FROM pod WHERE uid IN (SELECT value FROM json_each(?))",
                    (json.dumps([pod.uid for pod, _ in changed]),),
                )
            )
            for pod, identity in changed:
                self._pod_identity[pod.uid] = identity
        ids = [self._pod_ids[pod.uid] for pod in pods]
        if len(changed) < len(pods):
            seen += ids
        return ids

    def _upsert_containers(self, conn, pod_ids, containers, bucket: int, seen: list[int]):
        ids = []
        for index, key, name, container_id, _ in containers:
            known = self._containers.get((pod_ids[index], key))
            if known is not None and known[1] == container_id:
                ids.append(known[0])
                seen.append(known[0])
                continue
            (cid,) = conn.execute(
                "INSERT INTO ctr (pod, key, name, container_id, first_bucket, last_bucket)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pod, key) DO UPDATE SET"
                " name = excluded.name, container_id = excluded.container_id,"
                " first_bucket = min(first_bucket, excluded.first_bucket),"
                " last_bucket = max(last_bucket, excluded.last_bucket) RETURNING id",
                (pod_ids[index], key, name, container_id, bucket, bucket),
            ).fetchone()
            self._containers[pod_ids[index], key] = (cid, container_id)
            ids.append(cid)
        return ids

    def _groups_of(self, conn, namespace, deployment, bucket) -> tuple[int, ...]:
        if namespace is None:
            return ()
        groups = [self._group_id(conn, EntityKind.NAMESPACE, namespace, "", bucket)]
        if deployment is not None:
            kind = EntityKind.DEPLOYMENT
            groups.append(self._group_id(conn, kind, namespace, deployment, bucket))
        return tuple(groups)

    def _group_id(self, conn, kind: EntityKind, namespace: str, name: str, bucket: int) -> int:
        key = (_GROUP_KIND[kind], namespace, name)
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

    def _sum_bucket(self, conn, bucket: int) -> None:
        """Keep the sums of every group in one bucket, taken from its pod and node rows."""
        cluster_id = self._group_id(conn, EntityKind.CLUSTER, "", "", bucket)
        sums = _bucket_sums(
            conn, bucket, cluster_id, lambda ns, name: self._groups_of(conn, ns, name, bucket)
        )
        conn.execute("DELETE FROM grp_sample WHERE bucket = ?", (bucket,))
        self._store_groups(conn, bucket, sums)

    def _store_groups(self, conn, bucket: int, sums: dict[int, list]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO grp_sample (bucket, id, v) VALUES (?, ?, ?)",
            [(bucket, gid, pack(total)) for gid, total in sums.items()],
        )
        self._widen(conn, bucket, list(sums))

    def _widen(self, conn, bucket: int, gids: list[int]) -> None:
        """Groups' spans widened to hold a bucket."""
        # Other writers only widen a group's span, so one known to hold the bucket does.
        spans = self._group_spans
        widen = [gid for gid in gids if not spans.get(gid, _NO_SPAN)[0] <= bucket <= spans[gid][1]]
        if not widen:
            return
        rows = conn.execute(
            "UPDATE grp SET first_bucket = min(first_bucket, ?1), last_bucket ="
            " max(last_bucket, ?1) WHERE id IN (SELECT value FROM json_each(?2))"
            " RETURNING id, first_bucket, last_bucket",
            (bucket, json.dumps(widen)),
        )
        spans.update((gid, (first, last)) for gid, first, last in rows)

    # -- rollups and retention ----------------------------------------------------------

    def _transaction(self, work):
        with self._writing() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException as error:
                self._rollback(conn)
                raise self._disk_full(error) from None
        return result

    def roll_up(self) -> int:
        self._take_sums()
        periods = 0
        # Periods a stop left half rolled up are done again.
        self._transaction(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO rollup_dirty SELECT res, bucket FROM rollup_doing"
            )
        )
        for res, source in zip(RESOLUTIONS[1:], RESOLUTIONS, strict=False):
            while (
                period := self._transaction(lambda conn, r=res: self._begin(conn, r))
            ) is not None:
                self._roll_up_period(res, source, period)
                periods += 1
        return periods

    def _redo_dirty(self, conn, res: int) -> bool:
        query = "SELECT bucket FROM rollup_dirty WHERE res = ? LIMIT 1"
        row = conn.execute(query, (res,)).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM rollup_dirty WHERE res = ? AND bucket = ?", (res, row[0]))
        self._sum_bucket(conn, row[0])
        return True

    def _take_sums(self) -> None:
        """The groups' sums of the buckets past SUM_GRACE, and of those late samples changed."""
        while self._transaction(lambda conn: self._redo_dirty(conn, BUCKET)):
            pass
        while self._transaction(self._close_next):
            pass

    def _close_next(self, conn) -> bool:
        """Take the sums of the next bucket past SUM_GRACE; False when there is none."""
        horizon = bucket_of(self._clock() - SUM_GRACE)
        row = conn.execute("SELECT done FROM rollup_state WHERE res = ?", (BUCKET,)).fetchone()
        done = row[0] if row else 0
        if done >= horizon:
            return False
        query = "SELECT min(bucket) FROM node_sample WHERE bucket >= ? AND bucket < ?"
        (bucket,) = conn.execute(query, (done, horizon)).fetchone()
        if bucket is not None:
            self._sum_bucket(conn, bucket)
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (res, done) VALUES (?, ?)",
            (BUCKET, horizon if bucket is None else bucket + BUCKET),
        )
        return bucket is not None

    def _begin(self, conn, res: int) -> int | None:
        """The next period of a resolution to roll up: one late samples changed, else the
        next finished one, marked done so that samples arriving from now on mark it
        changed again; None when there is none."""
        row = conn.execute("SELECT bucket FROM rollup_dirty WHERE res = ?", (res,)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM rollup_dirty WHERE res = ? AND bucket = ?", (res, row[0]))
            period = row[0]
        else:
            period = self._due(conn, res)
            if period is None:
                return None
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (res, done) VALUES (?, ?)",
                (res, period + res),
            )
        conn.execute("INSERT OR IGNORE INTO rollup_doing VALUES (?, ?)", (res, period))
        return period

    def _due(self, conn, res: int) -> int | None:
        """The next finished period of a resolution not rolled up yet."""
        source = RESOLUTIONS[RESOLUTIONS.index(res) - 1]
        state = dict(conn.execute("SELECT res, done FROM rollup_state"))
        if source not in state:  # for raw buckets: their sums not taken yet
            return None
        horizon = state[source] // res * res
        if source == BUCKET:
            horizon = min(horizon, int(self._clock() - ROLLUP_GRACE) // res * res)
        done = state.get(res)
        if done is None:
            oldest = self._oldest(conn, source)
            if oldest is None:
                return None
            done = oldest // res * res
        return done if done < horizon else None

    def _roll_up_period(self, res: int, source: int, period: int) -> None:
        """Summarise a period a chunk of entities per transaction, so that ingest waits for
        one chunk at most."""
        for table in _ROLLUP_TABLE:
            source_table = table if source == BUCKET else _ROLLUP_TABLE[table]
            where = "" if source == BUCKET else f"res = {source} AND "
            (low, high) = (
                self._reader()
                .execute(
                    f"SELECT min(id), max(id) FROM {source_table}"
                    f" WHERE {where}bucket >= ? AND bucket < ?",
                    (period, period + res),
                )
                .fetchone()
            )
            width = max(1, _ROLLUP_CHUNK * source // res)  # ids: rows of each, res // source
            for first in range(low or 0, (high or -1) + 1, width):
                ids = (first, first + width)
                self._transaction(
                    lambda conn, t=table, i=ids: self._summarise(conn, res, source, period, t, i)
                )
        self._transaction(
            lambda conn: conn.execute(
                "DELETE FROM rollup_doing WHERE res = ? AND bucket = ?", (res, period)
            )
        )

    def _oldest(self, conn, res: int) -> int | None:
        found = []
        for table in _ROLLUP_TABLE:
            if res == BUCKET:
                (oldest,) = conn.execute(f"SELECT min(bucket) FROM {table}").fetchone()
            else:
                (oldest,) = conn.execute(
                    f"SELECT min(bucket) FROM {_ROLLUP_TABLE[table]} WHERE res = ?", (res,)
                ).fetchone()
            if oldest is not None:
                found.append(oldest)
        return min(found, default=None)

    def _summarise(
        self, conn, res: int, source: int, period: int, table: str, ids=(0, 1 << 63)
    ) -> None:
        """The rollups of one period of one table's entities with ids in [ids[0], ids[1])."""
        clusters = {gid for (gid,) in conn.execute("SELECT id FROM grp WHERE kind = 0")}
        rollup = _ROLLUP_TABLE[table]
        in_period = "bucket >= ? AND bucket < ? AND id >= ? AND id < ?"
        if source == BUCKET:
            rows = conn.execute(
                f"SELECT id, v FROM {table} WHERE {in_period}", (period, period + res, *ids)
            )
        else:
            rows = conn.execute(
                f"SELECT id, v FROM {rollup} WHERE res = ? AND {in_period}",
                (source, period, period + res, *ids),
            )
        summaries: dict[int, list] = {}
        for eid, blob in rows:
            kind = _kind_of(table, eid, clusters)
            if source == BUCKET:
                values = self._values(kind, blob)
                stats = [None if v is None else (v, 1.0, v, v, v) for v in values]
            else:
                stats = unpack_stats(blob, len(columns(kind)))
            earlier = summaries.get(eid)
            if earlier is not None:
                stats = [
                    e if s is None else merge_stats(e, s)
                    for e, s in zip(earlier, stats, strict=True)
                ]
            summaries[eid] = stats
        conn.execute(
            f"DELETE FROM {rollup} WHERE res = ? AND bucket = ? AND id >= ? AND id < ?",
            (res, period, *ids),
        )
        conn.executemany(
            f"INSERT INTO {rollup} (res, bucket, id, v) VALUES (?, ?, ?, ?)",
            [(res, period, eid, pack_stats(stats)) for eid, stats in summaries.items()],
        )

    def expire(self) -> int:
        now = self._clock()
        state = dict(self._reader().execute("SELECT res, done FROM rollup_state"))
        deleted = 0
        for res, coarser in zip(RESOLUTIONS, (*RESOLUTIONS[1:], None), strict=True):
            before = bucket_of(now - self.retention[res])
            if coarser is not None:
                # Nothing is deleted before the coarser resolution holds its summary.
                if coarser not in state:
                    continue
                before = min(before, state[coarser])
            for table, rollup in _ROLLUP_TABLE.items():
                deleted += self._delete_before(table if res == BUCKET else rollup, res, before)
        return deleted + self._prune(bucket_of(now - max(self.retention.values())))

    def _prune(self, before: int) -> int:
        """Forget pods, and their containers, with no sample left in any resolution. A pod
        never comes back (a new one has a new UID); nodes, namespaces and deployments are
        few and kept."""

        def prune(conn) -> int:
            pods = "SELECT id FROM pod WHERE last_bucket < ?"
            gone = conn.execute(f"DELETE FROM ctr WHERE pod IN ({pods})", (before,)).rowcount
            return gone + conn.execute("DELETE FROM pod WHERE last_bucket < ?", (before,)).rowcount

        return self._transaction(prune)

    def _delete_before(self, table: str, res: int, before: int) -> int:
        where = "" if res == BUCKET else f"res = {res} AND "
        (oldest,) = (
            self._reader().execute(f"SELECT min(bucket) FROM {table} WHERE {where}1").fetchone()
        )
        deleted = 0
        chunk = res * _EXPIRE_CHUNK
        # Short transactions, so that ingest waits at most for one chunk.
        for start in range(oldest or before, before, chunk):
            with self._writing() as conn:
                cursor = conn.execute(
                    f"DELETE FROM {table} WHERE {where}bucket >= ? AND bucket < ?",
                    (start, min(start + chunk, before)),
                )
                deleted += cursor.rowcount
        return deleted

    # -- reading -------------------------------------------------------------------------

    def entities(self, kind, filters=None, since=None, span=None):
        kind = EntityKind(kind)
        filters = dict(filters or {})
        where, params = [], []
        if kind is EntityKind.NODE:
            sql = (
                "SELECT first_bucket, id, last_bucket, name, cpu_count, memory_total_bytes,"
                " kernel, cgroup_version, boot_time FROM node"
            )
            make = _node_entity
        elif kind is EntityKind.POD:
            sql = (
                "SELECT first_bucket, id, last_bucket, namespace, name, uid, node, deployment,"
                " workload_kind, workload, qos FROM pod"
            )
            make = _pod_entity
        elif kind is EntityKind.CONTAINER:
            sql = (
                "SELECT * FROM (SELECT c.first_bucket, c.id, c.last_bucket, p.namespace,"
                " p.name AS pod, p.uid, p.node, c.name, c.container_id, c.key"
                " FROM ctr c JOIN pod p ON p.id = c.pod)"
            )
            make = _container_entity
        else:
            sql = "SELECT first_bucket, id, last_bucket, namespace, name FROM grp"
            where.append("kind = ?")
            params.append(_GROUP_KIND[kind])
            make = _group_entity(kind)
        for name, value in filters.items():
            if name not in KINDS[kind].filters:
                raise ValueError(f"{kind} cannot be filtered by {name}")
            where.append(f"{name} = ?")
            params.append(value)
        if since is not None:
            where.append("last_bucket >= ?")
            params.append(since)
        if span is not None:
            where.append("last_bucket >= ? AND first_bucket <= ?")
            params += [span.first_bucket(), span.last_bucket()]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + (", ".join(KINDS[kind].order) or "id")
        conn = self._reader()
        rows = conn.execute(sql, params).fetchall()
        found = [make(row[1:]) for row in rows]
        if span is None:
            return found
        # Those whose first and last buckets lie around the span may have none inside it.
        first, last = span.first_bucket(), span.last_bucket()
        around = [
            e.id
            for (f, *_), e in zip(rows, found, strict=True)
            if f < first <= last < e.last_bucket
        ]
        if not around:
            return found
        absent = set(around) - self._present(conn, _SAMPLE_TABLE[kind], around, first, last)
        if absent and kind in _GROUP_KIND:
            unsummed = _Unsummed(conn, len(absent))
            buckets = unsummed.buckets(conn, first, last)
            absent = {
                entity.id
                for entity in found
                if entity.id in absent
                and all(unsummed.sums(conn, entity, bucket) is None for bucket in buckets)
            }
        return [entity for entity in found if entity.id not in absent]

    def _present(self, conn, table: str, ids: list[int], first: int, last: int) -> set[int]:
        """Those of `ids` with a sample in [first, last]: in the raw samples, and where these
        are gone, in the rollups (to the period: a period starting before `first` counts)."""
        found: set[int] = set()
        remaining = set(ids)
        end = last
        for res in RESOLUTIONS:
            source = table if res == BUCKET else _ROLLUP_TABLE[table]
            where = "" if res == BUCKET else f" WHERE res = {res}"
            (oldest,) = conn.execute(f"SELECT min(bucket) FROM {source}{where}").fetchone()
            # Buckets from the first one held, in chunks growing fourfold: most entities that
            # report at all have a sample in the first few.
            at, upto_held = _held(conn, source, res, first // res * res, end)
            chunk = 1
            while remaining and at <= upto_held:
                upto = min(upto_held, at + (chunk - 1) * res)
                hits = _probe(conn, source, res, at, upto, remaining)
                found.update(hits)
                remaining.difference_update(hits)
                at, chunk = upto + res, chunk * 4
            if not remaining or (oldest is not None and oldest <= first):
                break
            if oldest is not None:  # coarser: only where this resolution holds nothing
                end = min(end, oldest - 1)
        return found

    def latest(self, entities, names):
        conn = self._reader()
        unsummed = _Unsummed(conn, sum(entity.kind in _GROUP_KIND for entity in entities))
        now = bucket_of(self._clock())
        buckets = [self._latest_bucket(conn, entity, now, unsummed) for entity in entities]
        summed: dict[int, list | None] = {}  # by position: a group's sums taken here
        wanted: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, (entity, bucket) in enumerate(zip(entities, buckets, strict=True)):
            if bucket is None:
                continue
            if entity.kind in _GROUP_KIND and unsummed.has(bucket):
                sums = unsummed.sums(conn, entity, bucket)
                summed[i] = None if sums is None else derive(entity.kind, sums)
            else:
                wanted[_SAMPLE_TABLE[entity.kind], bucket].append(entity.id)
        blobs = {}
        for (table, bucket), ids in wanted.items():
            blobs.update(((table, eid), blob) for eid, blob in _lookup(conn, table, bucket, ids))
        found: list = [
            self._values(entity.kind, blobs[key])
            if (key := (_SAMPLE_TABLE[entity.kind], entity.id)) in blobs
            else summed.get(i)
            for i, entity in enumerate(entities)
        ]
        expired = [i for i, bucket in enumerate(buckets) if bucket is not None and found[i] is None]
        if expired:
            rolled = self._latest_rolled_up(conn, [(entities[i], buckets[i]) for i in expired])
            for i, values in zip(expired, rolled, strict=True):
                found[i] = values
        pickers = {kind: _picker(kind, names) for kind in {entity.kind for entity in entities}}
        nothing = as_latest(names, [None] * len(names))
        answers = []
        for entity, bucket, values in zip(entities, buckets, found, strict=True):
            if values is None:
                answers.append({"timestamp": None, "metrics": dict(nothing)})
                continue
            values = pickers[entity.kind](values)
            answers.append({"timestamp": bucket, "metrics": as_latest(names, values)})
        return answers

    def _latest_bucket(self, conn, entity: Entity, now: int, unsummed) -> int | None:
        """The bucket an entity's latest values come from: its newest up to the bucket of
        `now` (a node whose clock runs ahead writes later ones), but for the cluster its
        newest complete one (`complete_bucket`)."""
        last = entity.last_bucket
        if last is not None and last > now:
            last = self._newest_until(conn, entity, now, unsummed)
        if entity.kind is not EntityKind.CLUSTER or last is None:
            return last
        rows = conn.execute(
            "SELECT bucket, id FROM node_sample WHERE bucket >= ? AND bucket <= ?",
            (last - 60, last),
        )
        return complete_bucket(last, rows)

    @staticmethod
    def _newest_until(conn, entity: Entity, last: int, unsummed) -> int | None:
        """An entity's newest bucket up to `last`; None when it has none."""
        table = _SAMPLE_TABLE[entity.kind]
        query = f"SELECT max(bucket) FROM {table} WHERE id = ? AND bucket <= ?"
        (found,) = conn.execute(query, (entity.id, last)).fetchone()
        if entity.kind in _GROUP_KIND:  # its newest buckets may have no sums taken yet
            later = unsummed.buckets(conn, (found or 0) + BUCKET, last)
            for bucket in sorted(later, reverse=True):
                if unsummed.sums(conn, entity, bucket) is not None:
                    return bucket
        return found

    def _latest_rolled_up(self, conn, expired: list[tuple[Entity, int]]) -> list:
        """The last values of entities whose newest bucket's raw samples have expired, from
        the finest rollup that still holds its period; None where none does."""
        found: dict[tuple[str, int], list] = {}
        last = (STATS.index("last"),)
        for res in RESOLUTIONS[1:]:
            wanted: dict[tuple[str, int], dict[int, EntityKind]] = defaultdict(dict)
            for entity, bucket in expired:
                table = _ROLLUP_TABLE[_SAMPLE_TABLE[entity.kind]]
                if (table, entity.id) not in found:
                    wanted[table, bucket // res * res][entity.id] = entity.kind
            for (table, period), kinds in wanted.items():
                for eid, blob in _lookup(conn, table, period, list(kinds), res):
                    values = unpack_figures(blob, len(columns(kinds[eid])), last)[0]
                    found[table, eid] = values
        return [
            found.get((_ROLLUP_TABLE[_SAMPLE_TABLE[entity.kind]], entity.id))
            for entity, _ in expired
        ]

    def resolution(self, span: Span) -> int:
        """The resolution a span is answered from (raw samples or a rollup)."""
        # The coarsest resolution that still covers the span and divides its step, else the
        # finest that covers it: rollups answer long spans, raw samples short ones.
        first = span.first_bucket()
        now = self._clock()
        covering = [r for r in RESOLUTIONS if first >= now - self.retention[r]]
        covering = covering or [RESOLUTIONS[-1]]
        fitting = [r for r in covering if span.step % r == 0]
        return max(fitting) if fitting else min(covering)

    def series(self, entities, names, span):
        conn = self._reader()
        first, last = span.first_bucket(), span.last_bucket()
        res = self.resolution(span)
        done = None
        if res != BUCKET:
            query = "SELECT done FROM rollup_state WHERE res = ?"
            done = (conn.execute(query, (res,)).fetchone() or (first // res * res,))[0]
        answers = []
        unsummed = _Unsummed(conn, sum(entity.kind in _GROUP_KIND for entity in entities))
        for entity in entities:
            pick = _picker(entity.kind, names)
            table = _SAMPLE_TABLE[entity.kind]
            if done is None:
                rows = self._raw(conn, entity, first, last, unsummed)
                answers.append(fold(((b, pick(values)) for b, values in rows), names, span))
                continue
            width = len(columns(entity.kind))
            rollups = list(
                self._rows(
                    conn,
                    _ROLLUP_TABLE[table],
                    res,
                    first // res * res,
                    min(last, done - res),
                    entity.id,
                )
            )
            raw = [
                (bucket, pick(values))
                for bucket, values in self._raw(conn, entity, max(first, done), last, unsummed)
            ]
            # Each figure folds as the raw values would: avg as the sum of sums over the sum
            # of counts; max of maxima, min of minima, last of lasts, sum of sums.
            figures = _FIGURES_OF[span.agg]
            decoded = [(b, unpack_figures(blob, width, figures)) for b, blob in rollups]
            rows = [(b, pick(found[0])) for b, found in decoded]
            if span.agg != "avg":
                answers.append(fold(rows + raw, names, span))
                continue
            sums = fold(rows + raw, names, span, "sum")
            counts = [(b, pick(found[1])) for b, found in decoded]
            counts += [(b, [None if v is None else 1 for v in values]) for b, values in raw]
            counted = fold(counts, names, span, "sum")
            for name in names:
                sums[name] = [
                    None if total is None else total / count
                    for total, count in zip(sums[name], counted[name], strict=True)
                ]
            answers.append(sums)
        return answers

    def _raw(self, conn, entity: Entity, first: int, last: int, unsummed) -> list[tuple]:
        """(bucket, values) of an entity's buckets in [first, last]; a group's unsummed ones
        summed from its pods' (the cluster's: its nodes') rows."""
        rows = self._rows(conn, _SAMPLE_TABLE[entity.kind], BUCKET, first, last, entity.id)
        found = [(bucket, self._values(entity.kind, blob)) for bucket, blob in rows]
        if entity.kind not in _GROUP_KIND:
            return found
        found = [row for row in found if not unsummed.has(row[0])]
        for bucket in unsummed.buckets(conn, first, last):
            values = unsummed.sums(conn, entity, bucket)
            if values is not None:
                found.append((bucket, derive(entity.kind, values)))
        return found

    @staticmethod
    def _rows(conn, table: str, res: int, first: int, last: int, eid: int):
        first, last = _held(conn, table, res, first, last)
        if first > last:
            return []
        res_match = "" if res == BUCKET else f" AND s.res = {res}"
        return conn.execute(
            f"WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x + {res} FROM b WHERE x < ?)"
            f" SELECT s.bucket, s.v FROM b JOIN {table} s ON s.bucket = b.x AND s.id = ?"
            + res_match,
            (first, last - res + 1, eid),
        )

    @staticmethod
    def _values(kind: EntityKind, blob: bytes) -> list:
        return derive(kind, unpack(blob, len(STORED_COLUMNS[kind])))

    def checkpoint(self) -> None:
        self._take_sums()
        if self._checkpointer is None:
            self._checkpointer = self._connect()
        # Passive: copies what no reader needs into the file, first while writers go on,
        # then the little they added meanwhile while they wait, so that the WAL is wholly
        # copied and the next writer starts it afresh rather than letting it grow.
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with self._writing():
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def ping(self) -> None:
        self._reader().execute("SELECT count(*) FROM node").fetchone()

    def stats(self) -> dict[str, float]:
        conn = self._reader()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        return {"bytes": float(page_size * (pages - free))}

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
            self._lock_file.close()
            self._queue_file.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None


def _bucket_sums(conn, bucket: int, cluster_id: int, groups_of) -> dict[int, list]:
    """Every group's sums in one bucket from its node and pod rows, each pod's added to the
    groups `groups_of(namespace, deployment)` names, in the order of the pods' ids."""
    partials = _Partials()
    for (blob,) in conn.execute(_NODE_ROWS, (bucket,)):
        partials.add_node(cluster_id, unpack(blob, len(NODE_COLUMNS)))
    rows = conn.execute(
        "SELECT s.v, p.namespace, p.deployment FROM pod_sample s JOIN pod p ON p.id = s.id"
        " WHERE s.bucket = ? ORDER BY s.id",
        (bucket,),
    )
    for blob, namespace, deployment in rows:
        partials.add_pod(groups_of(namespace, deployment), unpack(blob, len(POD_COLUMNS)))
    return partials.sums()


class _Unsummed:
    """The buckets whose groups' sums are not taken yet (or stale), and the sums one answer
    takes of them: of just the group asked for, or, for many groups, of all at once."""

    def __init__(self, conn, groups: int) -> None:
        row = conn.execute("SELECT done FROM rollup_state WHERE res = ?", (BUCKET,)).fetchone()
        query = "SELECT bucket FROM rollup_dirty WHERE res = ?"
        self.done = row[0] if row else 0
        self.stale = {bucket for (bucket,) in conn.execute(query, (BUCKET,))}
        self._all_at_once = groups > _FEW_GROUPS
        self._taken: dict[int, dict[int, list]] = {}

    def has(self, bucket: int) -> bool:
        """Whether a bucket's sums are to be taken here."""
        return bucket >= self.done or bucket in self.stale

    def buckets(self, conn, first: int, last: int) -> set[int]:
        """The buckets in [first, last] with samples but without their sums taken."""
        query = "SELECT DISTINCT bucket FROM node_sample WHERE bucket >= ? AND bucket <= ?"
        found = {bucket for (bucket,) in conn.execute(query, (max(first, self.done), last))}
        return found | {bucket for bucket in self.stale if first <= bucket <= last}

    def sums(self, conn, entity: Entity, bucket: int) -> list | None:
        """A group's sums in one bucket; None when it has nothing there."""
        if not self._all_at_once:
            return _group_sums(conn, entity, bucket)
        if bucket not in self._taken:
            self._taken[bucket] = self._every_group(conn, bucket)
        return self._taken[bucket].get(entity.id)

    @staticmethod
    def _every_group(conn, bucket: int) -> dict[int, list]:
        ids = {(kind, ns, name): gid for gid, kind, ns, name in conn.execute(_GROUPS)}

        def groups_of(ns, name):
            found = (ids.get((_NAMESPACE, ns, "")), ids.get((_DEPLOYMENT, ns, name)))
            return tuple(gid for gid in found if gid is not None)

        cluster_id = ids.get((_GROUP_KIND[EntityKind.CLUSTER], "", ""), 0)
        return _bucket_sums(conn, bucket, cluster_id, groups_of)


def _group_sums(conn, entity: Entity, bucket: int) -> list | None:
    """A group's sums in one bucket from its pods' (the cluster's: its nodes') rows, in the
    order `_bucket_sums` adds them; None when it has none."""
    if entity.kind is EntityKind.CLUSTER:
        rows = conn.execute(_NODE_ROWS, (bucket,))
        vectors = [(*_NODE_SUMMED(unpack(blob, len(NODE_COLUMNS))), 1) for (blob,) in rows]
    else:
        sql = (
            "SELECT s.v FROM pod p JOIN pod_sample s ON s.bucket = ? AND s.id = p.id"
            " WHERE p.namespace = ?"
        )
        params = [bucket, entity.identity["namespace"]]
        if entity.kind is EntityKind.DEPLOYMENT:
            sql += " AND p.deployment = ?"
            params.append(entity.identity["name"])
        rows = conn.execute(sql + " ORDER BY s.id", params)
        vectors = [(*_POD_SUMMED(unpack(blob, len(POD_COLUMNS))), 1) for (blob,) in rows]
    if not vectors:
        return None
    return sum_columns(vectors)


def _held(conn, table: str, res: int, first: int, last: int) -> tuple[int, int]:
    """[first, last] narrowed to the buckets a table holds at a resolution, so that a query
    stepping through them does not step through years of nothing."""
    where = "" if res == BUCKET else f" WHERE res = {res}"
    # Two subqueries: SQLite answers a lone min() or max() from the index, both at once by a scan.
    oldest, newest = conn.execute(
        f"SELECT (SELECT min(bucket) FROM {table}{where}), (SELECT max(bucket) FROM {table}{where})"
    ).fetchone()
    if oldest is None:
        return 1, 0
    return max(first, oldest), min(last, newest)


def _lookup(conn, table: str, bucket: int, ids: list[int], res: int = BUCKET):
    """The (id, v) rows of these ids in one bucket of a sample table or a rollup period."""
    where = "" if res == BUCKET else f"res = {res} AND "
    return conn.execute(
        f"SELECT id, v FROM {table} WHERE {where}bucket = ? AND id IN"
        " (SELECT value FROM json_each(?))",
        (bucket, json.dumps(ids)),
    )


def _probe(conn, table: str, res: int, first: int, last: int, ids) -> set[int]:
    """Those of `ids` with a row in a bucket or period starting in [first, last]."""
    res_match = "" if res == BUCKET else f" AND s.res = {res}"
    rows = conn.execute(
        f"WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x + {res} FROM b WHERE x < ?)"
        f" SELECT DISTINCT s.id FROM b JOIN {table} s ON s.bucket = b.x{res_match}"
        " AND s.id IN (SELECT value FROM json_each(?))",
        (first, last - res + 1, json.dumps(list(ids))),
    )
    return {eid for (eid,) in rows}


def _kind_of(table: str, eid: int, clusters: set[int]) -> EntityKind:
    if table == "node_sample":
        return EntityKind.NODE
    if table == "pod_sample":
        return EntityKind.POD
    if table == "ctr_sample":
        return EntityKind.CONTAINER
    return EntityKind.CLUSTER if eid in clusters else EntityKind.NAMESPACE


def _picker(kind: EntityKind, names: Sequence[str]):
    known = columns(kind)
    if tuple(names) == known:
        return lambda values: values
    getter = operator.itemgetter(*(known.index(name) for name in names))
    if len(names) == 1:
        return lambda values: (getter(values),)
    return getter


def _node_entity(row) -> Entity:
    eid, last, name, cpu_count, memory, kernel, cgroup, boot = row
    info = {
        "cpu_count": cpu_count,
        "memory_total_bytes": memory,
        "kernel": kernel,
        "cgroup_version": cgroup,
        "boot_time": boot,
    }
    return Entity(EntityKind.NODE, eid, {"node": name}, last, info)


def _pod_entity(row) -> Entity:
    eid, last, namespace, name, uid, node, deployment, workload_kind, workload, qos = row
    identity = {
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "node": node,
        "deployment": deployment,
        "workload_kind": workload_kind,
        "workload": workload,
    }
    return Entity(EntityKind.POD, eid, identity, last, {"qos": qos})


def _container_entity(row) -> Entity:
    eid, last, *identity, _ = row
    fields = IDENTITY[EntityKind.CONTAINER]
    return Entity(EntityKind.CONTAINER, eid, dict(zip(fields, identity, strict=True)), last)


def _group_entity(kind: EntityKind):
    def make(row) -> Entity:
        eid, last, namespace, name = row
        if kind is EntityKind.NAMESPACE:
            identity = {"namespace": namespace}
        elif kind is EntityKind.DEPLOYMENT:
            identity = {"namespace": namespace, "name": name}
        else:
            identity = {}
        return Entity(kind, eid, identity, last)

    return make
