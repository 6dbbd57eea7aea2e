"""One regressor per kernel type, and the adaptive sampling that decides what to time next.

A kernel's cost is modelled in two stages. First a roofline-shaped linear law fitted by
non-negative least squares: cost = a * MACs + b * elements moved (inputs, outputs, weights) + c;
it extrapolates sensibly to maps larger than any sampled. (Instruction counts, exact and free of
any cache effect, get one coefficient each for inputs, outputs and weights: packing weights,
reading inputs and writing outputs are different loops, and the counts can tell them apart.)
Then gradient-boosted trees on the log of the shape features correct it by a factor (channels
per group, map size, stride decide how close a kernel runs to that law); trees cannot
extrapolate, but a bounded factor on top of a law that does is harmless outside the sampled range.

Sampling (``sample``): a few configurations per kind first (round robin, so a short budget still
covers every kind), then rounds of: fit, time fresh points the fit has not seen and record its
error on them, and spend the round's refinement on neighbours of the worst points, shared out
between kinds by their absolute error (a 50% miss on a 2 us ReLU matters less than 5% on a 2 ms
conv). Every point, its phase and its error at the time it was tested go into the profile.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import sampling
from .kernels import spec_counts

N_INIT = 4  # configurations per kind before the first fit
N_TEST = 4  # fresh points per kind and round, predicted before they are timed
REFINE_PER_KIND = 4  # neighbours of the worst points per kind and round, on average
MIN_TREES = 8  # points before the tree correction is fitted
COST_FLOOR = 1e-4  # ms: a kernel never predicts below 0.1 us
FLOORS = {"ms": COST_FLOOR, "instructions": 10.0}  # the least a kernel predicts, per profile cost unit
# the linear law's terms per cost unit (per million MACs / elements; the last is the fixed term)
TERMS = {"ms": ("mmac", "melement", "fixed"), "instructions": ("mmac", "m_in", "m_out", "m_weight", "fixed")}


def features(spec: dict, unit: str = "ms") -> list[float]:
    """What the tree correction sees. Instruction counts also get the channels per group: a grouped
    conv runs one GEMM per group, and its tiling (instructions per MAC) follows those sizes."""
    c = spec_counts(spec)
    g = max(1, int(spec.get("groups", 1)))
    out = [c["macs"], c["in_elems"], c["out_elems"], c["weights"], int(spec["cin"]), int(spec["cout"]),
           g, c["oh"] * c["ow"], int(spec.get("k", 1)), int(spec.get("stride", 1))]
    return out if unit == "ms" else out + [int(spec["cin"]) // g, int(spec["cout"]) // g]


def _linear_rows(specs: list[dict], unit: str = "ms") -> np.ndarray:
    rows = []
    for s in specs:
        c = spec_counts(s)
        if len(TERMS[unit]) == 3:
            rows.append([c["macs"] / 1e6, (c["in_elems"] + c["out_elems"] + c["weights"]) / 1e6, 1.0])
        else:
            rows.append([c["macs"] / 1e6, c["in_elems"] / 1e6, c["out_elems"] / 1e6, c["weights"] / 1e6, 1.0])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(TERMS[unit]))


class KernelModel:
    """cost(spec) for one kernel kind (see the module docstring), fitted on (spec, cost) points
    in ``unit`` (a profile's ``cost_unit``)."""

    def __init__(self, specs: list[dict], costs: list[float], trees: bool = True, unit: str = "ms"):
        from scipy.optimize import nnls

        self.n = len(specs)
        self.unit = unit
        self.floor = FLOORS[unit]
        y = np.asarray(costs, dtype=np.float64)
        X = _linear_rows(specs, unit)
        self.coef = nnls(X, y)[0] if self.n else np.zeros(len(TERMS[unit]))
        self.trees = None
        if trees and self.n >= MIN_TREES:
            from sklearn.ensemble import GradientBoostingRegressor

            base = np.maximum(X @ self.coef, self.floor)
            target = np.log(np.maximum(y, self.floor) / base)
            self.trees = GradientBoostingRegressor(n_estimators=120, max_depth=3, learning_rate=0.08, subsample=1.0,
                                                   random_state=0).fit(self._logs(specs, unit), target)

    @staticmethod
    def _logs(specs: list[dict], unit: str = "ms") -> np.ndarray:
        return np.log1p(np.asarray([features(s, unit) for s in specs], dtype=np.float64))

    def predict(self, specs: list[dict]) -> np.ndarray:
        if not specs:
            return np.zeros(0)
        base = np.maximum(_linear_rows(specs, self.unit) @ self.coef, self.floor)
        if self.trees is None:
            return base
        return base * np.exp(np.clip(self.trees.predict(self._logs(specs, self.unit)), -3.0, 3.0))

    def law(self) -> dict:
        u = self.unit
        law = {(f"{u}_fixed" if t == "fixed" else f"{u}_per_{t}"): float(c) for t, c in zip(TERMS[u], self.coef)}
        return {**law, "points": self.n, "trees": self.trees is not None}


def fit_models(points: dict[str, list[dict]], unit: str = "ms") -> tuple[dict[str, KernelModel], KernelModel]:
    """One model per kind with points, and one over every point (for a kind the profile lacks)."""
    models = {k: KernelModel([p["spec"] for p in pts], [p["cost"] for p in pts], unit=unit)
              for k, pts in points.items() if pts}
    every = [p for pts in points.values() for p in pts]
    # one linear law across kinds: a floor, not a guess dressed as a fit
    fallback = KernelModel([p["spec"] for p in every], [p["cost"] for p in every], trees=False, unit=unit)
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
    while clock() < deadline:
        tested: dict[str, list[dict]] = {}
        for kind in kinds:
            model = KernelModel([p["spec"] for p in points[kind]], [p["cost"] for p in points[kind]], unit=unit)
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
            worst = sorted(tested[kind], key=lambda p: -p["abs_error"])[:2]
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
