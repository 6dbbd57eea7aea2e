"""One regressor per kernel type, and the adaptive sampling that decides what to time next.

A kernel's cost is modelled in two stages. First a roofline-shaped linear law fitted by
non-negative least squares: cost = a * MACs + b * elements moved (inputs, outputs, weights) + c;
it extrapolates sensibly to maps larger than any sampled. (Instruction counts, exact and free of
any cache effect, get one coefficient each for inputs, outputs and weights: packing weights,
reading inputs and writing outputs are different loops, and the counts can tell them apart.
Having no noise, they are fitted for the least relative error, each point weighted by the inverse
of its count: judged by held-out error on the fit's own points, this halved the 90th percentile of
the depthwise law's error, whose small maps the absolute fit sacrificed to the large ones.
Depthwise convs and pools (direct sliding-window kernels) also get a cost per output row and per
output column of every channel: the border handling of the window, which dominates a 7x7 map.
And each (kernel size, stride) of them is its own regime, with its own law once it has
``MIN_REGIME`` points: an engine picks its algorithm by them (ONNX Runtime's MLAS runs a 3x3
stride-1 depthwise conv as a direct kernel at ~11 instructions per output, a stride-2 one as
im2col and a GEMM per channel at ~70).)
Then gradient-boosted trees on the log of the shape features correct it by a factor (channels
per group, map size, stride decide how close a kernel runs to that law); trees cannot
extrapolate, but a bounded factor on top of a law that does is harmless outside the sampled range.

Sampling (``sample``): a few configurations per kind first (round robin, so a short budget still
covers every kind), then, if the plan says so, draws from every stratum of seed shapes (input
map, kernel size, stride; smallest first), then rounds of: fit, time fresh points the fit has not
seen and record its error on them, and spend the round's refinement on neighbours of the worst
points (largest absolute error, or relative error if the plan says so), shared out between kinds
by their absolute error (a 50% miss on a 2 us ReLU matters less than 5% on a 2 ms conv). Every
point, its phase and its error at the time it was tested go into the profile.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import sampling
from .kernels import BLOCKED_KINDS, NCHWC_BLOCK, blocked, padded, spec_counts

N_INIT = 4  # configurations per kind before the first fit
N_TEST = 4  # fresh points per kind and round, predicted before they are timed
REFINE_PER_KIND = 4  # neighbours of the worst points per kind and round, on average
MIN_TREES = 8  # points before the tree correction is fitted
COST_FLOOR = 1e-4  # ms: a kernel never predicts below 0.1 us
FLOORS = {"ms": COST_FLOOR, "instructions": 10.0}  # the least a kernel predicts, per profile cost unit
# the linear law's terms per cost unit (per million MACs / elements; the last is the fixed term)
TERMS = {"ms": ("mmac", "melement", "fixed"), "instructions": ("mmac", "m_in", "m_out", "m_weight", "fixed")}
# Direct sliding-window kernels: rows, columns and regimes apply. A dense conv runs as im2col and a
# GEMM, whose cost follows its MACs and elements; given these terms it fitted its shrunk points better
# and extrapolated AlexNet's 480x640 convs (above the arm plan's MAC cap) 13-19% too high.
SPATIAL_KINDS = ("dwconv", "maxpool", "avgpool")
# Instruction counts only: the host's committed profile and validation were fitted without them
# (a host law with them is to be judged on a quiet machine, not switched on unmeasured).
SPATIAL_TERMS = {"ms": (), "instructions": ("m_row", "m_col")}
MIN_REGIME = 6  # points of one (kernel size, stride) before it gets a law of its own
# Times, too, are fitted for the least relative error: their noise scales with the kernel (a 5% VM
# speed step is 5 us on 100 us, 5 ms on 100 ms), and an absolute fit gave the small kernels up for the
# large ones (held to the first host profile's points: RMSPE over the zoo 28% -> 27%)
RELATIVE_LSQ = {"ms": True, "instructions": True}


def terms(kind: str | None, unit: str = "ms") -> tuple[str, ...]:
    """The linear law's terms for ``kind`` (None: the all-kinds fallback)."""
    base = TERMS[unit]
    return base[:-1] + SPATIAL_TERMS[unit] + base[-1:] if kind in SPATIAL_KINDS else base


def regime(spec: dict, unit: str = "ms", block: int = NCHWC_BLOCK) -> str | None:
    """The (kernel size, stride) regime of a sliding-window spec under counts; timed, the layout a
    conv or pool runs in (``kernels.blocked`` with the engine's ``block``: NCHWc or plain NCHW, each its
    own law); else None."""
    if unit == "ms":
        return ("nchwc" if blocked(spec, block) else "nchw") if spec["kind"] in BLOCKED_KINDS else None
    if not SPATIAL_TERMS[unit] or spec["kind"] not in SPATIAL_KINDS:
        return None
    return f"k{int(spec.get('k', 1))}_s{int(spec.get('stride', 1))}"


def features(spec: dict, unit: str = "ms", block: int = NCHWC_BLOCK, pad: bool = True) -> list[float]:
    """What the tree correction sees. Instruction counts also get the channels per group: a grouped
    conv runs one GEMM per group, and its tiling (instructions per MAC) follows those sizes; times
    get whether the channels are whole NCHWc blocks (``kernels.blocked``) and, with ``pad``, a blocked
    conv's counts as the engine computes them (``kernels.padded``, as the law's)."""
    if unit == "ms" and pad:
        spec = padded(spec, block)
    c = spec_counts(spec)
    g = max(1, int(spec.get("groups", 1)))
    out = [c["macs"], c["in_elems"], c["out_elems"], c["weights"], int(spec["cin"]), int(spec["cout"]),
           g, c["oh"] * c["ow"], int(spec.get("k", 1)), int(spec.get("stride", 1))]
    return out + [int(blocked(spec, block))] if unit == "ms" else out + [int(spec["cin"]) // g, int(spec["cout"]) // g]


def _linear_rows(specs: list[dict], names: tuple[str, ...], block: int = 0) -> np.ndarray:
    """The law's terms of each spec; with an NCHWc ``block`` (times), as the engine computes it: a
    blocked conv's channels padded to whole blocks (``kernels.padded``). Fitted on counts as given, the
    laws of this AVX-512 host under-predicted the zoo's 24- and 116-channel convs by 17-42%: the
    sampled points keep whole blocks, and the zoo's odd counts do a block's work."""
    rows = []
    for s in specs:
        s = padded(s, block) if block else s
        c = spec_counts(s)
        cout = int(s["cout"])
        value = {"mmac": c["macs"], "melement": c["in_elems"] + c["out_elems"] + c["weights"], "m_in": c["in_elems"],
                 "m_out": c["out_elems"], "m_weight": c["weights"], "m_row": cout * c["oh"], "m_col": cout * c["ow"]}
        rows.append([value[t] / 1e6 for t in names[:-1]] + [1.0])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(names))


class KernelModel:
    """cost(spec) for one kernel kind (see the module docstring), fitted on (spec, cost) points
    in ``unit`` (a profile's ``cost_unit``) on an engine of NCHWc ``block`` (``kernels.blocked``)."""

    def __init__(self, specs: list[dict], costs: list[float], trees: bool = True, unit: str = "ms",
                 kind: str | None = None, block: int = NCHWC_BLOCK, padded_channels: bool = True):
        from scipy.optimize import nnls

        self.n = len(specs)
        self.unit = unit
        self.block = int(block)
        # times on an NCHWc engine: channels as whole blocks (``_linear_rows``); counts under qemu have no NCHWc,
        # and a profile fitted before this kept its laws on the counts as given (``padded_channels``)
        self.pad_block = self.block if unit == "ms" and padded_channels else 0
        self.floor = FLOORS[unit]
        if kind is None:  # one kind's points get its terms; mixed kinds (the fallback) the common ones
            kind = specs[0]["kind"] if specs and all(s["kind"] == specs[0]["kind"] for s in specs) else None
        self.terms = terms(kind, unit)
        y = np.asarray(costs, dtype=np.float64)
        X = _linear_rows(specs, self.terms, self.pad_block)
        # each point weighs by its relative error (RELATIVE_LSQ): a count is exact, so a 7x7 kernel's 30% is no
        # noise and matters as much as a large map's; a time's noise scales with the kernel
        Xw, yw = (X / np.maximum(y, self.floor)[:, None], np.ones_like(y)) if RELATIVE_LSQ[unit] else (X, y)
        self.coef = nnls(Xw, yw)[0] if self.n else np.zeros(len(self.terms))
        self.regimes: dict[str, tuple[np.ndarray, int]] = {}  # regime -> (its law, its points)
        of = [regime(s, unit, self.block) for s in specs]
        for r in sorted({r for r in of if r is not None}):
            idx = [i for i, q in enumerate(of) if q == r]
            if len(idx) >= MIN_REGIME:
                self.regimes[r] = (nnls(Xw[idx], yw[idx])[0], len(idx))
        self.trees = None
        if trees and self.n >= MIN_TREES:
            from sklearn.ensemble import GradientBoostingRegressor

            base = np.maximum(self._base(specs), self.floor)
            target = np.log(np.maximum(y, self.floor) / base)
            self.trees = GradientBoostingRegressor(n_estimators=120, max_depth=3, learning_rate=0.08, subsample=1.0,
                                                   random_state=0).fit(self._logs(specs), target)

    def _base(self, specs: list[dict]) -> np.ndarray:
        """The linear law of each spec's regime (the pooled one for a regime with too few points)."""
        X = _linear_rows(specs, self.terms, self.pad_block)
        base = X @ self.coef
        for i, s in enumerate(specs):
            own = self.regimes.get(regime(s, self.unit, self.block))
            if own is not None:
                base[i] = X[i] @ own[0]
        return base

    def _logs(self, specs: list[dict]) -> np.ndarray:
        return np.log1p(np.asarray([features(s, self.unit, self.block, pad=bool(self.pad_block)) for s in specs],
                                   dtype=np.float64))

    def predict(self, specs: list[dict]) -> np.ndarray:
        if not specs:
            return np.zeros(0)
        base = np.maximum(self._base(specs), self.floor)
        if self.trees is None:
            return base
        return base * np.exp(np.clip(self.trees.predict(self._logs(specs)), -3.0, 3.0))

    def law(self) -> dict:
        u = self.unit

        def named(coef) -> dict:
            return {(f"{u}_fixed" if t == "fixed" else f"{u}_per_{t}"): float(c) for t, c in zip(self.terms, coef)}

        out = {**named(self.coef), "points": self.n, "trees": self.trees is not None}
        if self.regimes:
            out["regimes"] = {r: {**named(c), "points": n} for r, (c, n) in self.regimes.items()}
        return out


def fit_models(points: dict[str, list[dict]], unit: str = "ms", block: int = NCHWC_BLOCK,
               padded_channels: bool = True) -> tuple[dict[str, KernelModel], KernelModel]:
    """One model per kind with points, and one over every point (for a kind the profile lacks).
    ``padded_channels``: blocked convs costed on whole blocks (``KernelModel``; a profile's own flag)."""
    models = {k: KernelModel([p["spec"] for p in pts], [p["cost"] for p in pts], unit=unit, block=block,
                             padded_channels=padded_channels)
              for k, pts in points.items() if pts}
    every = [p for pts in points.values() for p in pts]
    # one linear law across kinds: a floor, not a guess dressed as a fit
    fallback = KernelModel([p["spec"] for p in every], [p["cost"] for p in every], trees=False, unit=unit, block=block,
                           padded_channels=padded_channels)
    return models, fallback


def sample(measure, seeds: dict[str, list[dict]], kinds: list[str], deadline: float, rng, progress=None,
           clock=time.perf_counter, plan=None, unit: str = "ms") -> dict[str, list[dict]]:
    """Time kernel configurations until ``deadline`` (``clock()`` seconds); points per kind.
    ``plan``: where to draw (``sampling.Plan``; default the host's); ``unit``: the measurer's cost unit."""
    points: dict[str, list[dict]] = {k: [] for k in kinds}

    def take(kind: str, spec: dict, phase: str, predicted: float | None = None) -> dict | None:
        m = measure([spec])
        if m is None:  # this configuration failed to export or run (the measurer kept the error)
            return None
        pt = {"spec": spec, "cost": m["cost"], "raw": m["raw"], "phase": phase, "stability": m["stability"]}
        if predicted is not None:
            pt["predicted"] = float(predicted)
            pt["abs_error"] = abs(float(predicted) - m["cost"])
        points[kind].append(pt)
        if progress:
            progress(kind, phase, len(points[kind]))
        return pt

    if not kinds:
        return points
    for _ in range(N_INIT):
        for kind in kinds:
            if clock() >= deadline:
                return points
            take(kind, sampling.draw(kind, seeds, rng, plan), "initial")
    cover = {k: sampling.strata(seeds[k]) for k in kinds}
    for _ in range(plan.cover if plan else 0):  # one draw per stratum and round, round robin over kinds
        for i in range(max(len(s) for s in cover.values())):
            for kind in kinds:
                if i < len(cover[kind]):
                    if clock() >= deadline:
                        return points
                    take(kind, sampling.draw(kind, seeds, rng, plan, pool=cover[kind][i]), "cover")
    relative = bool(plan and plan.refine_by == "rel")
    while clock() < deadline:
        tested: dict[str, list[dict]] = {}
        for kind in kinds:
            model = KernelModel([p["spec"] for p in points[kind]], [p["cost"] for p in points[kind]], unit=unit,
                                block=plan.block if plan else NCHWC_BLOCK)
            fresh = [sampling.draw(kind, seeds, rng, plan) for _ in range(N_TEST)]
            for spec, pred in zip(fresh, model.predict(fresh)):
                if clock() >= deadline:
                    return points
                pt = take(kind, spec, "test", pred)
                if pt is not None:
                    tested.setdefault(kind, []).append(pt)
        err = {k: float(np.mean([p["abs_error"] for p in pts])) for k, pts in tested.items()}
        total = sum(err.values()) or 1.0
        budget = REFINE_PER_KIND * len(kinds)
        for kind in sorted(err, key=lambda k: -err[k]):
            n = min(3 * REFINE_PER_KIND, int(math.ceil(budget * err[kind] / total)))
            worst = sorted(tested[kind], key=lambda p: -p["abs_error"] / (max(p["cost"], FLOORS[unit]) if relative
                                                                          else 1.0))[:2]
            for i in range(n):
                if clock() >= deadline:
                    return points
                take(kind, sampling.neighbours(worst[i % len(worst)]["spec"], rng, 1, plan)[0], "refine")
    return points


def held_out_errors(points: dict[str, list[dict]], unit: str = "ms") -> dict[str, dict]:
    """Per kind: how far the fit was off on the points it had not seen yet (its held-out error).
    ``median_rel``: relative to the kernel's own cost; ``median_rel_of_raw``: to its whole run."""
    out = {}
    for kind, pts in points.items():
        tested = [p for p in pts if p["phase"] == "test" and p["cost"] > 0]
        if tested:
            rel = [abs(p["predicted"] - p["cost"]) / max(p["raw"], FLOORS[unit]) for p in tested]
            own = [abs(p["predicted"] - p["cost"]) / max(p["cost"], FLOORS[unit]) for p in tested]
            out[kind] = {"n": len(tested), f"median_abs_{unit}": float(np.median([p["abs_error"] for p in tested])),
                         "median_rel_of_raw": float(np.median(rel)), "median_rel": float(np.median(own))}
    return out
