"""How much of the latency variance across the Table 8 models MACs explain, and how much the
kernel predictor (``edge predict``) explains, per fitted configuration.

Both as R^2 in log space, the measure the power-law fits already report: for MACs it is that fit's
own R^2 (a * MACs^k fitted on these very points, so in-sample); for the predictor nothing is
fitted on them (its profile was made from micro-models only). RMSPE beside each. A configuration
whose device profile is missing is listed with the command that makes one; nothing fails.
"""
from __future__ import annotations

import math

import numpy as np


def log_r2(measured, predicted) -> float | None:
    y, p = np.log(np.asarray(measured, dtype=np.float64)), np.log(np.asarray(predicted, dtype=np.float64))
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - p) ** 2).sum()) / total if total > 0 else None


def rmspe(measured, predicted) -> float:
    m, p = np.asarray(measured, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    return float(math.sqrt(np.mean(((p - m) / m) ** 2)))


def explained(t8: dict, device: str = "host") -> dict:
    """{"groups": [per configuration: R^2 and RMSPE of both], "missing": [profiles to make, and how]}."""
    from ..errors import EdgeError
    from ..export.formats import get_format
    from ..predict import predict, profile as profiles

    groups, missing = [], {}
    for fitd in t8.get("fits", []):
        f, p, t, size = fitd["format"], fitd["precision"], int(fitd["threads"]), list(fitd["input_size"])
        rows = [r for r in t8["rows"] if r.get("table8") and r["format"] == f and r["precision"] == p
                and int(r["threads"]) == t and list(r["input_size"]) == size and r["cost"] > 0]
        engine = get_format(f).runtime
        name = profiles.file_name(device, engine, p, t)
        how = (f"edge predict fit --device {device} --format {f} --precision {p} --threads {t}, then rerun this "
               "study")
        path = profiles.find(device, engine, p, t)
        if path is None:
            missing[name] = {"profile": name, "why": "no such profile", "make": how}
            continue
        try:
            prof = profiles.load(path)
            if prof["cost_unit"] != t8.get("unit", "ms"):
                missing[name] = {"profile": name, "why": f"it predicts {prof['cost_unit']}, this study measured "
                                                         f"{t8.get('unit')}", "make": how}
                continue
            preds = [predict(r["model"], size, prof)["predicted"] for r in rows]
        except EdgeError as exc:
            missing[name] = {"profile": name, "why": str(exc), "make": how}
            continue
        costs = [r["cost"] for r in rows]
        law = [fitd["a"] * r["macs"] ** fitd["k"] for r in rows]
        groups.append({"format": f, "precision": p, "threads": t, "input_size": size, "profile": str(path),
                       "n": len(rows), "r2_macs": log_r2(costs, law), "r2_predictor": log_r2(costs, preds),
                       "rmspe_macs": rmspe(costs, law), "rmspe_predictor": rmspe(costs, preds),
                       "models": [{"model": r["model"], "cost": c, "predicted": q, "macs_law": m}
                                  for r, c, q, m in zip(rows, costs, preds, law)]})
    return {"groups": groups, "missing": list(missing.values())}
