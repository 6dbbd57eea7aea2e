"""shufflenet-edge: ShuffleNet v1/v2 from training to the edge (export, quantize, profile)."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import EdgeError, UsageError  # noqa: E402
from .models import create_model, get_spec, list_models  # noqa: E402


def __getattr__(name):
    # Heavy parts (converters, runtimes) import on first use so `import shufflenet_edge` stays fast.
    if name in ("complexity", "measure"):
        from . import complexity as _c
        return getattr(_c, name) if name == "measure" else _c.complexity
    if name in ("export", "ExportResult"):
        import importlib

        mod = importlib.import_module(".export", __name__)  # a callable module: export(...)
        return mod if name == "export" else mod.ExportResult
    raise AttributeError(name)


__all__ = ["__version__", "create_model", "list_models", "get_spec", "EdgeError", "UsageError", "complexity", "measure", "export", "ExportResult"]
