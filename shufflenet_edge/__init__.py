"""shufflenet-edge: ShuffleNet v1/v2 from training to the edge (export, quantize, profile).

>>> import shufflenet_edge as se
>>> se.complexity("v2_1.0x").macs
144907992

The API functions are bound here eagerly, after their modules are imported: importing a
submodule (``from shufflenet_edge.train import train``) sets the package attribute of the same
name to the module, but only the first time, which happens right here; so ``se.train``,
``se.export``, ``se.bench``, ``se.evaluate``, ``se.complexity``, ``se.predict`` stay functions. (A lazy
``__getattr__`` bought nothing: every one of them needs torch.)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import EdgeError, RuntimeFailure, UsageError  # noqa: E402
from .models import create_model, get_spec, list_models  # noqa: E402
from .complexity import Complexity, complexity, measure  # noqa: E402
from .export import ExportResult, export  # noqa: E402
from .bench import bench  # noqa: E402
from .train import train  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .predict import predict  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "get_spec", "complexity", "measure", "Complexity",
           "export", "ExportResult", "bench", "train", "evaluate", "predict", "EdgeError", "UsageError", "RuntimeFailure"]
