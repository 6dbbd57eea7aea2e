"""The three studies as lists of jobs (export, then bench), run with one progress bar.

A job is one file (model or micro-module x format x precision x input size) benchmarked at
the requested thread counts through ``shufflenet_edge.bench.bench`` (no timing loop here).
Each study's analysis turns the records into the rows, fits and verdicts the report shows.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ..errors import RuntimeFailure, UsageError
from . import fit, paper
from .guidelines import Micro

STUDIES = ("v1-table8", "v2-guidelines", "v1-groups")
GROUPS_SIZE = (224, 224)  # v1 Table 2 compares the group counts at 224x224 only
PROFILE_SIZE = (224, 224)
CALIB_224 = 256  # edge bench's default, so `edge bench --model ... --precision int8` shares these files
CALIB_LARGE = 16  # int8 scales do not change speed; 256 random 720x1280 images would take minutes
# Rough costs for the progress bar's time estimate (this host, 1 thread); the bar's rate corrects them.
_EST_GMACS = 15.0
_EST_EXPORT_S = {("onnx", "fp32"): 8.0, ("onnx", "int8"): 12.0, ("tflite", "fp32"): 15.0, ("tflite", "int8"): 60.0}


@dataclass
class Settings:
    device: str = "host"
    target: str | None = None
    formats: tuple = ("onnx", "tflite")
    precisions: tuple = ("fp32", "int8")
    resolutions: tuple = paper.RESOLUTIONS
    threads: tuple = (1,)
    runs: int | None = None
    quick: bool = False
    multipliers: tuple = paper.MULTIPLIERS
    # The micro-benchmarks compare layer shapes, as the paper did in fp32; an int8 file per
    # micro-module and multiplier would double the full run (about a minute of conversion each).
    guideline_precisions: tuple = ("fp32",)

    def effective(self) -> "Settings":
        """--quick: ONNX fp32 at 224 only, x1 micro-benchmarks, few runs."""
        if not self.quick:
            return self
        return Settings(self.device, self.target, ("onnx",), ("fp32",), ((224, 224),), self.threads,
                        self.runs or 10, True, (1,), ("fp32",))


@dataclass
class Job:
    study: str
    subject: object  # zoo model name or a guidelines.Micro
    fmt: str
    precision: str
    size: tuple
    macs: int
    profile: bool = False
    cached: bool = False
    result: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.subject.name if isinstance(self.subject, Micro) else str(self.subject)

    def label(self) -> str:
        h, w = self.size
        return f"{self.study} {self.name} {self.fmt}/{self.precision} {h}x{w}"


def _zoo_macs(name: str, size) -> int:
    from ..complexity import complexity

    return complexity(name, size).macs


def _zoo_calib(size) -> int:
    return CALIB_224 if tuple(size) == (224, 224) else CALIB_LARGE


def _zoo_cached(name: str, fmt: str, precision: str, size) -> bool:
    from ..bench.cache import cache_key, cache_root

    key = cache_key(model=name, format=fmt, precision=precision, checkpoint=None, input_size=list(size),
                    num_classes=None, batch="1", layout="nchw", calib=None, calib_size=_zoo_calib(size))
    return (cache_root() / "exports" / key / "artifact.txt").is_file()


def _micro_cached(cfg: Micro, fmt: str, precision: str) -> bool:
    from ..bench.cache import cache_root
    from .guidelines import config_key

    return (cache_root() / "exports" / config_key(cfg, fmt, precision) / "artifact.txt").is_file()


def plan(study: str, s: Settings) -> list[Job]:
    """The jobs of one study under (already effective) settings."""
    combos = [(f, p) for f in s.formats for p in s.precisions]
    jobs: list[Job] = []
    if study == "v1-table8":
        for size in s.resolutions:
            for name in list(paper.TABLE8) + list(paper.V2_BLOCK):
                macs = _zoo_macs(name, size)
                for f, p in combos:
                    jobs.append(Job(study, name, f, p, tuple(size), macs, profile=(f == "onnx" and tuple(size) == PROFILE_SIZE),
                                    cached=_zoo_cached(name, f, p, size)))
    elif study == "v1-groups":
        for name in paper.V1_GROUPS:
            macs = _zoo_macs(name, GROUPS_SIZE)
            for f, p in combos:
                jobs.append(Job(study, name, f, p, GROUPS_SIZE, macs, cached=_zoo_cached(name, f, p, GROUPS_SIZE)))
    elif study == "v2-guidelines":
        from .guidelines import HW, body_complexity, configs

        for cfg in configs(s.multipliers):
            macs = body_complexity(cfg).macs
            for f, p in [(f, p) for f in s.formats for p in s.guideline_precisions]:
                jobs.append(Job(study, cfg, f, p, (HW, HW), macs, cached=_micro_cached(cfg, f, p)))
    else:
        raise UsageError(f"unknown study '{study}' (choose from: {', '.join(STUDIES)}, all)")
    return jobs


def runs_for(job: Job, s: Settings, emulated: bool) -> tuple[int | None, int | None]:
    """(runs, warmup): --runs if given; else about 2.5 s of timing per file (10..100 runs)."""
    if s.runs:
        return int(s.runs), max(1, min(10, int(s.runs) // 10))
    if emulated:
        return None, None  # bench's emulated defaults
    est_ms = job.macs / (_EST_GMACS * 1e9) * 1e3
    runs = int(max(10, min(100, 2500.0 / max(est_ms, 1e-3))))
    return runs, max(2, min(10, runs // 10))


def estimate_s(job: Job, s: Settings, emulated: bool) -> float:
    export = 0.0 if job.cached else _EST_EXPORT_S.get((job.fmt, job.precision), 15.0)
    if job.precision == "int8" and not job.cached and not isinstance(job.subject, Micro):
        export += _zoo_calib(job.size) * job.macs / (_EST_GMACS * 1e9)  # calibration passes
    export *= 1.0 + job.macs / 5e9  # big inputs convert slower
    runs, warmup = runs_for(job, s, emulated)
    per = job.macs / (_EST_GMACS * 1e9) * (500 if emulated else 1)
    n = (runs or 5) + (warmup or 1) + (20 if job.profile else 0)
    return export + 3.0 + n * per * len(s.threads)  # 3 s: runner start-up and the GEMM peak


def _export(job: Job):
    if isinstance(job.subject, Micro):
        from .guidelines import cached_micro_export

        return cached_micro_export(job.subject, job.fmt, job.precision)
    from ..bench.cache import cached_export

    return cached_export(job.name, job.fmt, job.precision, input_size=list(job.size),
                         calib_size=_zoo_calib(job.size), quiet=True)


def run_jobs(jobs: list[Job], s: Settings, emulated: bool, progress: bool = True) -> None:
    """Export and bench every job; results (records, export seconds, load) land in job.result.

    A failed conversion or run is kept as a one-line failure and the run goes on; if the very
    first job fails on the device or on a usage error, nothing would run and the error is raised.
    """
    from tqdm import tqdm

    from ..bench import bench
    from ..bench.targets import TargetError

    est = [estimate_s(j, s, emulated) for j in jobs]
    bar = tqdm(total=round(sum(est)), unit="est-s", disable=not progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} est-s [{elapsed}<{remaining}] {postfix}")
    ran_any = False
    try:
        for job, e in zip(jobs, est):
            bar.set_postfix_str(job.label())
            t0 = time.perf_counter()
            load0 = os.getloadavg()[0]
            try:
                path = _export(job)
                t_export = time.perf_counter() - t0
                runs, warmup = runs_for(job, s, emulated)
                recs = bench(artifact=path, device=s.device, target=s.target, threads=s.threads, runs=runs,
                             warmup=warmup, profile=job.profile, quiet=True)
                job.result = {"records": recs, "export_s": round(t_export, 2),
                              "load_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]}
                ran_any = True
            except (UsageError, TargetError) as exc:
                # Before anything ran, this is the settings or the device, and every job would fail the
                # same way; after that it belongs to this one file, and an hour of results is kept.
                if not ran_any:
                    raise
                job.result = {"error": str(exc)}
            except RuntimeFailure as exc:
                job.result = {"error": str(exc)}
            bar.update(round(e))
    finally:
        bar.close()


# ---------------------------------------------------------------- analysis

def cost(rec: dict) -> float:
    """The figure a study compares: instructions per inference under emulation, else p50 ms."""
    if rec.get("device", {}).get("emulated") and rec.get("instructions_per_inference"):
        return float(rec["instructions_per_inference"])
    return float(rec["latency_ms"]["p50"])


def cost_unit(records: list[dict]) -> str:
    emulated = [r for r in records if r.get("device", {}).get("emulated")]
    if emulated and all(r.get("instructions_per_inference") for r in emulated):
        return "instructions"
    return "ms"


def _records(jobs: list[Job]):
    for j in jobs:
        for r in j.result.get("records", []):
            yield j, r


def _group_key(j: Job, r: dict) -> tuple:
    return (r["device"].get("target"), j.fmt, j.precision, int(r["threads"]), tuple(j.size))


def analyse_table8(jobs: list[Job]) -> dict:
    recs = list(_records(jobs))
    unit = cost_unit([r for _, r in recs])
    rows, groups = [], {}
    for j, r in recs:
        size = tuple(j.size)
        paper_ms = paper.table8_ms(j.name, size)
        if paper_ms is None and j.name in paper.V2_BLOCK and size == (224, 224):
            paper_ms = 1e3 / paper.V2_BLOCK[j.name]["arm_img_s"]  # v2 paper Table 8, Snapdragon 810
        info = paper.TABLE8.get(j.name) or paper.V2_BLOCK.get(j.name)
        rows.append({"model": j.name, "format": j.fmt, "precision": j.precision, "threads": r["threads"],
                     "input_size": list(size), "macs": j.macs, "paper_mflops": info["mflops"], "cost": cost(r),
                     "unit": unit, "paper_ms": paper_ms, "gmacs_per_s": r.get("gmacs_per_s"),
                     "table8": j.name in paper.TABLE8})
        if j.name in paper.TABLE8:
            groups.setdefault(_group_key(j, r), {})[j.name] = (j.macs, cost(r))
    fits, ratios = [], []
    for (target, f, p, t, size), pts in sorted(groups.items(), key=lambda kv: str(kv[0])):
        key = {"target": target, "format": f, "precision": p, "threads": t, "input_size": list(size)}
        if len(pts) >= 2:
            try:
                fits.append({**key, "unit": unit, **fit.fit_power_law([m for m, _ in pts.values()],
                                                                      [c for _, c in pts.values()])})
            except ValueError:
                pass
        ours = fit.speedup_ratios({m: v[0] for m, v in pts.items()}, {m: v[1] for m, v in pts.items()})
        theirs = {x["pair"]: x for x in fit.paper_ratios(size)}
        for x in ours:
            pr = theirs.get(x["pair"], {})
            ratios.append({**key, **x, "paper_theoretical": pr.get("theoretical"), "paper_actual": pr.get("actual")})
    return {"unit": unit, "rows": rows, "fits": fits, "ratios": ratios, "paper_fits": fit.paper_fits(),
            "paper_k": paper.PAPER_K, "paper_speedup_per_4x": paper.PAPER_SPEEDUP_PER_4X}


def analyse_groups(jobs: list[Job]) -> dict:
    recs = list(_records(jobs))
    unit = cost_unit([r for _, r in recs])
    rows, verdicts, groups = [], [], {}
    for j, r in recs:
        info = paper.V1_GROUPS[j.name]
        row = {"model": j.name, "g": info["g"], "format": j.fmt, "precision": j.precision, "threads": r["threads"],
               "macs": j.macs, "paper_mflops": info["mflops"], "top1_err": info["top1_err"], "cost": cost(r),
               "unit": unit}
        rows.append(row)
        groups.setdefault(_group_key(j, r), []).append(row)
    for (target, f, p, t, _), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        by_g = {x["g"]: x["cost"] for x in rs}
        fastest = min(by_g, key=by_g.get)
        rivals = {g: c for g, c in by_g.items() if g >= paper.V1_GROUPS_CLAIM}
        holds = bool(rivals) and min(rivals, key=rivals.get) == paper.V1_GROUPS_CLAIM
        verdicts.append({"target": target, "format": f, "precision": p, "threads": t, "fastest_g": fastest,
                         "g3_vs_best_of_4_8": (by_g.get(3) / min(c for g, c in rivals.items() if g != 3))
                         if 3 in by_g and len(rivals) > 1 else None,
                         "holds": holds,
                         "verdict": ("holds: g=3 is faster than g=4 and g=8" if holds else
                                     f"does not hold: g={min(rivals, key=rivals.get)} beats g=3") if rivals else "n/a"})
    return {"unit": unit, "rows": rows, "verdicts": verdicts}


def analyse_guidelines(jobs: list[Job]) -> dict:
    from ..complexity import conv1x1_memory_access
    from .guidelines import HW, BLOCKS, body_complexity

    recs = list(_records(jobs))
    unit = cost_unit([r for _, r in recs])
    rows, tables = [], {}
    mac_cache: dict = {}
    for j, r in recs:
        cfg = j.subject
        if cfg.name not in mac_cache:
            mac_cache[cfg.name] = body_complexity(cfg).memory_access
        closed = None
        if cfg.guideline == "G1":
            c1, c2 = cfg.channels
            closed = BLOCKS * (conv1x1_memory_access(c1, c2, HW, HW) + conv1x1_memory_access(c2, c1, HW, HW))
        elif cfg.guideline == "G2":
            c = cfg.channels[0]
            closed = BLOCKS * conv1x1_memory_access(c, c, HW, HW, cfg.groups)
        c = cost(r)
        row = {"guideline": cfg.guideline, "variant": cfg.variant, "multiplier": cfg.multiplier,
               "channels": list(cfg.channels), "format": j.fmt, "precision": j.precision, "threads": r["threads"],
               "macs": j.macs, "memory_access": mac_cache[cfg.name], "memory_access_closed_form": closed,
               "cost": c, "unit": unit, "per_s": (1e3 / c) if unit == "ms" else None,
               "paper_arm_img_s": paper.paper_arm_img_s(cfg.guideline, cfg.variant, cfg.multiplier)}
        rows.append(row)
        tables.setdefault((cfg.guideline, r["device"].get("target"), j.fmt, j.precision, r["threads"],
                           cfg.multiplier), []).append(row)
    verdicts = []
    for (g, target, f, p, t, m), rs in sorted(tables.items(), key=lambda kv: str(kv[0])):
        verdicts.append({"guideline": g, "target": target, "format": f, "precision": p, "threads": t,
                         "multiplier": m, **guideline_verdict(g, rs, m)})
    return {"unit": unit, "rows": rows, "verdicts": verdicts}


def guideline_verdict(guideline: str, rows: list[dict], multiplier: int, tolerance: float = 0.03) -> dict:
    """Does the paper's ranking hold? Its predicted fastest row must be fastest here (within
    ``tolerance``, the noise of a shared machine) and the orders must agree (Kendall tau)."""
    spec = paper.GUIDELINES[guideline]
    speed = {r["variant"]: 1.0 / r["cost"] for r in rows}  # higher is better for ms and instructions alike
    order = [row["variant"] for row in spec["rows"] if row["variant"] in speed]
    paper_vals = [paper.paper_arm_img_s(guideline, v, multiplier) for v in order]
    basis = f"x{multiplier}"
    if any(v is None for v in paper_vals):  # papers.md has only the x1 column for G1 and G3
        paper_vals = [paper.paper_arm_img_s(guideline, v, 1) for v in order]
        basis = "x1 (paper has no other column)"
    best = max(speed, key=speed.get)
    want = spec["fastest"]
    fastest_ok = want in speed and speed[want] >= (1.0 - tolerance) * speed[best]
    tau = fit.kendall_tau(paper_vals, [speed[v] for v in order])
    if fastest_ok and tau is not None and tau >= 0.5:
        verdict = "holds"
    elif fastest_ok or (tau is not None and tau > 0):
        verdict = "partly"
    else:
        verdict = "does not hold"
    out = {"paper_fastest": want, "fastest_here": best, "kendall_tau": tau, "paper_basis": basis,
           "verdict": verdict}
    first = spec["rows"][0]["variant"]
    if guideline == "G4" and first in speed and "neither" in speed:
        out["neither_vs_both"] = speed["neither"] / speed[first]  # the paper: about 1.2x
    return out
