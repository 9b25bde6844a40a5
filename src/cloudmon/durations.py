"""Durations as people write them (30s, 5m, 1h, 7d, a bare number of seconds) and times (unix
seconds, RFC 3339): one parser for the API's time parameters and the command line's options,
free of the server."""

import re
from datetime import datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PATTERN = r"^([0-9]+)([smhdw]?)$"
LONGEST = 1e11  # seconds: past the year 5138 from 1970, more than any time's span
_DURATION = re.compile(PATTERN)
_UNIX = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def parse_duration(text: str) -> int:
    """Seconds of a duration; raises ValueError saying what is wrong with it."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h or 7d")
    if len(match[1]) > 12:  # more than LONGEST in any unit; and int() refuses long strings
        raise ValueError(f"{text!r} is too long to be a time span")
    seconds = int(match[1]) * UNITS[match[2] or "s"]
    if seconds <= 0:
        raise ValueError("must be positive")
    if seconds > LONGEST:
        raise ValueError(f"{text!r} is too long to be a time span")
    return seconds


def parse_time(text: str) -> float:
    """Unix seconds from unix seconds or an RFC 3339 time with an offset; raises ValueError
    saying what is wrong with it."""
    text = text.strip()
    if _UNIX.match(text):
        if len(text.partition(".")[0]) > 12:
            raise ValueError(f"{text!r} is too large to be a time")
        value = float(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither unix seconds nor an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone offset (add Z or +00:00)")
        value = moment.timestamp()
    if value < 0:
        raise ValueError(f"{text!r} lies before 1970, the start of unix time")
    if value > LONGEST:
        raise ValueError(f"{text!r} is too large to be a time")
    return value
