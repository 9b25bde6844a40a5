"""Pressure stall information (Documentation/accounting/psi.rst): the node's
/proc/pressure/{cpu,memory,io} and a cgroup v2 directory's {cpu,memory,io}.pressure, one
format. Each has a "some" line (time in which at least one task stalled on the resource) and
a "full" line (time in which all non-idle tasks did; for the node's CPU the kernel prints
zeros, Linux 5.13+, and cloudmon does not report it), each ending in total=<microseconds>."""

from cloudmon.agent.files import read_text

RESOURCES = ("cpu", "memory", "io")


def parse_pressure(text: str) -> dict[str, int]:
    """The totals (microseconds) of a pressure file's lines by kind ("some", "full"); empty
    when the text has none."""
    # Lines of "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" (kernel/sched/psi.c,
    # psi_show): five fields each.
    fields = text.split()
    found = {}
    for at in range(0, len(fields) - 4, 5):
        kind, total = fields[at], fields[at + 4]
        value = total[6:]
        if (
            kind in ("some", "full")
            and total[:6] == "total="
            and value.isascii()
            and value.isdigit()
        ):
            found[kind] = int(value)
    return found


def read_pressure(directory: str, suffix: str) -> dict[str, float | None]:
    """The stalled seconds of each resource's pressure file `<directory>/<resource><suffix>`,
    as fields `<resource>_pressure_<some|full>_seconds_total`; None where a file or a line is
    missing (a kernel without PSI, or booted with psi=0)."""
    found: dict[str, float | None] = {}
    for resource in RESOURCES:
        text = read_text(f"{directory}/{resource}{suffix}")
        totals = {} if text is None else parse_pressure(text)
        for kind in ("some", "full"):
            total = totals.get(kind)
            found[f"{resource}_pressure_{kind}_seconds_total"] = (
                None if total is None else total / 1e6
            )
    return found
