"""The SQLite file's connections and locks: every other part of the store reaches the file
through here.

A `Connections` opens connections in WAL mode with the store's pragmas, gives each thread a
read-only connection of its own (`reader`) and keeps the one writing connection behind the
writer lock (`writing`: a thread lock for this process, a file lock for the others).
`transaction` runs one unit of work under that lock (the upkeep's steps); `commit` is the
ingest path's group commit: a write takes a queue slot (at most `MAX_WAITING` in all
processes, else OSError(EAGAIN)), waits for the writer, and whoever gets it stores every
write waiting meanwhile in one transaction, with the function the writer part
(`writer.Writer.store`) provides. A full disk is raised as OSError(ENOSPC) either way.
"""

import contextlib
import errno
import fcntl
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_WAITING = 32  # writes waiting or writing, in all processes, before more are refused
# Bytes the WAL is cut back to when a writer starts it afresh after a checkpoint: without a
# limit it keeps the size of its largest burst (a backup or a long read holding checkpoints
# back) for good, and that size counts against --retention-size.
WAL_LIMIT = 1 << 20
# A row of a WITHOUT ROWID table longer than about a quarter of a page (1,002 bytes of 4 KiB)
# keeps only its first ~500 bytes in the page and the rest in an overflow page of its own,
# mostly empty: a pod's rollup row (37 columns of 5 figures: 1.5 KB) took 4 KiB more than it
# needs. With 8 KiB pages rows up to 2,030 bytes stay whole.
PAGE_SIZE = 8192
# The writer copies the WAL back once it holds this many bytes (SQLite's default is 1,000
# pages: 4 MiB of 4 KiB pages, twice that of 8 KiB), as the WAL counts against the size bound.
AUTOCHECKPOINT_BYTES = 4 << 20


@dataclass(frozen=True)
class Footprint:
    """What the store's files take: the database's pages, the free ones among them, and
    the WAL's bytes."""

    page_size: int
    pages: int
    free: int
    file: int
    wal: int

    @property
    def used(self) -> int:
        """Bytes of pages in use and of the WAL: what the file grows to, at most, as free
        pages are used first."""
        return (self.pages - self.free) * self.page_size + self.wal

    @property
    def on_disk(self) -> int:
        """Bytes of the database file and its WAL (the file as its last commit left it,
        where a checkpoint has not brought it there yet)."""
        return max(self.file, self.pages * self.page_size) + self.wal


class _Job:
    """One caller's payloads waiting to be written, and the outcome once they are."""

    def __init__(self, payloads: Sequence) -> None:
        self.payloads = payloads
        self.finished = False
        self.stored = 0
        self.error: Exception | None = None

    def finish(self, stored: int = 0, error: Exception | None = None) -> None:
        self.stored, self.error, self.finished = stored, error, True


class Connections:
    """The connections to one SQLite file and the locks its writers queue on."""

    def __init__(
        self,
        path: Path,
        cache_mb: int,
        autocheckpoint: bool,
        max_waiting: int,
        forget: Callable[[], None],
    ) -> None:
        """`forget` is called after a rolled back transaction: what the writer remembers of
        the file (its ids) may have been rolled back with it."""
        self.path = path
        self._forget = forget
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
        self.slots = [threading.Lock() for _ in range(max_waiting)]
        self._local = threading.local()
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._writer = self.connect(new_file=new)
        (page_size,) = self._writer.execute("PRAGMA page_size").fetchone()
        pages = AUTOCHECKPOINT_BYTES // page_size if autocheckpoint else 0
        self._writer.execute(f"PRAGMA wal_autocheckpoint={pages}")
        self._checkpointer: sqlite3.Connection | None = None

    def connect(self, new_file: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        if new_file:
            # Fixed when a file is made (or by a VACUUM, which rewrites the whole file), so set
            # before WAL mode writes its first page. A new file can give its free pages back to
            # the file system (`size.SizeBound`); an older one only reuses them. Its pages are
            # of PAGE_SIZE.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # first: auto_vacuum fixes it
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{self._cache_kib}")
        # The process's connections (a thread's each) share one budget: past it, SQLite
        # reuses their cached pages rather than take more memory.
        conn.execute(f"PRAGMA soft_heap_limit={self._cache_kib * 1024}")
        return conn

    @contextlib.contextmanager
    def writing(self):
        """The writing connection, held alone among all processes."""
        with self._write_lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield self._writer
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
            conn.execute("PRAGMA query_only=ON")
        return conn

    def commit(self, items: Sequence, store: Callable[[sqlite3.Connection, list], list]) -> int:
        """Store items with `store(conn, items)` (their counts stored); OSError(EAGAIN) when
        too many writes wait already."""
        # Group commit: the writes that wait while one is committed go together in the next
        # transaction; each caller returns once its own items are committed.
        job = _Job(items)
        with self._queue_slot():
            with self._pending_lock:
                self._pending.append(job)
            with self.writing():
                if not job.finished:
                    with self._pending_lock:
                        batch, self._pending = self._pending, []
                    self._write_batch(batch, store)
        if job.error is not None:
            raise job.error
        return job.stored

    @contextlib.contextmanager
    def _queue_slot(self):
        for number, slot in enumerate(self.slots):
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
        raise OSError(errno.EAGAIN, f"{len(self.slots)} writes are waiting already")

    def _write_batch(self, batch: list[_Job], store) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            counts = store(conn, [payload for job in batch for payload in job.payloads])
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
                    self._write_batch([job], store)
                return
            batch[0].finish(error=error)
            return
        at = 0
        for job in batch:
            job.finish(stored=sum(counts[at : at + len(job.payloads)]))
            at += len(job.payloads)

    def transaction(self, work):
        """work(conn) in one transaction of the writer; its result."""
        with self.writing() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException as error:
                self._rollback(conn)
                raise self._disk_full(error) from None
        return result

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # SQLite may have rolled back already, as it does on SQLITE_FULL.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        self._forget()

    def _disk_full(self, error: BaseException) -> BaseException:
        """SQLITE_FULL as OSError(ENOSPC), which the server answers with 503."""
        if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            return error
        full = OSError(errno.ENOSPC, "the disk is full", str(self.path.parent))
        full.__cause__ = error
        return full

    def checkpoint(self, truncate: bool = False) -> None:
        """Copy the WAL into the database file, so that the next writer starts it afresh;
        with `truncate`, wait for the readers of the WAL to finish and cut it to nothing."""
        if self._checkpointer is None:
            self._checkpointer = self.connect()
        # Passive: copies what no reader needs into the file, first while writers go on,
        # then the little they added meanwhile while they wait, so that the WAL is wholly
        # copied and the next writer starts it afresh rather than letting it grow. A reader
        # still on the WAL keeps it from starting afresh: where its bytes matter (the size
        # bound), TRUNCATE waits for such readers, which a request's reads keep briefly.
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with self.writing():
            mode = "TRUNCATE" if truncate else "PASSIVE"
            self._checkpointer.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()

    def ping(self) -> None:
        """Raise unless the file can be read."""
        self.reader().execute("SELECT count(*) FROM node").fetchone()

    def footprint(self) -> "Footprint":
        """The file's pages and its WAL's bytes, as they are now."""
        conn = self.reader()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        (file, wal) = (_bytes(self.path), _bytes(self.path.with_name(self.path.name + "-wal")))
        return Footprint(page_size, pages, free, file, wal)

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


def _bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class StorePart:
    """A part of one store that works on its file by the clock and the retention."""

    def __init__(self, db: Connections, clock, retention: dict[int, float]) -> None:
        """`db`: the store's `Connections`; `retention`: seconds kept per resolution (the
        store's own dict: a change to it counts at once)."""
        self._db = db
        self._clock = clock
        self._retention = retention
