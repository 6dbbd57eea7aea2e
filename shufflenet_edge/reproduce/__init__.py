"""``edge reproduce``: the ShuffleNet papers' theoretical-vs-actual speed claims, measured here.

>>> from shufflenet_edge.reproduce import reproduce, Settings
>>> res = reproduce("v1-table8", Settings(quick=True), out="reports/quick")
>>> res["studies"]["v1-table8"]["analysis"]["fits"][0]["speedup_per_4x"]

Studies: ``v1-table8`` (Table 8 models, power-law fit of cost vs MACs, the paper's ratios),
``v2-guidelines`` (Tables 1-4 micro-benchmarks with verdicts), ``v1-groups`` (g = 1..8 at 1x),
``all``. Every file is exported through the cache and timed by ``shufflenet_edge.bench.bench``.
Under qemu the cost is instructions per inference (an ISA cost figure), never time.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from ..errors import UsageError
from .peaks import apply_run_peak
from .studies import STUDIES, Settings

__all__ = ["reproduce", "rerender", "Settings", "STUDIES", "default_out"]

_ANALYSE = {"v1-table8": "analyse_table8", "v1-groups": "analyse_groups", "v2-guidelines": "analyse_guidelines"}


def default_out(device: str, target: str | None) -> Path:
    where = device if device == "host" else f"{device}-{(target or 'auto').split(':')[0]}"
    return Path("reports") / f"{dt.date.today().isoformat()}_{where}"


def _machine(jobs, target_name: str, emulated: bool) -> dict:
    from ..runtime.timing import machine_info

    recs = [r for j in jobs for r in j.result.get("records", [])]
    dev = dict(recs[0]["device"]) if recs else {**machine_info(), "target": target_name, "emulated": emulated}
    engines = {}
    for j in jobs:
        for r in j.result.get("records", []):
            engines.setdefault(j.fmt, f"{r['engine']} {r.get('runtime_version', '')}".strip())
    dev["engines"] = engines
    dev["cpu_peak_gmacs"] = recs[0].get("cpu_peak_gmacs") if recs else None
    peaks = {}
    for r in recs:
        if r.get("cpu_peak_gmacs"):
            peaks.setdefault(r.get("cpu_peak_precision") or "fp32", r["cpu_peak_gmacs"])
    dev["cpu_peak_gmacs_by_precision"] = peaks
    return dev


def reproduce(study: str, settings: Settings | None = None, out=None, command: str | None = None,
              progress: bool = True) -> dict:
    """Run ``study`` (or ``all``), write report.md, the PNGs and results.json into ``out``; return the results."""
    from ..bench.report import versions
    from ..bench.targets import resolve_target
    from ..io_utils import write_json, write_text
    from . import report, studies

    names = list(STUDIES) if study == "all" else [study]
    if any(n not in STUDIES for n in names):
        raise UsageError(f"unknown study '{study}' (choose from: {', '.join(STUDIES)}, all)")
    s = (settings or Settings()).effective()
    tgt = resolve_target(s.device, s.target)
    try:
        target_name, emulated, can_run = tgt.name, bool(tgt.emulated), tuple(tgt.formats)
    finally:
        tgt.close()
    bad = [f for f in s.formats if f not in can_run]
    if bad:
        raise UsageError(f"target {target_name} cannot run {', '.join(bad)} files (it runs: {', '.join(can_run)})")
    out = Path(out) if out else default_out(s.device, s.target)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out}: {exc.strerror}") from None

    started = dt.datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    plans = {n: studies.plan(n, s) for n in names}
    all_jobs = [j for n in names for j in plans[n]]
    estimate = studies.run_jobs(all_jobs, s, emulated, progress=progress)
    apply_run_peak([r for j in all_jobs for r in j.result.get("records", [])])
    for j in all_jobs:
        loads += j.result.get("load_1min", [])

    results = {
        "command": command or f"edge reproduce {study}",
        "started": started, "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "estimated_s": estimate,  # the progress bar's (cached files cost nothing), to check it against duration_s
        "settings": {"device": s.device, "target": s.target, "formats": list(s.formats),
                     "precisions": list(s.precisions), "resolutions": [list(r) for r in s.resolutions],
                     "threads": list(s.threads), "runs": s.runs, "max_seconds": None if s.runs else s.max_seconds,
                     "export_workers": s.export_workers, "quick": s.quick, "multipliers": list(s.multipliers),
                     "guideline_precisions": list(s.guideline_precisions)},
        "machine": _machine(all_jobs, target_name, emulated),
        "versions": versions(),
        "load": {"start": loads[0], "min": min(loads), "max": max(loads), "host_cores": os.cpu_count()},
        "failures": [{"study": j.study, "job": j.label(), "error": j.result["error"]}
                     for j in all_jobs if "error" in j.result],
        "studies": {},
    }
    for n in names:
        jobs = plans[n]
        results["studies"][n] = {
            "analysis": getattr(studies, _ANALYSE[n])(jobs),
            "jobs": [{"job": j.label(), "subject": j.subject.to_dict() if hasattr(j.subject, "to_dict") else j.subject,
                      "format": j.fmt, "precision": j.precision, "input_size": list(j.size), "macs": j.macs,
                      **j.result} for j in jobs],
        }
    if "v1-table8" in results["studies"]:
        t8 = results["studies"]["v1-table8"]["analysis"]
        t8["variance"] = _variance(t8, s.device)
    results["plots"] = _plots(results, out)
    write_json(out / "results.json", results)
    write_text(out / "report.md", report.markdown(results, results["plots"]))
    return results


def _variance(t8: dict, device: str) -> dict:
    """MACs vs the kernel predictor on the Table 8 models (``variance.py``); a predictor that breaks
    costs this section only, never the measurements already taken."""
    from .variance import explained

    try:
        return explained(t8, device)
    except Exception as exc:  # noqa: BLE001 - the run's results are written whatever happens here
        return {"groups": [], "missing": [], "error": f"{type(exc).__name__}: {exc}"[:300]}


def rerender(out) -> Path:
    """Rewrite report.md and the plots of an earlier run from its results.json (no measuring)."""
    import json

    from ..io_utils import write_json, write_text
    from . import report

    out = Path(out)
    try:
        results = json.loads((out / "results.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"no readable results.json in {out}: {exc}") from None
    # runs written before the run-wide peak get it here (the records' own peaks are kept)
    peaks = apply_run_peak([r for st in results.get("studies", {}).values() for j in st.get("jobs", [])
                            for r in j.get("records", [])])
    if peaks and isinstance(results.get("machine"), dict):
        results["machine"]["cpu_peak_gmacs_by_precision"] = peaks
        results["machine"]["cpu_peak_gmacs"] = peaks.get("fp32", results["machine"].get("cpu_peak_gmacs"))
    results["plots"] = _plots(results, out)
    write_json(out / "results.json", results)
    return write_text(out / "report.md", report.markdown(results, results["plots"]))


def _plots(results: dict, out: Path) -> dict:
    from . import report

    st = results["studies"]
    plots: dict = {}
    if "v1-table8" in st:
        plots["v1-table8"] = report.plot_table8(st["v1-table8"]["analysis"], out)
    if "v1-groups" in st:
        plots["v1-groups"] = report.plot_groups(st["v1-groups"]["analysis"], out)
    if "v2-guidelines" in st:
        plots["v2-guidelines"] = report.plot_guidelines(st["v2-guidelines"]["analysis"], out)
    profiles = []
    for name in ("v1-table8",):
        for j in st.get(name, {}).get("jobs", []):
            for r in j.get("records", []):
                prof = r.get("profile")
                if prof and "groups" in prof:
                    profiles.append({"model": j["subject"], "format": j["format"], "precision": j["precision"],
                                     "threads": r["threads"], "input_size": j["input_size"], "source": prof["source"],
                                     "groups": prof["groups"]})
    plots["profile"] = report.plot_profiles(profiles, out) if profiles else []
    return plots
