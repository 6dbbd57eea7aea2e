"""The ``edge`` group and the one place where problems become one ``error: ...`` line.

What a user can meet ends the same way whatever raised it:
- an ``EdgeError`` (bad name, bad file, failed conversion, dropped device): its message and
  its exit code (2 for usage, 1 for a failure);
- Click's own usage errors (bad option value, missing or unknown option): the same one-line
  form and exit code 2, instead of Click's multi-line Usage/Error block;
- Ctrl-C: ``error: interrupted``, exit code 130; SIGTERM unwinds the same way (temporary files
  go) and ends ``error: terminated``, exit code 143;
- anything else is a bug: one line saying so, exit code 1. ``edge --debug ...`` or
  ``EDGE_DEBUG=1`` prints the traceback as well.

Subcommands live in ``*_cmd.py`` modules that import ``main`` from here and register on it.
"""
from __future__ import annotations

import os
import sys
import traceback

import click

from .. import __version__
from ..errors import EXIT_FAILURE, EXIT_USAGE, EdgeError, error_line, exit_code_of, one_line

BUG_NOTE = "this is a bug, please report it with --debug output"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # io_utils.Terminated's code


_debug_flag = False  # set by --debug for the current invocation


def debug_enabled() -> bool:
    return _debug_flag or os.environ.get("EDGE_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _click_error_text(exc: click.ClickException) -> str:
    """Click's message in this project's voice: lower-case start, no full stop, where to look."""
    text = one_line(exc.format_message(), limit=600).rstrip(".")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f" (see `{ctx.command_path} --help`)"
    return text


def report(exc: BaseException, debug: bool | None = None) -> int:
    """Print ``exc`` as one ``error:`` line on stderr (after its traceback under --debug); its exit code."""
    debug = debug_enabled() if debug is None else debug
    if isinstance(exc, click.Abort) and isinstance(exc.__cause__, KeyboardInterrupt):
        exc = exc.__cause__  # Click wraps Ctrl-C (and io_utils.Terminated, SIGTERM) in Abort
    if debug and not isinstance(exc, (KeyboardInterrupt, click.Abort)):
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, (KeyboardInterrupt, click.Abort)):
        code = int(getattr(exc, "exit_code", EXIT_INTERRUPTED))
        line = "error: terminated" if code == EXIT_TERMINATED else "error: interrupted"
    elif isinstance(exc, click.ClickException):
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        line = error_line(_click_error_text(exc))
    elif isinstance(exc, EdgeError):
        line, code = error_line(exc), exit_code_of(exc)
    else:
        line, code = error_line(f"{type(exc).__name__}: {one_line(exc)} ({BUG_NOTE})"), EXIT_FAILURE
    click.echo(line, err=True)
    return code


class EdgeGroup(click.Group):
    """A Click group whose failures all end as one ``error:`` line (see the module docstring)."""

    def invoke(self, ctx):
        from ..io_utils import sigterm_unwinds

        with sigterm_unwinds():  # SIGTERM cleans up like Ctrl-C (temporary files go), then exits 143
            super().invoke(ctx)
        return None  # a subcommand's return value (an ExportResult, ...) is not an exit status

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        global _debug_flag
        _debug_flag = False
        if not standalone_mode:  # a caller that handles exceptions itself gets them raw
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place where everything is reported
            code = report(exc)
        sys.exit(code if isinstance(code, int) else 0)


def _set_debug(ctx, param, value):
    global _debug_flag
    _debug_flag = _debug_flag or bool(value)
    return value


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="shufflenet-edge")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show the full traceback of an error (also EDGE_DEBUG=1).")
def main():
    """shufflenet-edge: train, export, quantize and profile ShuffleNet v1/v2 for the edge."""


def run() -> None:
    """The `edge` console script: ``main``, except that a run stopped by SIGTERM leaves without the
    interpreter's teardown. Its cleanup has run and its error line is out by then; the teardown would run
    native destructors of whatever the signal interrupted (a TFLite export on a loaded host died with -6
    or -11 after "error: terminated" in 2 of 26 SIGTERMs, and once in the full suite; 0 of 70 without it). Not in ``main`` itself:
    a caller that runs it in its own process (Click's CliRunner, a script) keeps its process."""
    try:
        main()
    except SystemExit as exc:
        if exc.code == EXIT_TERMINATED:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_TERMINATED)
        raise
