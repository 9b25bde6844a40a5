"""Time-series storage behind one interface; backends register by URL scheme."""

from cloudmon.storage import prometheus, sqlite  # noqa: F401  (register their URL schemes)
from cloudmon.storage.base import Span, Storage, open_storage
from cloudmon.storage.model import EntityKind

__all__ = ["EntityKind", "Span", "Storage", "open_storage"]
