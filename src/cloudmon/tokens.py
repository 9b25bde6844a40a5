"""Bearer tokens kept in files, as the server, `cloudmon top` and the agent read them."""

from pathlib import Path


def read_token(path: str | Path | None) -> str | None:
    """The token in a file, surrounding white space removed; None without a file."""
    if path is None:
        return None
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"{path}: the token file is empty")
    return token
