"""Command-line option types for values people write (durations, sizes), parsed by the
same code as the server's parameters, with click's error when one is wrong; and the options
the commands that ask the server (`top`, `rightsize`) or open the store share."""

from collections.abc import Callable

import click

from cloudmon.durations import parse_duration, parse_time
from cloudmon.sizes import parse_size


class Parsed(click.ParamType):
    """An option whose text `parse` turns into a number (ValueError saying what is wrong)."""

    def __init__(self, name: str, parse: Callable[[str], float]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, int | float):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


DURATION = Parsed("duration", parse_duration)  # as seconds
SIZE = Parsed("size", parse_size)  # as bytes
TIME = Parsed("time", parse_time)  # unix seconds or RFC 3339, as unix seconds


def namespaces(command):
    """-n/--namespace and -A/--all-namespaces, as kubectl's."""
    command = click.option(
        "-A", "--all-namespaces", is_flag=True, help="All namespaces (the default without -n)."
    )(command)
    return click.option("-n", "--namespace", default=None, help="Only this namespace.")(command)


def store_of(what: str, note: str = ""):
    """--storage for a command that opens the store itself: `what` store it opens for."""
    return click.option(
        "--storage",
        envvar="CLOUDMON_STORAGE",
        default="sqlite:///data/cloudmon.db",
        show_default=True,
        help=f"The {what}, as the server's --storage names it{note}.",
    )


def server_client(command):
    """--server and --token-file: the server a command asks, and its read token."""
    command = click.option(
        "--token-file",
        envvar="CLOUDMON_READ_TOKEN_FILE",
        default=None,
        type=click.Path(dir_okay=False, exists=True),
        help="File holding the bearer token the server's read endpoints require.",
    )(command)
    return click.option(
        "--server",
        envvar="CLOUDMON_SERVER",
        default="http://127.0.0.1:8080",
        show_default=True,
        help="Base URL of the cloudmon server.",
    )(command)


def one_namespace_choice(namespace: str | None, all_namespaces: bool) -> None:
    """Refuse -n with -A."""
    if namespace is not None and all_namespaces:
        raise click.UsageError("give either -n/--namespace or -A/--all-namespaces")
