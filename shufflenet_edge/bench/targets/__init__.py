"""Targets: where a benchmark runs. One interface (``base.Target``), one module per kind of
device, registered by URL scheme: ``host``/``local`` (``host.py``), ``ssh://`` (``ssh.py``),
``adb://`` (``adb.py``), ``qemu`` (``qemu.py``), ``browser`` (``browser.py``).

Remote and emulated targets run the very same ``runtime/runner.py`` there, so every device is
timed by one loop. A new kind of device is one module with a ``@register_target`` class, and
its import below.
"""
from __future__ import annotations

from ...errors import UsageError
from . import host, ssh, adb, qemu, browser  # noqa: F401, I001  (each registers its class; this order is --help's)
from .base import (TARGETS, RunSpec, Target, TargetError, cpu_ranges, default_arm_target, emulation_warning,
                   is_arm64_host, parse_cpu_list, parse_runner_output, register_target, runner_args, runner_files)

__all__ = ["RunSpec", "Target", "TargetError", "TARGETS", "register_target", "resolve_target", "parse_cpu_list",
           "cpu_ranges",
           "parse_runner_output", "runner_args", "runner_files", "default_arm_target", "emulation_warning",
           "is_arm64_host", "target_choices"]

_NOT_ARM = ("host", "browser")  # schemes --device picks, never --target


def target_choices() -> str:
    """The ``--target`` forms, for help texts and errors."""
    return ", ".join(dict.fromkeys(cls.url_help for s, cls in TARGETS.items() if s not in _NOT_ARM))


def _option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_target(device: str = "host", target: str | None = None, **options) -> Target:
    """``--device``/``--target`` (+ that target's own options) -> a Target.

    ``--device arm`` without ``--target``: ``local`` on an aarch64 host, else ``$EDGE_ARM_TARGET``,
    else ``qemu`` (emulated; the caller warns, see ``emulation_warning``). Options left at None
    are not given; one the target does not take is a usage error.
    """
    device = (device or "host").lower()
    if device == "host":
        if target not in (None, "", "local", "host"):
            raise UsageError(f"--target {target} needs --device arm")
        url = "host"
    elif device == "browser":
        url = "browser"
    elif device == "arm":
        url = target or default_arm_target()
    else:
        raise UsageError(f"unknown device '{device}' (choose from: host, arm, browser)")
    scheme = url.split("://", 1)[0] if "://" in url else url
    cls = TARGETS.get(scheme)
    if cls is None or (device == "arm" and scheme in _NOT_ARM):
        raise UsageError(f"unknown target '{url}' (choose from: {target_choices()})")
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name not in cls.options:
            takers = sorted({c.url_help.split(":")[0] for c in TARGETS.values() if name in c.options})
            raise UsageError(f"{_option_flag(name)} is for {'/'.join(takers) or 'no'} targets, not {scheme}")
    return cls.from_url(url, **given)
