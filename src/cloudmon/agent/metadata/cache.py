"""The agent's view of a metadata source: listed when pods appear, never failing a cycle."""

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from cloudmon.agent.metadata.base import MetadataSource, PodMeta

log = logging.getLogger(__name__)


class MetadataCache:
    """Answers pod metadata by UID from the source's last good list."""

    def __init__(
        self,
        source: MetadataSource,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_seconds: float = 30.0,
        max_age_seconds: float = 300.0,
    ):
        self.source = source
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._pods: Mapping[str, PodMeta] = {}
        self._listed_at: float | None = None
        self._tried_at: float | None = None
        self._wanted = False
        self._reported: set[str] = set()
        self._failing = False

    def lookup(self, uids: Iterable[str]) -> dict[str, PodMeta]:
        """The known pods among `uids`, listing again when one is new (rate-limited)."""
        uids = list(uids)
        now = self._clock()
        stale = (
            self._listed_at is None
            or self._wanted
            or now - self._listed_at >= self._max_age
            or any(uid not in self._pods for uid in uids)
        )
        if stale and (self._tried_at is None or now - self._tried_at >= self._min_refresh):
            self._refresh(now)
        return {uid: self._pods[uid] for uid in uids if uid in self._pods}

    def request_refresh(self) -> None:
        """List again at the next lookup allowed (e.g. a known pod shows an unknown container)."""
        self._wanted = True

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            pods = self.source.list_pods()
        except Exception as error:  # one failing source never fails the cycle (STYLE 5)
            message = f"{type(error).__name__}: {error}"
            if message not in self._reported:
                self._reported.add(message)
                log.warning(
                    "metadata source %s failed, keeping its last answer: %s",
                    self.source.name,
                    message,
                )
            self._failing = True
            return
        if self._failing:
            log.info("metadata source %s answers again", self.source.name)
            self._failing = False
        self._pods = pods
        self._listed_at = now
        self._wanted = False
