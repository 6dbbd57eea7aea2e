"""``edge predict validate``: predict, then measure, a fixed set of models the fit never timed.

Each model is exported through the bench's cache and timed by ``shufflenet_edge.bench.bench``
(the same record, stability verdict included, as ``edge bench --model``). Reported per predictor
(the kernel predictor and the profile's two proxy laws, plus a FLOPs law fitted on these very
measurements, the best any a * MACs^k can do here): the share of models within +-5% and +-10%
and the RMSPE (root mean square of the relative errors).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..errors import EdgeError, UsageError
from . import profile as profiles

VALIDATION_MODELS = ("v1_g1_0.5x", "v1_g1", "v1_g1_2.0x", "v1_g3_0.5x", "v1_g3", "v1_g3_2.0x", "v1_g8_0.5x", "v1_g8",
                     "v1_g8_2.0x", "v2_0.5x", "v2_1.0x", "v2_1.5x", "v2_2.0x", "mobilenet_v1_0.5x",
                     "mobilenet_v1_1.0x", "mobilenet_v2", "alexnet")
VALIDATION_SIZES = ((224, 224), (480, 640))
PREDICTORS = ("predicted", "flops", "macs_memory", "flops_fitted_here")
LABELS = {"predicted": "kernel predictor", "flops": "FLOPs law a*MACs^k (profile)",
          "macs_memory": "MACs + memory law (profile)", "flops_fitted_here": "FLOPs law fitted on these measurements"}
# the acceptance bars (onnxruntime fp32, 1 thread, on the host)
WITHIN_10_GOAL = 0.90
RMSPE_FACTOR_GOAL = 3.0


def metrics(measured, predicted) -> dict:
    pairs = [(m, p) for m, p in zip(measured, predicted) if p is not None and m and m > 0]
    if not pairs:
        return {"n": 0, "within_5": None, "within_10": None, "rmspe": None}
    rel = np.asarray([(p - m) / m for m, p in pairs])
    return {"n": len(pairs), "within_5": float(np.mean(np.abs(rel) <= 0.05)),
            "within_10": float(np.mean(np.abs(rel) <= 0.10)), "rmspe": float(math.sqrt(np.mean(rel ** 2)))}


def validate(profile=None, models=VALIDATION_MODELS, sizes=VALIDATION_SIZES, out=None, max_seconds: float = 5.0,
             progress: bool = True) -> dict:
    from ..bench import bench
    from ..io_utils import write_json
    from .predictor import predict
    from .proxies import fit_flops_law, flops_law

    prof = profiles.resolve(profile)
    if prof.get("device") != "host":
        raise UsageError(f"edge predict validate measures on this host; {prof.get('_path')} is a "
                         f"{prof.get('device')} profile")
    out = Path(out) if out else profiles.user_dir()
    rows, failures = [], []
    for size in sizes:
        for m in models:
            try:
                pred = predict(m, size, prof)
                recs = bench(model=m, format=prof["format"], precision=prof["precision"], input_size=list(size),
                             threads=(prof["threads"],), max_seconds=max_seconds, quiet=True)
            except EdgeError as exc:  # one model that cannot be built or run: noted, the rest goes on
                failures.append({"model": m, "input_size": list(size), "error": str(exc)})
                continue
            r = recs[0]
            row = {"model": m, "input_size": list(size), "macs": pred["macs"], "measured": r["latency_ms"]["p50"],
                   "stability": r["stability"]["verdict"], "predicted": pred["predicted"], **pred["proxies"]}
            rows.append(row)
            if progress:
                print(f"validate: {m} {size[0]}x{size[1]}: measured {row['measured']:.2f} ms, "
                      f"predicted {row['predicted']:.2f} ms", file=sys.stderr)
    here = fit_flops_law([r["macs"] for r in rows], [r["measured"] for r in rows])
    for r in rows:
        r["flops_fitted_here"] = flops_law(here, r["macs"])
    summary = {k: metrics([r["measured"] for r in rows], [r.get(k) for r in rows]) for k in PREDICTORS}
    kern, flops = summary["predicted"], summary["flops"]
    acceptance = {
        "within_10_goal": WITHIN_10_GOAL, "within_10": kern["within_10"],
        "rmspe_factor_goal": RMSPE_FACTOR_GOAL,
        "rmspe_factor": (flops["rmspe"] / kern["rmspe"]) if kern["rmspe"] and flops["rmspe"] else None,
    }
    acceptance["met"] = bool(kern["within_10"] is not None and kern["within_10"] >= WITHIN_10_GOAL
                             and acceptance["rmspe_factor"] and acceptance["rmspe_factor"] >= RMSPE_FACTOR_GOAL)
    stem = "validate_" + Path(prof.get("_path") or "profile.json").stem
    result = {"profile": prof.get("_path"), "engine": prof["engine"], "precision": prof["precision"],
              "threads": prof["threads"], "machine": prof.get("machine"), "flops_law_fitted_here": here,
              "summary": summary, "acceptance": acceptance, "rows": rows, "failures": failures}
    out.mkdir(parents=True, exist_ok=True)
    result["plot"] = plot(result, out / f"{stem}.png") if rows else None
    result["path"] = str(write_json(out / f"{stem}.json", result))
    return result


def plot(result: dict, path: Path) -> str:
    """Predicted against measured, log-log, one marker per predictor, with the +-10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_path

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    meas = [r["measured"] for r in rows]
    lo, hi = min(meas) / 1.5, max(meas) * 1.5
    xs = np.geomspace(lo, hi, 50)
    ax.plot(xs, xs, color="black", lw=1)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.85", label="+-10%")
    for key, marker in zip(PREDICTORS, ("o", "x", "^", "s")):
        pts = [(r["measured"], r[key]) for r in rows if r.get(key)]
        if pts:
            s = result["summary"][key]
            ax.scatter(*zip(*pts), marker=marker, s=22, label=f"{LABELS[key]}: {s['within_10']:.0%} within +-10%, "
                                                               f"RMSPE {s['rmspe']:.1%}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured p50 latency (ms)")
    ax.set_ylabel("predicted (ms)")
    ax.set_title(f"{result['engine']['name']} {result['precision']}, {result['threads']} thread(s)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path.name
