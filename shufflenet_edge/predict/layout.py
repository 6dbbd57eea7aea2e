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

import statistics
from pathlib import Path

from .kernels import NCHWC_BLOCK, blocked, spec_counts

# (channels, map side) of the conv pairs: the zoo's range of 1x1 convs, small to large tensors
GRID = ((32, 56), (64, 28), (64, 56), (128, 28), (128, 14), (256, 14), (48, 112), (96, 56))


def _conv(c: int, side: int) -> dict:
    return {"kind": "conv1x1", "cin": c, "cout": c, "h": side, "w": side, "k": 1, "stride": 1, "pad": 0, "groups": 1}


def runs_nchwc(spec: dict, workdir) -> bool:
    """Whether ONNX Runtime on this host runs the one-op model of ``spec`` in NCHWc: read from the graph
    it optimizes (its ``com.microsoft.nchwc`` ops), not from a rule."""
    import onnx
    import onnxruntime as ort

    from . import micro

    src, opt = Path(workdir) / "nchwc.onnx", Path(workdir) / "nchwc.opt.onnx"
    try:
        module, shapes = micro.build([spec])
        micro.export_onnx(module, shapes, src)
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(opt)
        so.log_severity_level = 3  # its warning that the saved graph is for this host only: that is the point
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        return any(n.domain == "com.microsoft.nchwc" for n in onnx.load(str(opt)).graph.node)
    finally:
        src.unlink(missing_ok=True)
        opt.unlink(missing_ok=True)


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
    return {"reorder_ms_per_melement": per, "points": points}


def pair_reorders(a: dict, b: dict, per_melement: float, block: int = NCHWC_BLOCK) -> float:
    """ms of reorders in the timings of ``a`` then ``b`` (alone and chained) that a network would not
    run, to take out of the pair's saving: two between two NCHWc ops (their one-op models each pay
    one, the chain neither), and the second input of an add after an NCHWc op (the chain pays it)."""
    if not per_melement or not blocked(a, block):
        return 0.0
    per = per_melement / 1e6
    if blocked(b, block):
        return 2 * per * spec_counts(b)["in_elems"]
    if b["kind"] == "add":
        return -per * spec_counts(b)["in_elems"] / 2
    return 0.0
