"""Errors a user can meet, and the one-line form every one of them is printed in.

Every such error derives from ``EdgeError`` and carries the exit code the ``edge`` command
ends with: 2 for usage (a bad name, flag value, file or shape the user can fix), 1 for a
failure while doing valid work (a conversion that broke, a device that dropped). The CLI
prints ``error_line(exc)``; library callers catch ``EdgeError``.
"""
from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILURE = 1


class EdgeError(Exception):
    """A user-facing problem: printed as one ``error: ...`` line, exit code ``exit_code``."""

    exit_code = EXIT_USAGE


class UsageError(EdgeError):
    """Bad input the user can fix (name, flag value, file, shape)."""

    exit_code = EXIT_USAGE


class RuntimeFailure(EdgeError):
    """Something broke while doing valid work (conversion failed, device dropped)."""

    exit_code = EXIT_FAILURE


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """The text of ``exc`` on one line (whitespace collapsed, at most ``limit`` characters).

    A library's multi-line message (a converter's log, a worker's traceback) would break the
    one-line rule; its first words name the problem, so the rest is folded, not dropped.
    """
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def error_line(exc: BaseException | str) -> str:
    """``error: <message>``: the only form in which the CLI reports a problem."""
    return f"error: {one_line(exc, limit=1000)}"


def exit_code_of(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", EXIT_FAILURE))
