"""The ``edge`` command: a thin Click layer over the Python API.

Every subcommand lives in its own ``*_cmd.py`` module and registers itself on ``main`` when
imported; errors the user can fix (EdgeError) become one ``error: ...`` line and a non-zero
exit, never a traceback.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from .. import __version__
from ..errors import EdgeError


def _one_line_errors():
    from ..runtime.engines import EngineError

    return (EdgeError, EngineError)


class EdgeGroup(click.Group):
    def invoke(self, ctx):
        from ..io_utils import sigterm_unwinds

        try:
            with sigterm_unwinds():  # SIGTERM cleans up like Ctrl-C (temporary files go), then exits 143
                return super().invoke(ctx)
        except _one_line_errors() as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 1))
        except KeyboardInterrupt as exc:
            code = getattr(exc, "exit_code", 130)
            click.echo("error: terminated" if code == 143 else "error: interrupted", err=True)
            sys.exit(code)


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="shufflenet-edge")
def main():
    """shufflenet-edge: train, export, quantize and profile ShuffleNet v1/v2 for the edge."""


for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")):
    importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["main"]
