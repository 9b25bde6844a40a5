"""Pure parsers shared by the cgroup v1 and v2 readers."""


def parse_uint(text: str) -> int | None:
    """A non-negative decimal integer, surrounding white space allowed; None otherwise."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def flat_keyed(text: str) -> dict[str, str]:
    """A short flat-keyed file ("key value" lines: cpu.stat) as a table of each key's text,
    read as `keyed_uint` reads one key: cheaper where most keys are wanted."""
    table = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        table[key] = value
    return table


def keyed_uint(text: str, key: str) -> int | None:
    """The value of `key` in a flat-keyed file ("key value" lines); None when absent or garbled."""
    # Found by searching, not by splitting every line: memory.stat has 40 to 60 lines.
    prefix = key + " "
    if text.startswith(prefix):
        start = len(prefix)
    else:
        found = text.find("\n" + prefix)
        if found < 0:
            return None
        start = found + 1 + len(prefix)
    end = text.find("\n", start)
    return parse_uint(text[start:] if end < 0 else text[start:end])


def working_set(usage: int | None, inactive_file: int | None) -> int | None:
    """Usage minus inactive file pages, not below 0; the usage when inactive_file is unknown."""
    # cAdvisor's rule (lib/container/libcontainer/handler.go, setMemoryStats), which the
    # kubelet reports as workingSetBytes.
    if usage is None:
        return None
    if inactive_file is None:
        return usage
    return max(usage - inactive_file, 0)
