"""One CPU peak per run and precision: the best of the GEMM peaks the run's files measured.

Each ``edge bench`` call measures the peak once (best of a few GEMMs of that precision). On a VM
whose speed steps by a third within minutes (the cold run of 2026-12-01: fp32 peaks of 32.4 to 44.1
GMAC/s over its 166 fp32 files), a file measured during a slow step gets a low peak, and a dense
micro-benchmark's ``fraction_of_peak`` then passes 1. A run's files share one machine, so the run's
best figure is its peak; each record keeps the peak it measured as ``cpu_peak_gmacs_file``.
"""
from __future__ import annotations


def _precision(rec: dict) -> str:
    return rec.get("cpu_peak_precision") or "fp32"


def run_peaks(records: list[dict]) -> dict:
    """{precision: the best peak any record of the run measured}."""
    best: dict = {}
    for r in records:
        peak = r.get("cpu_peak_gmacs_file", r.get("cpu_peak_gmacs"))
        if peak:
            best[_precision(r)] = max(best.get(_precision(r), 0.0), float(peak))
    return best


def apply_run_peak(records: list[dict]) -> dict:
    """Rescale every record's ``fraction_of_peak`` to the run's peak of its precision (in place, each
    record once however many sections share it); returns the peaks. Idempotent."""
    best = run_peaks(records)
    seen: set = set()
    for r in records:
        if id(r) in seen:
            continue
        seen.add(id(r))
        peak = best.get(_precision(r))
        if not peak or not r.get("cpu_peak_gmacs"):
            continue
        r.setdefault("cpu_peak_gmacs_file", r["cpu_peak_gmacs"])
        r["cpu_peak_gmacs"], r["cpu_peak_scope"] = round(peak, 3), "run"
        if r.get("gmacs_per_s"):
            frac = r["gmacs_per_s"] / (peak * (r.get("threads") or 1))
            r["fraction_of_peak"] = round(frac, 4)
            if frac <= 1:
                r.pop("fraction_of_peak_note", None)
    return best
