"""Time a micro-model on this host as the engine runs it: ONNX file, ONNX Runtime session with the
toolkit's own settings (``runtime/engines.py``), the toolkit's timing loop (``runtime/timing.py``),
so every point carries the same stability verdict as an ``edge bench`` record.

Micro-models are exported with torch's TorchScript-based ONNX exporter, which writes a one-op
file in tens of milliseconds (the dynamo exporter + onnxsim of ``edge export`` takes seconds per
file, which would leave a 15-minute budget a few hundred points short). For one op both give the
same graph: BatchNorm folded into the conv in eval mode, the same opset.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..runtime.engines import OnnxRuntimeEngine
from ..runtime.timing import time_cases
from . import micro

# The one-element ReLU whose run time is the engine's fixed cost per inference (subtracted from
# every point, added once per predicted model).
OVERHEAD_SPEC = {"kind": "relu", "cin": 1, "cout": 1, "h": 1, "w": 1}
STABILITY_KEYS = ("verdict", "reasons", "ci_halfwidth", "cv", "others_cpu_share")


class MicroSession(OnnxRuntimeEngine):
    """ONNX Runtime exactly as ``edge bench`` opens a file, for graphs that take feature maps (any
    channel count, several inputs) rather than one image batch.

    ``bound()`` runs through IO binding into preallocated outputs: a plain ``session.run`` copies
    every output into a new numpy array, which in a whole model costs a copy of the logits only,
    but in a one-op model would add a copy of the op's whole output to the op's cost."""

    def _check_io(self, name, dtype, allowed, out_shape) -> None:
        return None  # feature maps, not images: the image checks do not apply

    def feeds(self, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        return {i.name: rng.standard_normal([int(d) for d in i.shape]).astype(np.float32)
                for i in self.session.get_inputs()}

    def bound(self, feeds: dict):
        """(invoke, binding) that runs the session on ``feeds`` without allocating or copying outputs."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, arr)
        for o in self.session.get_outputs():
            buf = ort.OrtValue.ortvalue_from_shape_and_type([int(d) for d in o.shape], np.float32, "cpu", 0)
            binding.bind_ortvalue_output(o.name, buf)
        return self.session.run_with_iobinding, binding


def export_onnx(module, shapes: list[list[int]], path: Path) -> Path:
    import torch

    from ..export.onnx_export import OPSET

    xs = tuple(torch.randn(*s) for s in shapes)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, xs, str(path), dynamo=False, opset_version=OPSET,
                          input_names=[f"x{i}" for i in range(len(xs))])
    return path


class HostOnnxRuntime:
    """``measure(specs) -> {"cost", "raw", "stability", "runs"}``: a chain of ops timed on this host.

    ``cost`` is ms above the engine's fixed per-inference cost (measured first, in both modes)."""

    engine = "onnxruntime"
    cost_unit = "ms"

    def __init__(self, threads: int = 1, max_seconds: float = 0.3, workdir=None):
        import onnxruntime

        self.version = onnxruntime.__version__
        self.threads = int(threads)
        self.max_seconds = float(max_seconds)
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-predict-", dir=workdir)
        self.workdir = Path(self._tmp.name)
        self.n = 0
        self.bound_overhead_ms = self.overhead_ms = 0.0
        long = max(1.0, 3 * self.max_seconds)
        # the fixed cost a whole model pays (plain run, as `edge bench`), and the one each micro-model pays
        self.overhead = self.time(micro.build([OVERHEAD_SPEC]), max_seconds=long, bound=False)
        self.bound_overhead = self.time(micro.build([OVERHEAD_SPEC]), max_seconds=long)
        self.overhead_ms, self.bound_overhead_ms = self.overhead["raw"], self.bound_overhead["raw"]

    def time(self, built, max_seconds: float | None = None, bound: bool = True) -> dict:
        """Export and time one module: ``raw`` ms per run, ``cost`` = raw less the fixed cost of its mode."""
        module, shapes = built
        self.n += 1
        path = export_onnx(module, shapes, self.workdir / f"m{self.n}.onnx")
        try:
            eng = MicroSession(path, threads=self.threads, metadata={})
            feeds = eng.feeds(self.n)
            case = eng.bound(feeds) if bound else (eng.invoke, feeds)
            res = time_cases([case], runs=None, warmup=2, max_seconds=max_seconds or self.max_seconds,
                             threads=[self.threads])[0]
            eng.close()
        finally:
            path.unlink(missing_ok=True)
        raw = float(res["latency_ms"]["p50"])
        return {"cost": raw - (self.bound_overhead_ms if bound else self.overhead_ms), "raw": raw, "runs": res["runs"],
                "stability": {k: res["stability"].get(k) for k in STABILITY_KEYS}}

    def __call__(self, specs: list[dict]) -> dict:
        return self.time(micro.build(specs))

    def model(self, module, shape) -> dict:
        """A whole network (a composite) taking one [1, C, H, W] input, run as `edge bench` runs a file."""
        return self.time((module, [[1, *shape]]), bound=False)

    def describe(self) -> dict:
        from ..runtime.timing import machine_info

        return {"engine": {"name": self.engine, "version": self.version}, "machine": machine_info()}

    def close(self) -> None:
        self._tmp.cleanup()


def check_supported(device: str, fmt: str, precision: str, target: str | None = None) -> None:
    """A UsageError naming what a fit cannot do yet (before anything is measured or written)."""
    from ..errors import UsageError

    if device != "host":
        raise UsageError(f"edge predict fit --device {device}: only --device host is supported so far "
                         "(the qemu instruction-count fit needs image-shaped micro-models; not built yet)")
    if target:
        raise UsageError("--target applies to --device arm; the host needs none")
    if fmt != "onnx" or precision != "fp32":
        raise UsageError(f"edge predict fit supports --format onnx --precision fp32 so far (asked: {fmt} {precision})")


def measurer(device: str, fmt: str, precision: str, threads: int, target: str | None = None,
             max_seconds: float = 0.3):
    """The measuring back-end for a fit (host: ONNX Runtime in this process)."""
    check_supported(device, fmt, precision, target)
    return HostOnnxRuntime(threads=threads, max_seconds=max_seconds)
