"""A consistent copy of the store's file while the server writes to it (`cloudmon backup`).

SQLite's online backup copies every page of the database as one read transaction sees it:
in WAL mode writers go on meanwhile, and the copy holds exactly the commits made before the
copy began. The copy is written beside its destination, checked and synced, then renamed into
place, so a destination file is always a whole backup or the one before.
"""

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Backup:
    """What a backup wrote."""

    path: Path
    bytes: int
    seconds: float


def backup(source: str | os.PathLike, destination: str | os.PathLike) -> Backup:
    """Copy the store at `source` to `destination`; raises sqlite3.Error or OSError."""
    started = time.monotonic()
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no store there")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30.0)
    try:
        copy = sqlite3.connect(partial)
        try:
            reader.backup(copy)  # all pages in one step: one read transaction, one snapshot
            (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"{partial}: the copy fails its check: {verdict}")
        finally:
            copy.close()
    finally:
        reader.close()
    with open(partial, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(partial, destination)
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return Backup(destination, destination.stat().st_size, time.monotonic() - started)
