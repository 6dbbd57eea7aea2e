"""Click option types shared by several subcommands."""
from __future__ import annotations

import click

from ..errors import UsageError
from ..models import parse_input_size
from ..tables import console  # noqa: F401  (commands import it from here too)


class InputSize(click.ParamType):
    name = "H[xW]"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, tuple):
            return value
        try:
            return parse_input_size(value)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


INPUT_SIZE = InputSize()


def print_json(obj) -> None:
    import json

    click.echo(json.dumps(obj, indent=2))
