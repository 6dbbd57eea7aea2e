"""``predict(model, input_size, profile)``: decompose, fuse, cost each kernel, add the fixed cost,
and set the FLOPs-only and MACs + memory-access laws of the same profile beside the result."""
from __future__ import annotations

import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UsageError
from . import fusion, profile as profiles, proxies
from .fit import fit_models
from .layout import keyed, reorder_ms, reorder_rate
from .kernels import CLAMPED, CONV_KINDS, KERNEL_KINDS, NCHWC_BLOCK, Op, blocked, model_ops, totals, trace_ops


COMPUTE_KINDS = CONV_KINDS + ("fc",)  # the rest (element-wise, data movement, pooling) is memory-bound
MIN_COMPOSITES = 5  # composites needed before their calibration is trusted
SCALE_RANGE = (0.25, 3.0)


def group(kind: str) -> str:
    """'compute' or 'memory': the calibration group of a kernel (by the op it starts with)."""
    return "compute" if kind.split("+")[0] in COMPUTE_KINDS else "memory"


def calibrate(composites: list[dict]) -> dict:
    """Two scales, fitted (non-negative least squares) on whole composite networks: measured cost less
    the fixed cost = s_compute * sum of compute kernels + s_memory * sum of memory-bound kernels.
    One-op models run with warm caches and none of a network's layout changes between ops; these
    scales carry what that misses, learnt on networks that are not zoo models. Scale 1 without data."""
    from scipy.optimize import nnls

    pts = [c for c in composites if c.get("kernel_sums")]
    if len(pts) < MIN_COMPOSITES:
        return {"compute": 1.0, "memory": 1.0, "n": len(pts), "fitted": False}
    A = np.asarray([[c["kernel_sums"]["compute"], c["kernel_sums"]["memory"]] for c in pts], dtype=np.float64)
    b = np.asarray([c["cost"] - c["fixed_cost"] for c in pts], dtype=np.float64)
    # relative errors, as the kernels are fitted: a 0.2 ms network counts as much as a 20 ms one
    w = 1.0 / np.maximum(b, 1e-9)
    scale = nnls(A * w[:, None], b * w)[0]
    # held to [1/4, 3]: beyond that the composites disagree with the kernels for a reason no scale should hide
    lo, hi = SCALE_RANGE
    return {"compute": float(np.clip(scale[0], lo, hi)), "memory": float(np.clip(scale[1], lo, hi)), "n": len(pts),
            "fitted": True}


REORDER_CREDIT_CAP = 0.5  # a kernel keeps at least half its one-op cost, whatever reorders it is spared


def reorders_saved(ops: list[Op], kernels: list[dict], ms_per_melement, block: int = NCHWC_BLOCK,
                   by_working_set: bool = False) -> list[float]:
    """ms each kernel does not spend on layout reorders inside a network. A one-op model of an NCHWc
    op (``kernels.blocked`` with the engine's ``block``) pays for reordering its input in and its output
    out; between two such ops a network reorders nothing. So a kernel whose first op runs NCHWc is
    spared its input's reorder when that input comes from an NCHWc kernel, and its output's when every
    consumer is one.
    ``by_working_set``: each reorder priced at the rate of the one-op model that pays it
    (``layout.working_set``: the producer's head for its output, the consumer's head for its input)."""
    if not ms_per_melement or not kernels:
        return [0.0] * len(kernels)
    index = {op.name: i for i, op in enumerate(ops)}
    where = {name: ki for ki, k in enumerate(kernels) for name in k["ops"]}
    heads = [ops[index[k["ops"][0]]] for k in kernels]
    nchwc = [blocked(h.spec(), block) for h in heads]
    consumers: dict[int, list[tuple[int, bool]]] = {}
    for op in ops:
        for src in op.inputs:
            if src >= 0 and where[ops[src].name] != where[op.name]:
                consumers.setdefault(src, []).append((where[op.name], heads[where[op.name]] is op))
    saved = [0.0] * len(kernels)
    for src, uses in consumers.items():
        kp = where[ops[src].name]
        if not nchwc[kp]:
            continue
        into = [kc for kc, at_head in uses if at_head and nchwc[kc]]
        elems = ops[src].out_elems

        def cost(k: int) -> float:  # the reorder as kernel k's one-op model pays it
            return reorder_ms(elems, ms_per_melement, (heads[k].in_elems + heads[k].out_elems) / 2
                              if by_working_set else None)

        for kc in into:
            saved[kc] += cost(kc)
        if len(into) == len(uses):
            saved[kp] += cost(kp)
    return [min(sv, REORDER_CREDIT_CAP * k["cost"]) for sv, k in zip(saved, kernels)]


class Predictor:
    """The regressors, fusion rules and calibration of one profile (refitted from its points)."""

    def __init__(self, prof: dict):
        self.profile = prof
        self.block = profiles.nchwc_block(prof)
        # a profile fitted before whole-block costing keeps the laws it was validated with
        self.models, self.fallback = fit_models({k: v["points"] for k, v in prof["kernels"].items()},
                                                prof.get("cost_unit", "ms"), self.block,
                                                padded_channels=bool(prof.get("padded_channels")))
        self.rules = fusion.fused_rules(prof["fusion"])
        self.overhead = float(prof["overhead"]["cost"])
        # the NCHWc reorder cost the profile measured (``layout``): none in a profile without it
        self.reorder = reorder_rate(prof.get("layout"))
        self.by_working_set = keyed(prof.get("layout"))
        # a profile fitted before clamped activations had a kind of their own costs them as ReLUs, as validated
        self.alias = {} if CLAMPED in prof["kernels"] else {CLAMPED: "relu"}
        cal = prof.get("calibration") or {}
        self.scale = {"compute": float(cal.get("compute", 1.0)), "memory": float(cal.get("memory", 1.0))}

    def op_costs(self, ops: list[Op]) -> tuple[list[float], list[str]]:
        costs = [0.0] * len(ops)
        notes = []
        by_kind: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            by_kind.setdefault(op.kind, []).append(i)
        for kind, idx in by_kind.items():
            if kind not in KERNEL_KINDS:
                notes.append(f"{len(idx)} op(s) of a kind with no kernel model ({kind}): counted as 0")
                continue
            model = self.models.get(kind)
            if model is None:
                notes.append(f"the profile has no {kind} points: its {len(idx)} kernel(s) use the all-kinds linear law")
                model = self.fallback
            for i, c in zip(idx, model.predict([ops[i].spec() for i in idx])):
                costs[i] = float(c)
        return costs, notes

    def run(self, ops: list[Op]) -> dict:
        ops = [replace(op, kind=self.alias[op.kind]) if op.kind in self.alias else op for op in ops]
        costs, notes = self.op_costs(ops)
        kernels = fusion.merge(ops, costs, self.rules)
        for k, saved in zip(kernels, reorders_saved(ops, kernels, self.reorder, self.block, self.by_working_set)):
            if saved:
                k["cost"] -= saved
                k["reorders_saved"] = saved
        sums = {"compute": 0.0, "memory": 0.0}
        for k in kernels:
            sums[group(k["kind"])] += k["cost"]
            k["cost"] *= self.scale[group(k["kind"])]
        return {"total": self.overhead + sum(k["cost"] for k in kernels), "kernels": kernels, "notes": notes,
                "kernel_sums": sums}


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float) -> Predictor:
    return Predictor(profiles.load(path))


_BY_DICT: list[tuple[dict, Predictor]] = []  # profiles given as dicts (kept alive here, so id() stays theirs)


def predictor_for(prof: dict) -> Predictor:
    """The regressors of ``prof``, fitted once per profile file (and modification time) or dict."""
    path = prof.get("_path")
    if path and os.path.isfile(path):
        return _cached(path, os.path.getmtime(path))
    for held, pred in _BY_DICT:
        if held is prof:
            return pred
    _BY_DICT.insert(0, (prof, Predictor(prof)))
    del _BY_DICT[4:]
    return _BY_DICT[0][1]


def ops_of(model, input_size=None) -> tuple[str, list[Op], tuple[int, int]]:
    """(name, ops, (H, W)) of a registered model name, an nn.Module with ``edge_meta``, or an ONNX file."""
    from ..models import parse_input_size

    try:
        import torch

        if isinstance(model, torch.nn.Module):
            meta = getattr(model, "edge_meta", {})
            size = parse_input_size(input_size if input_size is not None else meta.get("input_size", 224))
            return meta.get("name", type(model).__name__), trace_ops(model, size), size
    except ImportError:
        pass
    text = str(model)
    suffix = Path(text).suffix.lower()
    if suffix == ".onnx":
        if not Path(text).is_file():
            raise UsageError(f"ONNX file not found: {text}")
        from .onnx_graph import onnx_ops

        ops, size = onnx_ops(text, parse_input_size(input_size) if input_size is not None else None)
        return Path(text).name, ops, size
    if suffix in (".tflite", ".param", ".pte"):
        raise UsageError(f"edge predict reads registered models and ONNX files so far, not {suffix} files: "
                         "give the model's name or its .onnx export")
    from ..models import get_spec

    spec = get_spec(text)
    size = parse_input_size(input_size if input_size is not None else spec.default_input_size)
    return spec.name, model_ops(spec.name, size), size


def predict(model, input_size=None, profile=None) -> dict:
    """Predicted latency of ``model`` (a registered name, an nn.Module or an .onnx file) at
    ``input_size`` from a device profile (a path, a loaded dict, or None: the default host
    onnxruntime fp32 1-thread profile), with a per-kernel breakdown and the two proxies."""
    prof = profiles.resolve(profile)
    name, ops, size = ops_of(model, input_size)
    got = predictor_for(prof).run(ops)
    tot = totals(ops)
    by_kind: dict[str, dict] = {}
    for k in got["kernels"]:
        agg = by_kind.setdefault(k["kind"], {"count": 0, "cost": 0.0, "macs": 0})
        agg["count"] += 1
        agg["cost"] += k["cost"]
        agg["macs"] += k["macs"]
    total = got["total"]
    if profiles.fitted_busy(prof):
        noisy = prof["noisy"]
        got["notes"].append(f"{noisy['noisy']} of {noisy['points']} timings in this profile were noisy (the machine "
                            "was busy while it was fitted): fit it again on a quiet machine")
    for agg in by_kind.values():
        agg["share"] = agg["cost"] / total if total > 0 else 0.0
    return {
        "model": name, "input_size": list(size), "profile": prof.get("_path"),
        "device": prof.get("device"), "target": prof.get("target"), "engine": prof["engine"],
        "precision": prof["precision"],
        "threads": prof["threads"], "unit": prof["cost_unit"],
        "predicted": total, "fixed_cost": float(prof["overhead"]["cost"]),
        "uncalibrated": float(prof["overhead"]["cost"]) + sum(got["kernel_sums"].values()),
        "calibration": prof.get("calibration") or {"compute": 1.0, "memory": 1.0, "n": 0, "fitted": False},
        "macs": tot["macs"], "memory_access_bytes": tot["memory_access_bytes"],
        "proxies": proxies.evaluate(prof.get("proxies"), tot["macs"], tot["memory_access_bytes"]),
        "laws": {k: (prof.get("proxies") or {}).get(k) for k in ("flops", "macs_memory", "fitted_on")},
        "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]["cost"])),
        "kernels": got["kernels"], "notes": got["notes"],
    }
