"""What the node readers share: strict counter fields and reading a file through a parser."""

from collections.abc import Callable
from typing import TypeVar

from cloudmon.agent.files import read_text, report_once

# The kernel prints its counters as unsigned 64-bit decimals.
U64_MAX = 2**64 - 1

T = TypeVar("T")


def counter(field: str) -> int:
    """A kernel counter field: ASCII digits, at most U64_MAX; ValueError otherwise."""
    if not (field.isascii() and field.isdigit()):
        raise ValueError(field)
    value = int(field)
    if value > U64_MAX:
        raise ValueError(field)
    return value


def read_parsed(path: str, parse: Callable[[str], T]) -> T | None:
    """parse(the file); None, reported once, when it is unreadable or parse finds nothing."""
    text = read_text(path)
    if text is None:
        report_once(path, "%s is missing or unreadable: its node metrics are null", path)
        return None
    result = parse(text)
    if not result:
        report_once(path, "%s is not in the expected format: %r", path, text[:80])
        return None
    return result
