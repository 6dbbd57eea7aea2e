"""PyTorch eager as a benchmark engine: the baseline every exported file is compared with.

It plugs into the same ``timing.time_cases`` loop as the file runtimes; only the way one
inference is invoked differs (inference mode, torch's own intra-op thread count).
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..runtime import timing
from ..runtime.engines import Engine, register
from ..runtime.runner import device_record


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _profile(model, x, runs: int) -> dict:
    """torch.profiler's CPU op times, grouped like ONNX Runtime's (top-level aten ops only)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ..runtime import opgroups

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(runs):
            model(x)
    totals: dict[str, float] = {}
    by_op: dict[str, float] = {}
    for ev in prof.events():
        # only ops called from Python (no parent op): their self+children time is the op's cost once
        if ev.cpu_parent is not None or not ev.name.startswith("aten::"):
            continue
        op = ev.name[len("aten::"):]
        shapes = ev.input_shapes or []
        w = shapes[1] if op in ("conv2d", "convolution", "_convolution") and len(shapes) > 1 else None
        g = opgroups.group_of(op, w)
        us = ev.cpu_time_total
        totals[g] = totals.get(g, 0.0) + us
        by_op[op] = by_op.get(op, 0.0) + us
    return opgroups.summarize(totals, runs, "torch.profiler", by_op)


@register
class TorchEngine(Engine):
    """PyTorch eager on the model itself (``--format torch``, host only): nothing to open."""

    name = "torch"
    formats = {"torch": None}
    precisions = ("fp32",)
    module = "torch"

    def __init__(self, model, threads: int = 1):
        import torch

        super().__init__("", threads, metadata=dict(model.edge_meta))
        self.model = model.eval()
        self.runtime_version = torch.__version__

    def prepare(self, x):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def invoke(self, native):
        import torch

        with torch.inference_mode():
            return self.model(native)

    def finish(self, raw):
        return raw.numpy()

    def input_shape(self):
        return [None, 3, *self.metadata["input_size"]]


def run_torch(spec) -> list[dict]:
    """Device-side records for ``spec.artifact`` (an nn.Module with edge_meta) at each thread count."""
    eng = TorchEngine(spec.artifact)
    h, w = eng.metadata["input_size"]
    x = eng.prepare(np.random.default_rng(0).standard_normal((spec.batch, 3, h, w)).astype(np.float32))
    device = timing.machine_info()
    weight_bytes = sum(p.numel() * p.element_size() for p in eng.model.state_dict().values())
    timed = []
    for t in spec.threads:
        # torch's thread count is process-wide, so thread counts cannot be interleaved in one loop
        with torch_threads(t):
            res = timing.time_cases([(eng.invoke, x)], spec.runs, spec.warmup, spec.rounds,
                                    max_seconds=spec.max_seconds, threads=[t])[0]
            prof = _profile(eng.model, x, max(1, min(spec.runs or 20, 20))) if spec.profile else None
        timed.append((t, res, round(timing.peak_rss_mb(), 1), prof))
    peak = timing.gemm_peak_gmacs()  # after the timing, which it would disturb
    records = []
    for t, res, rss, prof in timed:
        records.append(device_record("torch", eng.runtime_version, t, spec.batch, spec.warmup, res, peak_rss_mb=rss,
                                     size_bytes=weight_bytes, device=device, cpu_peak=peak))
        if prof:
            records[-1]["profile"] = prof
    return records
