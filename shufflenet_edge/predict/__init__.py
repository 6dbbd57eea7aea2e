"""``edge predict``: latency predicted from a device profile, without running the model.

>>> from shufflenet_edge.predict import predict
>>> r = predict("v1_g8_1.5x", 224)            # the default host onnxruntime fp32 1-thread profile
>>> r["predicted"], r["proxies"]["flops"], r["by_kind"]["dwconv"]["cost"]

A profile (``profile.py``) is fitted once per device, engine, precision and thread count by
``fit_profile`` (``edge predict fit``): micro-models of each kernel kind the zoo uses
(``micro.py``) are timed as the engine runs them (``measure.py``) over configurations drawn
around the zoo's layer shapes (``sampling.py``), where the fitted per-kernel regressors
(``fit.py``) miss most; fusion rules come from timing pairs of ops alone and together
(``fusion.py``). A prediction decomposes the model into kernels (``kernels.py``; an ONNX file:
``onnx_graph.py``), merges fused ones, costs each, and sets the FLOPs-only and MACs + memory
laws (``proxies.py``) beside the sum. ``validate`` measures how far off all three are.
``--device arm`` does all of it under qemu with aarch64 instructions per inference as the cost
(``qemu_measure.py``; validation counts the zoo's exported files through the qemu target).
"""
from __future__ import annotations

from .predictor import predict
from .profiling import fit_profile
from .validate import validate

__all__ = ["predict", "fit_profile", "validate"]
