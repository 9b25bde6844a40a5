"""The host's root file system: size and space used, as df shows them."""

import os

from cloudmon.agent.files import report_once


def usage(st: os.statvfs_result) -> tuple[int, int]:
    """(total, used) bytes of a statvfs result; used counts blocks not free (df's "Used")."""
    # cAdvisor's lib/fs/vfs/stats.go: total = f_frsize * f_blocks.
    return st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize


def read_filesystem(rootfs: str) -> tuple[int, int] | None:
    """(total, used) bytes of the file system holding rootfs; None, reported once, on failure."""
    try:
        st = os.statvfs(rootfs)
    except OSError as error:
        report_once(rootfs, "cannot statvfs %s: %s", rootfs, error)
        return None
    return usage(st)
