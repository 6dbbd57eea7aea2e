"""Bootstrap intervals over the timed runs for every ratio and fit a report claims, and the words
that set them beside the paper.

Each file's per-run samples (``samples_ms`` in its bench record) are resampled with replacement,
the medians recomputed, and the claim (a ratio of two medians, the exponent of a power law over
several) recomputed from them, ``N_BOOT`` times; the 2.5th and 97.5th percentiles are the 95%
interval. Instruction counts under emulation repeat exactly: their intervals are points.
"""
from __future__ import annotations

import numpy as np

N_BOOT = 1000
LEVEL = 0.95
# The 4x law is "inconclusive" when its interval is wider than +-0.3x (issue 14's quiet-run bound);
# a ratio or a speed comparison when its interval is wider than +-10% of its value.
LAW_MAX_HALFWIDTH = 0.3
RATIO_MAX_REL_HALFWIDTH = 0.10
QUIETER = ("rerun on an idle machine (nothing else running; `edge bench --cpus` to pin), or give each file longer "
           "with --max-seconds")


def cost(rec: dict) -> float:
    """The figure a study compares: instructions per inference under emulation, else p50 ms."""
    if rec.get("device", {}).get("emulated") and rec.get("instructions_per_inference"):
        return float(rec["instructions_per_inference"])
    return float(rec["latency_ms"]["p50"])


def boot_medians(rec: dict, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray | None:
    """``n_boot`` bootstrap medians of one record's cost (ms; instructions repeat exactly)."""
    if rec.get("device", {}).get("emulated") and rec.get("instructions_per_inference"):
        return np.full(n_boot, float(rec["instructions_per_inference"]))
    s = rec.get("samples_ms")
    if not s:
        return None
    a = np.asarray(s, dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    step = max(1, 2_000_000 // len(a))
    for i in range(0, n_boot, step):
        k = min(step, n_boot - i)
        out[i:i + k] = np.median(a[rng.integers(0, len(a), size=(k, len(a)))], axis=1)
    # a record whose samples were thinned keeps its own median as the centre
    return out * (cost(rec) / float(np.median(a))) if np.median(a) > 0 else out


def interval(values: np.ndarray) -> list[float]:
    tail = (1 - LEVEL) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def fit_k_boot(macs: list[float], boots: list[np.ndarray]) -> np.ndarray:
    """The power-law exponent for each bootstrap replicate (least squares in log-log, vectorized)."""
    lx = np.log(np.asarray(macs, dtype=np.float64))
    ly = np.log(np.vstack(boots))  # points x replicates
    lxc = lx - lx.mean()
    return (lxc[:, None] * (ly - ly.mean(axis=0))).sum(axis=0) / (lxc ** 2).sum()


def compare(paper_value: float | None, value: float, ci: list[float] | None, max_halfwidth: float,
            more: str = "faster", less: str = "slower") -> str:
    """agrees / faster / slower / inconclusive: the paper's value against our interval."""
    if paper_value is None:
        return "n/a"
    if ci is None:
        return "inconclusive (no per-run samples to bound it)"
    lo, hi = ci
    if (hi - lo) / 2 > max_halfwidth:
        return f"inconclusive (interval too wide: {QUIETER})"
    if lo <= paper_value <= hi:
        return "agrees"
    return more if lo > paper_value else less


def faster_slower_overlap(a: list[float], b: list[float]) -> int:
    """-1 if interval ``a`` lies wholly below ``b``, 1 if wholly above, 0 if they overlap."""
    if a[1] < b[0]:
        return -1
    if a[0] > b[1]:
        return 1
    return 0
