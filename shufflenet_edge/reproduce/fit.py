"""The arithmetic the v1 paper argues with: power-law fits, speedup ratios, "4x -> X.Xx".

If latency = a * MACs^k, a model with 4x fewer MACs runs 4^k times faster: k = 1 means FLOPs
predict speed exactly, k < 1 means small models waste part of their saving (the paper's ~2.6x
per 4x is k = log 2.6 / log 4 = 0.69).
"""
from __future__ import annotations

import math

import numpy as np

from . import paper


def fit_power_law(xs, ys) -> dict:
    """Least squares of log y = log a + k log x: {"a", "k", "r2", "n", "speedup_per_4x"}."""
    x = np.asarray(list(xs), dtype=np.float64)
    y = np.asarray(list(ys), dtype=np.float64)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError("a power-law fit needs at least two (x, y) points")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power-law fit needs positive values")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise ValueError("a power-law fit needs at least two different x values")
    k, loga = np.polyfit(lx, ly, 1)
    resid = ly - (loga + k * lx)
    total = ((ly - ly.mean()) ** 2).sum()
    r2 = 1.0 - (resid ** 2).sum() / total if total > 0 else 1.0
    return {"a": float(math.exp(loga)), "k": float(k), "r2": float(r2), "n": int(len(x)),
            "speedup_per_4x": speedup_per_4x(float(k))}


def speedup_per_4x(k: float) -> float:
    """Actual speedup of a 4x theoretical reduction under latency ~ MACs^k."""
    return 4.0 ** k


def k_for_speedup(speedup: float) -> float:
    return math.log(speedup) / math.log(4.0)


def law_sentence(k: float, where: str = "this device", unit: str = "actual speedup") -> str:
    """The paper's sentence with our exponent in it."""
    return f"on {where} every 4x theoretical reduction gives {speedup_per_4x(k):.1f}x {unit}"


def ratio(big: float, small: float) -> float | None:
    return float(big) / float(small) if big and small else None


def speedup_ratios(macs: dict, cost: dict, pairs=paper.RATIO_PAIRS) -> list[dict]:
    """Theoretical (MACs) vs actual (cost) speedup for each (slow, fast, label) pair present in both dicts."""
    out = []
    for slow, fast, label in pairs:
        if slow in macs and fast in macs and slow in cost and fast in cost:
            out.append({"pair": label, "slow": slow, "fast": fast,
                        "theoretical": ratio(macs[slow], macs[fast]), "actual": ratio(cost[slow], cost[fast])})
    return out


def paper_ratios(size) -> list[dict]:
    """The same ratios from Table 8's own MFLOPs and Snapdragon 820 times at ``size``."""
    mflops = {m: v["mflops"] for m, v in paper.TABLE8.items()}
    ms = {m: paper.table8_ms(m, size) for m in paper.TABLE8}
    return speedup_ratios(mflops, {m: t for m, t in ms.items() if t})


def paper_fits() -> list[dict]:
    """Power laws of the published points: Table 8 per resolution, and each ncnn ARM device at 224."""
    out = []
    for i, size in enumerate(paper.RESOLUTIONS):
        f = fit_power_law([v["mflops"] for v in paper.TABLE8.values()], [v["ms"][i] for v in paper.TABLE8.values()])
        out.append({"source": f"v1 paper Table 8, {paper.TABLE8_DEVICE}", "resolution": list(size), **f})
    for device, times in paper.NCNN.items():
        f = fit_power_law([paper.NCNN_MFLOPS[m] for m in paper.NCNN_MODELS], times)
        out.append({"source": f"ncnn, {device}", "resolution": [224, 224], **f})
    return out


def kendall_tau(a, b) -> float | None:
    """Rank agreement of two equally long sequences (1 = same order, -1 = reversed); ties count 0."""
    a, b = list(a), list(b)
    n = len(a)
    if n < 2 or len(b) != n:
        return None
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += int(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]))
    return s / (n * (n - 1) / 2)
