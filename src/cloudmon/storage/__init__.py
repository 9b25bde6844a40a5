"""Time-series storage behind one interface; backends register by URL scheme."""

from cloudmon.storage import sqlite  # noqa: F401  (registers sqlite://)
from cloudmon.storage.base import EntityKind, Span, Storage, open_storage

__all__ = ["EntityKind", "Span", "Storage", "open_storage"]
