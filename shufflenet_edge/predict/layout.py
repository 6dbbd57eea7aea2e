"""The cost of ONNX Runtime's NCHWc layout reorders, measured, and what it changes in a prediction.

A one-op model of an op that runs NCHWc (``kernels.blocked``) reorders its input into blocks and its
output back; inside a network two NCHWc ops in a row hand the blocked tensor straight on. So the
one-op costs of the zoo's conv chains each carry two reorders the network does not run (on a v1
1x unit at 480x640, a quarter of a 1x1 conv's one-op time and half a depthwise conv's). The fit
measures the reorder cost per element from pairs of identical NCHWc 1x1 convs, alone and chained, in
one interleaved run: the chain saves one output and one input reorder of the same tensor. The
predictor then spares each kernel the reorders the network skips (``predictor.reorders_saved``), and
the fusion rules are judged net of them (``pair_reorders``): a pair of NCHWc ops otherwise looks
fused by the reorders alone, and an add after an NCHWc conv looks unfused because its one-op model
reorders the add's second input, which a network's residual already holds in blocks.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np

from .kernels import NCHWC_BLOCK, blocked, spec_counts

# (channels, map side) of the conv pairs: the zoo's range of 1x1 convs, small to large tensors
# the last three are tensors of 5-20 MB, as at 480x640: beyond the caches a reorder costs ~4x as much
# per element (measured here, AMD EPYC, 32 MiB L3: 0.10 ms per million elements up to 2.4 MB, 0.29 at
# 5 MB, 0.40 at 10 and 20 MB), and one constant under-credited the large maps' kernels
GRID = ((32, 56), (64, 28), (64, 56), (128, 28), (128, 14), (256, 14), (48, 112), (96, 56), (32, 200), (32, 280),
        (64, 280))


def _conv(c: int, side: int) -> dict:
    return {"kind": "conv1x1", "cin": c, "cout": c, "h": side, "w": side, "k": 1, "stride": 1, "pad": 0, "groups": 1}


def optimized_nodes(specs: list[dict], workdir) -> list:
    """The nodes of the graph ONNX Runtime on this host optimizes the chain ``specs`` into (its
    fusions and layout changes, as it will run them)."""
    import onnx
    import onnxruntime as ort

    from . import micro

    src, opt = Path(workdir) / "graph.onnx", Path(workdir) / "graph.opt.onnx"
    try:
        module, shapes = micro.build(specs)
        micro.export_onnx(module, shapes, src)
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(opt)
        so.log_severity_level = 3  # its warning that the saved graph is for this host only: that is the point
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        return list(onnx.load(str(opt)).graph.node)
    finally:
        src.unlink(missing_ok=True)
        opt.unlink(missing_ok=True)


def runs_nchwc(spec: dict, workdir) -> bool:
    """Whether ONNX Runtime on this host runs the one-op model of ``spec`` in NCHWc: read from the graph
    it optimizes (its ``com.microsoft.nchwc`` ops), not from a rule."""
    return any(n.domain == "com.microsoft.nchwc" for n in optimized_nodes([spec], workdir))


def block_size(workdir, candidates=(8, 16)) -> int:
    """The engine's NCHWc block (channels per block; 0: no NCHWc layout): the smallest candidate that a
    pool of that many channels runs blocked in (``runs_nchwc``). It is the vector width (8 floats on
    AVX2, 16 on AVX-512), so the same onnxruntime wheel runs other layouts on another host, and a
    profile keeps the block it was fitted with."""
    for block in candidates:
        if runs_nchwc({"kind": "maxpool", "cin": block, "cout": block, "h": 8, "w": 8, "k": 3, "stride": 2,
                       "pad": 1}, workdir):
            return block
    return 0


def measure(together, deadline=None, clock=None) -> dict | None:
    """``{"reorder_ms_per_melement", "points"}`` from ``together(chains)`` (an interleaved timing back-end);
    None when nothing could be timed."""
    import time

    clock = clock or time.perf_counter
    points = []
    for c, side in GRID:
        if deadline is not None and clock() >= deadline:
            break
        conv = _conv(c, side)
        got = together([[conv], [conv, conv]])
        if not got or any(g is None for g in got):
            continue
        one, two = got[0]["cost"], got[1]["cost"]
        elems = c * side * side
        points.append({"channels": c, "side": side, "elements": elems, "cost_one": one, "cost_chain": two,
                       "ms_per_melement": (2 * one - two) / (2 * elems) * 1e6})
    if not points:
        return None
    per = max(0.0, statistics.median(p["ms_per_melement"] for p in points))
    return {"reorder_ms_per_melement": per, "reorder_curve": curve(points), "keyed_by": KEYED_BY, "points": points}


def curve(points: list[dict]) -> list[list[float]]:
    """``[[elements, ms per million elements], ...]`` by size, each rate the median of three
    neighbouring sizes (one noisy pair of timings must not bend the curve)."""
    pts = sorted((p["elements"], p["ms_per_melement"]) for p in points)
    out = []
    for i, (elems, _) in enumerate(pts):
        lo = max(0, min(i - 1, len(pts) - 3))  # three at the ends too
        out.append([float(elems), max(0.0, statistics.median(r for _, r in pts[lo:lo + 3]))])
    return out


def reorder_rate(entry: dict | None):
    """The reorder cost a profile's ``layout`` entry holds, as ``reorder_ms`` takes it: its curve, else
    its one constant (profiles made before the curve), else 0 (no layout measured)."""
    entry = entry or {}
    return entry.get("reorder_curve") or float(entry.get("reorder_ms_per_melement") or 0.0)


def reorder_ms(elements: float, rate, at: float | None = None) -> float:
    """ms to reorder a tensor of ``elements`` between NCHW and NCHWc: ``rate`` is a profile's
    ``reorder_curve`` (interpolated in log size, held at its ends) or one ms-per-million constant
    (profiles made before the curve). ``at``: the size the curve is read at (``working_set``; default
    the tensor's own)."""
    if not rate:
        return 0.0
    if isinstance(rate, (int, float)):
        return float(rate) * elements / 1e6
    xs = [math.log(max(1.0, e)) for e, _ in rate]
    where = elements if at is None else at
    return float(np.interp(math.log(max(1.0, where)), xs, [r for _, r in rate])) * elements / 1e6


# A reorder's rate follows what the one-op model that pays it moves, not the tensor alone: the curve is
# measured on C -> C convs, whose input and output are both the tensor, and at 1.2 M elements such a
# conv's output reorder took 0.43 ms, MobileNet v2's 16 -> 96 expansion's (same output, a sixth of the
# input) 0.15 (ONNX Runtime's own node times, AMD EPYC). So the curve is read at the paying op's mean of
# input and output elements. The layout entry says so (``KEYED_BY``); a profile without it keeps the
# tensor's own size, as it was validated.
KEYED_BY = "working_set"


def working_set(spec: dict) -> float:
    """The mean of an op's input and output elements: where the reorder curve is read for a reorder
    its one-op model pays (a C -> C conv's is its tensor's size, as the curve was measured)."""
    c = spec_counts(spec)
    return (c["in_elems"] + c["out_elems"]) / 2


def keyed(entry: dict | None) -> bool:
    """Whether a profile's ``layout`` entry reads its curve at the paying op's working set."""
    return (entry or {}).get("keyed_by") == KEYED_BY


def pair_reorders(a: dict, b: dict, per_melement, block: int = NCHWC_BLOCK, by_working_set: bool = False) -> float:
    """ms of reorders in the timings of ``a`` then ``b`` (alone and chained) that a network would not
    run, to take out of the pair's saving: two between two NCHWc ops (their one-op models each pay
    one, the chain neither), and the second input of an add after an NCHWc op (the chain pays it).
    ``by_working_set``: each reorder read at its op's ``working_set``."""
    if not per_melement or not blocked(a, block):
        return 0.0
    if blocked(b, block):
        elems = spec_counts(b)["in_elems"]
        if by_working_set:
            return (reorder_ms(elems, per_melement, working_set(a))
                    + reorder_ms(elems, per_melement, working_set(b)))
        return 2 * reorder_ms(elems, per_melement)
    if b["kind"] == "add":
        return -reorder_ms(spec_counts(b)["in_elems"] / 2, per_melement)
    return 0.0
