"""The ``edge`` command: a thin Click layer over the Python API.

``app.py`` holds the group and turns every problem into one ``error: ...`` line; every
subcommand lives in its own ``*_cmd.py`` module that registers itself on ``app.main`` when
imported here, so adding a command is adding one file.
"""
from __future__ import annotations

import importlib
import pkgutil

from .app import main, run

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")):
    importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["main", "run"]
