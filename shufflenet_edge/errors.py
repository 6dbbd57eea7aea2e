"""Errors that the CLI turns into one line and a non-zero exit code."""


class EdgeError(Exception):
    """A user-facing problem (bad name, bad file, bad shape): printed as ``error: ...``."""

    exit_code = 2


class UsageError(EdgeError):
    exit_code = 2


class RuntimeFailure(EdgeError):
    """Something broke while doing valid work (conversion failed, device dropped)."""

    exit_code = 1
