"""<proc>/sys/kernel/osrelease: the running kernel's release."""

import os

from cloudmon.agent.node._parse import read_parsed

# The kernel's release string is at most 64 characters (__NEW_UTS_LEN).
_MAX_LENGTH = 64


def parse_osrelease(text: str) -> str | None:
    """The release ("6.1.0-18-amd64"); None unless the text is one printable word."""
    release = text.strip()
    printable = release.isascii() and release.isprintable() and " " not in release
    return release if printable and 0 < len(release) <= _MAX_LENGTH else None


def read_kernel(proc_root: str) -> str | None:
    """<proc_root>/sys/kernel/osrelease, parsed."""
    return read_parsed(os.path.join(proc_root, "sys", "kernel", "osrelease"), parse_osrelease)
