"""Command-line option types for values people write (durations, sizes), parsed by the
same code as the server's parameters, with click's error when one is wrong."""

from collections.abc import Callable

import click

from cloudmon.durations import parse_duration
from cloudmon.sizes import parse_size


class Parsed(click.ParamType):
    """An option whose text `parse` turns into a number (ValueError saying what is wrong)."""

    def __init__(self, name: str, parse: Callable[[str], int]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


DURATION = Parsed("duration", parse_duration)  # as seconds
SIZE = Parsed("size", parse_size)  # as bytes
