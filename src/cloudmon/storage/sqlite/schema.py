"""The file's schema: its tables (`MIGRATIONS`, one step per version), which table holds each
kind's rows and each group's kind as stored, and the migration of an older file.

A file's version is SQLite's user_version: the number of `MIGRATIONS` applied to it.
`migrate` brings a file up to this version when a store opens it (in one transaction, under
the writer lock of `connections`) and refuses a file newer than this cloudmon. The rows
these tables hold are packed by `codec`; node, pod, ctr and grp hold the entities (`writer`
adds them, `reader` lists them); the *_sample tables the 10 s buckets, the *_rollup tables
the 1 min and 1 h periods (`upkeep`); rollup_state how far the rollups are done,
rollup_stale which entities' periods late samples changed (rollup_late: how many late
writes each such period took), rollup_dirty which whole periods are to be rolled up again,
size_deleted before which bucket `size` deleted each resolution's rows; chunk the rows of
the spans `sealed` took out of these head tables, compressed by `chunks`; upkeep_figure
what the upkeep measured (`size`: the bytes of each tier, the rows deleted to keep the file
within its size); usage_day each pod's and container's usage sketch of each day (`usage`),
usage_backfill the hours before it the upkeep still has to sketch;
pod_moves how many times a pod changed its namespace or deployment (`writer`). A step of
`MIGRATIONS` is SQL, or a function of the connection. Sample tables are WITHOUT ROWID and
keyed (bucket, id), so a bucket's rows are written at the end of the B-tree and the pages
stay full.
"""

from collections.abc import Callable
from functools import partial

from cloudmon.storage.model import GROUP_SUM, EntityKind
from cloudmon.storage.sqlite.codec import pack_sum, unpack
from cloudmon.storage.sqlite.sums import bucket_sums

# grp.kind of each kind of group.
GROUP_KIND = {EntityKind.CLUSTER: 0, EntityKind.NAMESPACE: 1, EntityKind.DEPLOYMENT: 2}


def _exact_sums(conn) -> None:
    """Groups' rows were float sums, taken once a bucket closed: those taken are converted
    (each sum to its units; a column's count is the members' where it has a value), those of
    buckets not taken yet, or that a late sample changed, are taken from their members'
    rows. Quick enough for a server's start: one pass over the group rows."""
    (done,) = conn.execute("SELECT max(done) FROM rollup_state WHERE res = 10").fetchone()
    stale = conn.execute("SELECT bucket FROM rollup_dirty WHERE res = 10").fetchall()
    clusters = {gid for (gid,) in conn.execute("SELECT id FROM grp WHERE kind = 0")}
    converted = []
    for bucket, gid, blob in conn.execute("SELECT bucket, id, v FROM grp_sample"):
        layout = GROUP_SUM[EntityKind.CLUSTER if gid in clusters else EntityKind.NAMESPACE]
        *values, members = unpack(blob, len(layout.summed) + 1)
        units = layout.member(values)
        counts = [0 if value is None else int(members) for value in values]
        vector = [0 if unit is None else unit for unit in units] + counts + [int(members)]
        converted.append((pack_sum(vector), bucket, gid))
    conn.executemany("UPDATE grp_sample SET v = ? WHERE bucket = ? AND id = ?", converted)
    ids = {(kind, ns, name): gid for gid, kind, ns, name in conn.execute(_GROUPS)}

    def group_id(kind: EntityKind, namespace: str, name: str, bucket: int) -> int:
        key = (GROUP_KIND[kind], namespace, name)
        if key not in ids:
            (ids[key],) = conn.execute(
                "INSERT INTO grp (kind, namespace, name, first_bucket, last_bucket)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (*key, bucket, bucket),
            ).fetchone()
        return ids[key]

    def rows_of(table: str, bucket: int):
        return conn.execute(f"SELECT id, v FROM {table} WHERE bucket = ?", (bucket,))

    query = "SELECT DISTINCT bucket FROM node_sample WHERE bucket >= ?"
    for bucket in {b for (b,) in conn.execute(query, (done or 0,))} | {b for (b,) in stale}:
        conn.execute("DELETE FROM grp_sample WHERE bucket = ?", (bucket,))
        conn.executemany(
            "INSERT INTO grp_sample (bucket, id, v) VALUES (?, ?, ?)",
            [
                (bucket, gid, pack_sum(vector))
                for gid, vector in bucket_sums(
                    conn, bucket, partial(group_id, bucket=bucket), partial(rows_of, bucket=bucket)
                ).items()
            ],
        )
    for table in ("rollup_state", "rollup_dirty", "rollup_doing"):
        conn.execute(f"DELETE FROM {table} WHERE res = 10")
    conn.execute("CREATE TABLE pod_moves (count INTEGER NOT NULL)")
    conn.execute("INSERT INTO pod_moves VALUES (0)")


_GROUPS = "SELECT id, kind, namespace, name FROM grp"


MIGRATIONS: tuple[str | Callable, ...] = (
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
    # What the upkeep found out about the file, for /metrics in every process.
    """
    CREATE TABLE upkeep_figure (name TEXT PRIMARY KEY, value REAL NOT NULL);
    """,
    _exact_sums,
    # The entities whose rollups a late sample changed, so that only theirs are rolled up
    # again: a node (with its pods and containers), a pod that left a node's report, a group.
    """
    CREATE TABLE rollup_stale (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, tbl TEXT NOT NULL, id INTEGER NOT NULL,
        PRIMARY KEY (res, bucket, tbl, id)) WITHOUT ROWID;
    CREATE INDEX pod_by_node ON pod (node, last_bucket);
    """,
    # Sealed spans (`sealed`): an entity's rows of a span of a head table at a resolution,
    # compressed (`chunks`); first and last its rows' first and last bucket.
    """
    CREATE TABLE chunk (
        tbl TEXT NOT NULL, res INTEGER NOT NULL, id INTEGER NOT NULL, start INTEGER NOT NULL,
        first INTEGER NOT NULL, last INTEGER NOT NULL, v BLOB NOT NULL,
        PRIMARY KEY (tbl, res, id, start));
    CREATE INDEX chunk_by_start ON chunk (tbl, res, start);
    """,
    # How many late writes each period rollup_stale marks has taken, so that the upkeep rolls
    # it up again once they stop rather than after each; per resolution, the bucket before
    # which `size` has deleted rows, so that no period is rolled up again from part of them.
    """
    CREATE TABLE rollup_late (
        res INTEGER NOT NULL, bucket INTEGER NOT NULL, writes INTEGER NOT NULL,
        PRIMARY KEY (res, bucket)) WITHOUT ROWID;
    INSERT INTO rollup_late SELECT DISTINCT res, bucket, 0 FROM rollup_stale;
    CREATE TABLE size_deleted (res INTEGER PRIMARY KEY, before INTEGER NOT NULL);
    """,
    # A chunk may be kept against another's rows (`chunks`: a container's against its pod's),
    # which a cloudmon of the versions before reads wrong: no table changes, the version does,
    # so that they refuse the file.
    """
    -- chunks kept against a reference
    """,
    # Each pod's and container's usage sketch of each day (`usage`), which right-sizing reads;
    # a day's hours a bit each.
    """
    CREATE TABLE usage_day (
        tbl TEXT NOT NULL, day INTEGER NOT NULL, id INTEGER NOT NULL, hours INTEGER NOT NULL,
        v BLOB NOT NULL, PRIMARY KEY (tbl, day, id)) WITHOUT ROWID;
    """,
    # The hours rolled up before the usage tier have no sketches: the upkeep adds them from
    # their 1 min rollups, an hour a round, from the oldest it holds (`next` no earlier) up to
    # the first hour it rolls up next (`upkeep.Upkeep.backfill_usage`).
    """
    CREATE TABLE usage_backfill (next INTEGER NOT NULL, until INTEGER NOT NULL);
    INSERT INTO usage_backfill SELECT 0, done FROM rollup_state WHERE res = 3600;
    """,
)

# The table of each kind's 10 s rows, and of its rollups.
SAMPLE_TABLE = {
    EntityKind.NODE: "node_sample",
    EntityKind.POD: "pod_sample",
    EntityKind.NAMESPACE: "grp_sample",
    EntityKind.DEPLOYMENT: "grp_sample",
    EntityKind.CLUSTER: "grp_sample",
    EntityKind.CONTAINER: "ctr_sample",
}
ROLLUP_TABLE = {
    "node_sample": "node_rollup",
    "pod_sample": "pod_rollup",
    "grp_sample": "grp_rollup",
    "ctr_sample": "ctr_rollup",
}


def migrate(db) -> None:
    """Bring the file of `db` (a `connections.Connections`) up to this schema version."""
    with db.writing() as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{db.path}: schema version {version} is newer than this cloudmon "
                    f"({len(MIGRATIONS)})"
                )
            for number in range(version, len(MIGRATIONS)):
                step = MIGRATIONS[number]
                if callable(step):
                    step(conn)
                    statements = []
                else:
                    statements = step.split(";")
                for statement in statements:
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def version(conn) -> int:
    """The schema version of the file."""
    return conn.execute("PRAGMA user_version").fetchone()[0]
