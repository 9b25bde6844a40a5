"""Reading small kernel files: missing is None, vanished is quiet, denied is reported once."""

import logging
import os

log = logging.getLogger(__name__)

_reported: set[tuple[str, str]] = set()
_CHUNK = 65536


def report_once(key: str, message: str, *args, logger: logging.Logger = log) -> None:
    """Log a warning the first time `key` is reported, never again for the same text."""
    if (key, message) in _reported:
        return
    _reported.add((key, message))
    logger.warning(message, *args)


def read_bytes(path: str) -> bytes | None:
    """The file's content; None when it is missing or unreadable (pods vanish between reads)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
        return None
    except PermissionError:
        report_once(path, "permission denied reading %s", path)
        return None
    except OSError as error:
        report_once(path, "cannot open %s: %s", path, error)
        return None
    try:
        # procfs and cgroupfs files are seq_files, which fill the buffer until their end:
        # a short read is the whole file, and saves the second read that finds EOF.
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        chunks = [data]
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    except (ProcessLookupError, FileNotFoundError, OSError) as error:
        # ENODEV and ESRCH appear when a cgroup or process goes away mid-read.
        if not isinstance(error, ProcessLookupError | FileNotFoundError):
            report_once(path, "cannot read %s: %s", path, error)
        return None
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    """The file's content as text (ASCII in practice; undecodable bytes are replaced)."""
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def read_int(path: str) -> int | None:
    """A file holding one integer; None when missing or not an integer."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        report_once(path, "%s does not hold an integer: %r", path, text[:80])
        return None
