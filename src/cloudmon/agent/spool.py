"""The agent's spool: a bounded FIFO of encoded payloads waiting to be sent.

Delivery from a DiskSpool is at least once: a file is removed right after the server
acknowledged its batch, so a crash between the acknowledgement and the removal sends that
batch again after the restart. The server keeps one value per metric per 10 s bucket and
replaces on repeat, so a repeated payload changes nothing.
"""

import collections
import contextlib
import fcntl
import itertools
import json
import logging
import math
import os
import re
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

_ITEM_NAME = re.compile(r"^(\d{20})\.json$")
_TEMP_NAME = re.compile(r"^(\d{20})\.tmp$")


class Spool(Protocol):
    """What the sender needs of a spool."""

    dropped: int

    def append(self, item: bytes) -> None: ...
    def oldest(self, n: int, max_bytes: int, added: int = 0) -> list[bytes]: ...
    def remove_oldest(self, n: int) -> None: ...
    def __len__(self) -> int: ...


def default_bound(interval: float, seconds: float = 3600.0) -> int:
    """How many payloads taken every `interval` seconds cover `seconds` (one hour by default)."""
    return max(1, math.ceil(seconds / interval))


def _take(sizes: Iterable[int], n: int, max_bytes: int) -> int:
    """How many of the leading sizes fit in an array of at most max_bytes (at least one)."""
    taken = 0
    total = 1
    for size in itertools.islice(sizes, n):
        total += size + 1
        if taken and total > max_bytes:
            break
        taken += 1
    return taken


class _Bounded:
    """The bound and the dropping it forces, logged once per run of drops."""

    def __init__(self, bound: int, name: str) -> None:
        if bound < 1:
            raise ValueError(f"spool bound must be at least 1, not {bound}")
        self.bound = bound
        self.dropped = 0
        self._name = name
        self._dropping = 0

    def _count_dropped(self, n: int) -> None:
        if not self._dropping:
            log.warning(
                "%s is full (%d payloads): dropping the oldest until the server takes them",
                self._name,
                self.bound,
            )
        self._dropping += n
        self.dropped += n

    def _relieved(self) -> None:
        if self._dropping:
            log.warning("%s dropped %d oldest payloads while full", self._name, self._dropping)
            self._dropping = 0


class MemorySpool(_Bounded):
    """A spool in memory: lost when the agent stops."""

    def __init__(self, bound: int) -> None:
        super().__init__(bound, "the spool")
        self._items: collections.deque[bytes] = collections.deque()

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: bytes) -> None:
        """Add an item at the end, dropping the oldest when the bound is reached."""
        excess = len(self._items) + 1 - self.bound
        for _ in range(max(excess, 0)):
            self._items.popleft()
        if excess > 0:
            self._count_dropped(excess)
        self._items.append(item)

    def oldest(self, n: int, max_bytes: int, added: int = 0) -> list[bytes]:
        """Up to n of the oldest items whose JSON array, with `added` bytes more in each item,
        fits max_bytes (always one, if any)."""
        taken = _take((len(item) + added for item in self._items), n, max_bytes)
        return list(itertools.islice(self._items, taken))

    def remove_oldest(self, n: int) -> None:
        """Forget the n oldest items (they were delivered or rejected)."""
        for _ in range(min(n, len(self._items))):
            self._items.popleft()
        self._relieved()

    def close(self) -> None:
        """Nothing to release; here so both spools can be used alike."""


class DiskSpool(_Bounded):
    """A spool in a directory, one file per payload, that survives a restart of the agent.

    Files are named by a sequence number that only grows, written to a temporary file,
    fsynced and renamed, so a crash leaves either the whole payload or none of it. A
    directory is used by one agent at a time (an flock on its .lock file).
    """

    def __init__(self, directory: str, bound: int) -> None:
        super().__init__(bound, f"the spool in {directory}")
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._lock_fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"spool directory {directory} is in use by another agent") from None
        self._index: collections.deque[tuple[int, int]] = collections.deque()
        self._lost = 0
        self._recover()
        self._next = self._index[-1][0] + 1 if self._index else 0
        if len(self._index) > bound:
            self._drop_oldest(len(self._index) - bound)
        if self._index:
            log.info("%s holds %d unsent payloads", self._name, len(self._index))

    def _recover(self) -> None:
        found = []
        for entry in os.scandir(self.directory):
            if match := _ITEM_NAME.match(entry.name):
                try:
                    found.append((int(match[1]), entry.stat().st_size))
                except FileNotFoundError:
                    continue
            elif _TEMP_NAME.match(entry.name):
                # A payload the previous agent was writing when it stopped: never completed.
                self._unlink(entry.name)
        self._index.extend(sorted(found))

    def _path(self, seq: int) -> str:
        return os.path.join(self.directory, f"{seq:020d}.json")

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.directory, name))

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def __len__(self) -> int:
        return len(self._index)

    def _drop_oldest(self, n: int) -> None:
        for _ in range(n):
            seq, _size = self._index.popleft()
            self._unlink(f"{seq:020d}.json")
        self._count_dropped(n)

    def append(self, item: bytes) -> None:
        """Write an item durably at the end, dropping the oldest when the bound is reached."""
        seq = self._next
        temp = os.path.join(self.directory, f"{seq:020d}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(item)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, self._path(seq))
            self._fsync_directory()
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if not self._lost:
                log.warning("cannot write payloads to %s: %s; they are lost", self._name, error)
            self._lost += 1
            self.dropped += 1
            return
        if self._lost:
            log.warning("%s is writable again; %d payloads were lost", self._name, self._lost)
            self._lost = 0
        self._next = seq + 1
        excess = len(self._index) + 1 - self.bound
        if excess > 0:
            self._drop_oldest(excess)
        self._index.append((seq, len(item)))

    def oldest(self, n: int, max_bytes: int, added: int = 0) -> list[bytes]:
        """Up to n of the oldest items whose JSON array fits max_bytes (always one, if any)."""
        # A file that is not one whole JSON object (a disk fault, or a file system that lost
        # data despite the fsync) is removed with a log line and never returned.
        while True:
            taken = _take((size + added for _seq, size in self._index), n, max_bytes)
            items = []
            for seq, _size in itertools.islice(self._index, taken):
                item = self._read(seq)
                if item is None:
                    self._index.remove((seq, _size))
                    self._unlink(f"{seq:020d}.json")
                    break
                items.append(item)
            else:
                return items

    def _read(self, seq: int) -> bytes | None:
        path = self._path(seq)
        try:
            with open(path, "rb") as file:
                item = file.read()
        except OSError as error:
            log.warning("skipping spooled payload %s: %s", path, error)
            return None
        try:
            whole = isinstance(json.loads(item), dict)
        except ValueError:
            whole = False
        if not whole:
            log.warning("skipping spooled payload %s: not one whole JSON object", path)
            return None
        return item

    def remove_oldest(self, n: int) -> None:
        """Delete the n oldest items (they were delivered or rejected)."""
        for _ in range(min(n, len(self._index))):
            seq, _size = self._index.popleft()
            self._unlink(f"{seq:020d}.json")
        self._relieved()

    def close(self) -> None:
        """Release the directory for another agent."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> "DiskSpool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
