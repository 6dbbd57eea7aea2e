"""The ``edge`` command: a thin Click layer over the Python API.

Every subcommand lives in its own module and registers itself on ``main``; errors the user can
fix (EdgeError) become one ``error: ...`` line and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import EdgeError


class EdgeGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="shufflenet-edge")
def main():
    """shufflenet-edge: train, export, quantize and profile ShuffleNet v1/v2 for the edge."""


# Subcommands register themselves on import.
from . import models_cmd, quickstart_cmd  # noqa: E402,F401

__all__ = ["main"]
