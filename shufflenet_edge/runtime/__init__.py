"""Run exported files: the one runtime layer that export parity, bench, eval and the demo share.

``engines.py`` and ``timing.py`` import nothing from this package (only the standard library,
numpy and whichever runtime is installed) because the bench ships them as they are to an ARM
board or an emulated userland. Keep them that way.
"""
from .engines import ENGINES, Engine, available_engines, default_engine, load_sidecar, open_engine

__all__ = ["ENGINES", "Engine", "available_engines", "default_engine", "load_sidecar", "open_engine"]
