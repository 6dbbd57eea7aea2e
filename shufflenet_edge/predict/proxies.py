"""The two proxies the kernel predictor is set beside, fitted on the same device and the same kind of data.

- FLOPs-only: cost = a * MACs^k (the v1 paper's law; k < 1 when small models waste part of their
  saving), least squares in log-log.
- MACs + memory access: cost = a * MACs + b * bytes moved + c (the v2 paper's point that memory
  access cost matters besides FLOPs), non-negative least squares.

Both are fitted on the composite networks the fit times (random stacks of the zoo's units, no zoo
model); a profile made with too short a budget for any composite fits them on the kernel points
instead, and says so (``fitted_on``).
"""
from __future__ import annotations

import math

import numpy as np


def fit_flops_law(macs, costs) -> dict | None:
    x = np.asarray(macs, dtype=np.float64)
    y = np.asarray(costs, dtype=np.float64)
    keep = (x > 0) & (y > 0)
    if keep.sum() < 2 or np.ptp(np.log(x[keep])) == 0:
        return None
    A = np.stack([np.ones(keep.sum()), np.log(x[keep])], axis=1)
    (loga, k), *_ = np.linalg.lstsq(A, np.log(y[keep]), rcond=None)
    return {"a": float(math.exp(loga)), "k": float(k), "n": int(keep.sum())}


def fit_macs_memory_law(macs, mem_bytes, costs, unit: str = "ms") -> dict | None:
    """Keys name the unit (``ms_per_gmac`` ...; ``instructions_per_gmac`` ... for a qemu profile)."""
    from scipy.optimize import nnls

    if len(costs) < 3:
        return None
    X = np.stack([np.asarray(macs, dtype=np.float64) / 1e9, np.asarray(mem_bytes, dtype=np.float64) / 1e6,
                  np.ones(len(costs))], axis=1)
    coef = nnls(X, np.asarray(costs, dtype=np.float64))[0]
    law = {f"{unit}_per_gmac": float(coef[0]), f"{unit}_per_mb": float(coef[1]), f"{unit}_fixed": float(coef[2]),
           "n": len(costs)}
    return law if unit == "ms" else {**law, "unit": unit}


def flops_law(law: dict | None, macs: float) -> float | None:
    if not law or macs <= 0:
        return None
    return float(law["a"] * macs ** law["k"])


def macs_memory_law(law: dict | None, macs: float, mem_bytes: float) -> float | None:
    if not law:
        return None
    u = law.get("unit", "ms")
    return float(law[f"{u}_per_gmac"] * macs / 1e9 + law[f"{u}_per_mb"] * mem_bytes / 1e6 + law[f"{u}_fixed"])


def fit(points: list[dict], fitted_on: str, unit: str = "ms") -> dict:
    """Both laws from points with ``macs``, ``memory_access_bytes`` and ``cost`` (whole-run cost)."""
    macs = [p["macs"] for p in points]
    mem = [p["memory_access_bytes"] for p in points]
    cost = [p["cost"] for p in points]
    return {"fitted_on": fitted_on, "flops": fit_flops_law(macs, cost),
            "macs_memory": fit_macs_memory_law(macs, mem, cost, unit)}


def evaluate(proxies: dict | None, macs: float, mem_bytes: float) -> dict:
    proxies = proxies or {}
    return {"flops": flops_law(proxies.get("flops"), macs),
            "macs_memory": macs_memory_law(proxies.get("macs_memory"), macs, mem_bytes)}
