"""PyTorch eager as a benchmark engine: the baseline every exported file is compared with.

It plugs into the same ``timing.time_cases`` loop as the file runtimes; only the way one
inference is invoked differs (inference mode, torch's own intra-op thread count).
"""
from __future__ import annotations

import contextlib

from ..runtime import timing


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


def run_torch(spec) -> list[dict]:
    """Device-side records for ``spec.model`` (an nn.Module with edge_meta) at each thread count."""
    import numpy as np
    import torch

    model = spec.model.eval()
    h, w = model.edge_meta["input_size"]
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((spec.batch, 3, h, w)).astype(np.float32))

    def invoke(inp):
        with torch.inference_mode():
            return model(inp)

    records = []
    device = timing.machine_info()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    for t in spec.threads:
        # torch's thread count is process-wide, so thread counts cannot be interleaved in one loop
        with torch_threads(t):
            res = timing.time_cases([(invoke, x)], spec.runs, spec.warmup, spec.rounds,
                                    max_seconds=spec.max_seconds, threads=[t])[0]
            prof = _profile(model, x, max(1, min(spec.runs or 20, 20))) if spec.profile else None
        rec = {"engine": "torch", "runtime_version": torch.__version__, "threads": int(t), "batch": int(spec.batch),
               "warmup": int(spec.warmup), "peak_rss_mb": round(timing.peak_rss_mb(), 1), "size_bytes": weight_bytes,
               "device": dict(device), **res}
        if prof:
            rec["profile"] = prof
        records.append(rec)
    peak = timing.gemm_peak_gmacs()
    for rec in records:
        rec["cpu_peak_gmacs"] = peak["gmacs"]
        rec["cpu_peak_method"] = peak["method"]
        rec["cpu_peak_precision"] = peak["precision"]
    return records
