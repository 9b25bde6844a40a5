"""The source that knows nothing: pods keep their UIDs and null names."""

from cloudmon.agent.metadata.base import PodMeta


class NoMetadata:
    """Answers an empty mapping."""

    name = "none"

    def list_pods(self) -> dict[str, PodMeta]:
        """No pods."""
        return {}

    def close(self) -> None:
        """Nothing to stop."""
