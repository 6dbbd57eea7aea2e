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
from . import fit, intervals, paper
from .intervals import cost
from .guidelines import Micro

STUDIES = ("v1-table8", "v2-guidelines", "v1-groups")
GROUPS_SIZE = (224, 224)  # v1 Table 2 compares the group counts at 224x224 only
PROFILE_SIZE = (224, 224)
# The cache key's calib_size of the fp32 files (unused by an fp32 conversion): edge bench's default
# at 224, so `edge bench --model ...` and a reproduce run share those files.
CALIB_224 = 256
CALIB_LARGE = 16
# int8 files are calibrated on a few random inputs: the int8 kernels and so the latency are the same
# whatever the scales, and a cold full run must stay under an hour on 2 cores (256 images took ~50 of
# a TFLite int8 conversion's ~95 CPU seconds at 224). The sidecar's calibration n says how many.
CALIB_INT8_224 = 16
CALIB_INT8_LARGE = 4
# The export's parity check runs 8 inputs at 224; above that 2 (8 were ~10 of a 720x1280 file's
# ~25 CPU seconds). The sidecar's parity n says how many.
PARITY_LARGE = 2
# Rough costs for the progress bar's time estimate (this host, 1 thread); the bar's rate corrects them.
_EST_GMACS = 15.0
# CPU seconds of one conversion, measured on this host (2026-12-01; v1_g3 at 224 and 720x1280 and a
# x4 micro-module, one thread, the calibration and parity sets of this module): the converter's
# fixed cost by kind ...
_EST_EXPORT_S = {("onnx", "fp32"): 10.0, ("onnx", "int8"): 13.5, ("tflite", "fp32"): 24.0, ("tflite", "int8"): 41.0}
_EST_MICRO_EXPORT_S = {"onnx": 5.0, "tflite": 8.0}  # ten blocks: a small graph
_EST_ONNX_GRAPH_S = 10.0  # the fp32 graph export an int8 ONNX file skips when it reuses its fp32 file's
# ... and the parts that grow with one image's work, in CPU seconds per GMAC: the converter's,
# each calibration image's and each parity input's (run in PyTorch and in the runtime; 1x1-conv
# micro-modules run ~4x more MACs per second than the zoo's grouped and depthwise convs).
_EST_CONVERT_S_PER_GMAC = {"onnx": 1.4, "tflite": 1.5}
_EST_CALIB_S_PER_GMAC = {"onnx": 0.3, "tflite": 0.8}
_EST_PARITY_S_PER_GMAC = {"zoo": 0.5, "micro": 0.13}
# Real time over the figures above, per phase, from the cold full `edge reproduce all` of 2026-12-01
# (bench/results/reproduce/2026-12-01_host, idle 2-core AMD EPYC): conversion 1478 s against 2230
# estimated, timing 1014 s against 1441. The per-file costs were measured on a loaded machine (load
# 6-11), where a conversion shares its core; on an idle one both phases run about a third faster.
_EST_SCALE = {"conversion": 0.66, "timing": 0.70}


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
    # Without --runs each file is measured until its median's 95% CI is within +-2% or this many
    # seconds are spent (about 230 files in a full run: ~20 min of timing at most).
    max_seconds: float = 5.0
    # Conversions run in this many worker processes before any timing starts (None: one per core).
    export_workers: int | None = None

    def effective(self) -> "Settings":
        """--quick: ONNX fp32 at 224 only, x1 micro-benchmarks, few runs."""
        if not self.quick:
            return self
        return Settings(self.device, self.target, ("onnx",), ("fp32",), ((224, 224),), self.threads,
                        self.runs or 10, True, (1,), ("fp32",), self.max_seconds, self.export_workers)


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


def _large(size) -> bool:
    return tuple(size) != (224, 224)


def _zoo_calib(size, precision: str = "fp32") -> int:
    if precision == "int8":
        return CALIB_INT8_LARGE if _large(size) else CALIB_INT8_224
    return CALIB_LARGE if _large(size) else CALIB_224


def parity_n(job: "Job") -> int:
    """Inputs the export's parity check of ``job``'s file runs (zoo models above 224: fewer)."""
    from ..export.parity import N_INPUTS

    return PARITY_LARGE if not isinstance(job.subject, Micro) and _large(job.size) else N_INPUTS


def export_fields(subject, fmt: str, precision: str, size, meta: bool = False) -> dict:
    """export()'s arguments for one job's file: the export cache's key fields, given here only
    (``meta``: a micro-module on the meta device, enough for the key)."""
    if isinstance(subject, Micro):
        from .guidelines import export_fields as micro_fields

        return micro_fields(subject, fmt, precision, meta)
    return dict(model=subject, format=fmt, precision=precision, input_size=list(size),
                calib_size=_zoo_calib(size, precision))


def _cached(subject, fmt: str, precision: str, size) -> bool:
    from ..bench.cache import ExportCache

    return ExportCache().has(export_fields(subject, fmt, precision, size, meta=True))


def plan(study: str, s: Settings) -> list[Job]:
    """The jobs of one study under (already effective) settings."""
    from ..export.formats import get_format

    combos = [(f, p) for f in s.formats for p in s.precisions if p in get_format(f).precisions]  # ncnn: no int8
    jobs: list[Job] = []
    if study == "v1-table8":
        for size in s.resolutions:
            for name in list(paper.TABLE8) + list(paper.V2_BLOCK):
                macs = _zoo_macs(name, size)
                for f, p in combos:
                    jobs.append(Job(study, name, f, p, tuple(size), macs, profile=(f == "onnx" and tuple(size) == PROFILE_SIZE),
                                    cached=_cached(name, f, p, size)))
    elif study == "v1-groups":
        for name in paper.V1_GROUPS:
            macs = _zoo_macs(name, GROUPS_SIZE)
            for f, p in combos:
                jobs.append(Job(study, name, f, p, GROUPS_SIZE, macs, cached=_cached(name, f, p, GROUPS_SIZE)))
    elif study == "v2-guidelines":
        from .guidelines import HW, body_complexity, configs

        for cfg in configs(s.multipliers):
            macs = body_complexity(cfg).macs
            for f, p in [(f, p) for f in s.formats for p in s.guideline_precisions if p in get_format(f).precisions]:
                jobs.append(Job(study, cfg, f, p, (HW, HW), macs, cached=_cached(cfg, f, p, (HW, HW))))
    else:
        raise UsageError(f"unknown study '{study}' (choose from: {', '.join(STUDIES)}, all)")
    return jobs


def runs_for(job: Job, s: Settings, emulated: bool) -> tuple[int | None, int | None]:
    """(runs, warmup): --runs if given; else None (measure until stable within s.max_seconds)."""
    if s.runs:
        return int(s.runs), max(1, min(10, int(s.runs) // 10))
    if emulated:
        return None, None  # bench's emulated defaults
    est_ms = job.macs / (_EST_GMACS * 1e9) * 1e3
    return None, int(max(2, min(10, 1000.0 / max(est_ms, 1e-3))))


def export_estimate_s(job: Job, reuses_fp32: bool = False) -> float:
    """Seconds of one conversion on one core: the converter's fixed cost, its part that grows with
    the input, the calibration passes (int8) and the parity check's inputs (PyTorch and the runtime).
    ``reuses_fp32``: an ONNX file made right after another of the same model in the same worker,
    whose fp32 graph it quantizes instead of exporting it again (``export_batches``)."""
    if job.cached:
        return 0.0
    micro = isinstance(job.subject, Micro)
    gmacs = job.macs / 1e9
    fixed = _EST_MICRO_EXPORT_S.get(job.fmt, 10.0) if micro else _EST_EXPORT_S.get((job.fmt, job.precision), 25.0)
    if job.precision != "fp32" and micro:
        fixed += _EST_EXPORT_S.get((job.fmt, job.precision), 25.0) - _EST_EXPORT_S.get((job.fmt, "fp32"), 10.0)
    if reuses_fp32:
        fixed -= _EST_MICRO_EXPORT_S["onnx"] if micro else _EST_ONNX_GRAPH_S
    per_gmac = _EST_CONVERT_S_PER_GMAC.get(job.fmt, 1.0) + parity_n(job) * _EST_PARITY_S_PER_GMAC[
        "micro" if micro else "zoo"]
    if job.precision == "int8":
        from .guidelines import CALIB_SIZE

        per_gmac += (CALIB_SIZE if micro else _zoo_calib(job.size, "int8")) * _EST_CALIB_S_PER_GMAC.get(job.fmt, 1.0)
    return (fixed + per_gmac * gmacs) * _EST_SCALE["conversion"]


def conversion_estimates(jobs: list[Job]) -> dict:
    """{id(job): seconds on one core} for the uncached jobs as ``export_batches`` runs them."""
    out = {}
    for batch in export_batches(jobs):
        for i, j in enumerate(batch):
            out[id(j)] = export_estimate_s(j, reuses_fp32=i > 0)
    return out


def time_estimate_s(job: Job, s: Settings, emulated: bool) -> float:
    runs, warmup = runs_for(job, s, emulated)
    per = job.macs / (_EST_GMACS * 1e9) * (500 if emulated else 1)
    if runs is None and not emulated:  # until stable: usually well inside the budget on a quiet machine
        from ..runtime.timing import MIN_RUNS

        timed = max(MIN_RUNS * per, min(s.max_seconds, max(1.0, 0.5 * s.max_seconds)))
    else:
        timed = (runs or 5) * per
    extra = ((warmup or 1) + (20 if job.profile else 0)) * per
    # 3 s: runner start-up and the GEMM peak
    return (3.0 + (timed + extra) * len(s.threads)) * (1.0 if emulated else _EST_SCALE["timing"])


def estimate_s(job: Job, s: Settings, emulated: bool) -> float:
    return export_estimate_s(job) + time_estimate_s(job, s, emulated)


def config_key(job: Job) -> tuple:
    """What makes two jobs the same measurement: one file (subject, format, precision, size)."""
    subj = job.subject.name if isinstance(job.subject, Micro) else str(job.subject)
    return (subj, job.fmt, job.precision, tuple(job.size))


def unique_jobs(jobs: list[Job]) -> tuple[list[Job], dict]:
    """One job per configuration (v1_g3 at 224 is in Table 8 and in the groups study): the
    first keeps the measurement, the rest share its result dict. Profiles are merged."""
    first: dict = {}
    for j in jobs:
        k = config_key(j)
        if k in first:
            first[k].profile = first[k].profile or j.profile
        else:
            first[k] = j
    return list(first.values()), first


def _export(job: Job):
    from ..bench.cache import ExportCache
    from ..export import export

    fields = export_fields(job.subject, job.fmt, job.precision, job.size)

    def build(out):
        import torch

        # an untrained zoo model gets the same random weights in each of its files, so its int8 ONNX
        # file quantizes the graph its fp32 file just exported in this worker (see export_all)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return export(**fields, out=out, quiet=True, parity_n=parity_n(job))

    return ExportCache().get_or_build(fields, build).path


def _export_worker(job: Job, threads: int) -> tuple[float, str | None, bool]:
    """In a pool process: convert one file into the cache (seconds, one-line error, usage error?)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    t0 = time.perf_counter()
    try:
        _export(job)
        return time.perf_counter() - t0, None, False
    except UsageError as exc:
        return time.perf_counter() - t0, str(exc), True
    except RuntimeFailure as exc:
        return time.perf_counter() - t0, str(exc), False
    except Exception as exc:  # a converter crash belongs to this file only
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return time.perf_counter() - t0, f"{type(exc).__name__}: {first}", False
    finally:
        torch.set_num_threads(before)


def export_batches(jobs: list[Job]) -> list[list[Job]]:
    """The uncached files as the pool's tasks: a model's ONNX files at one size together, fp32 first
    (its int8 file reuses the fp32 graph in that worker), every other file alone; longest first, so
    the pool's last minutes are not one worker finishing a long file alone."""
    batches: dict = {}
    for j in sorted((j for j in jobs if not j.cached), key=lambda j: j.precision != "fp32"):
        key = (j.name, tuple(j.size)) if j.fmt == "onnx" else id(j)
        batches.setdefault(key, []).append(j)
    cost = {id(b): sum(export_estimate_s(j, reuses_fp32=i > 0) for i, j in enumerate(b)) for b in batches.values()}
    return sorted(batches.values(), key=lambda b: cost[id(b)], reverse=True)


def _export_batch(batch: list[Job], threads: int) -> list[tuple[float, str | None, bool]]:
    return [_export_worker(j, threads) for j in batch]


def _stop_workers(pool) -> None:
    """Cancel the queue and end the workers: SIGTERM first (each unwinds and removes its staged
    folder), SIGKILL for any still busy after a few seconds, whose leftovers are then swept."""
    from ..bench.cache import ExportCache
    from ..io_utils import remove_stale_temps

    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
    end = time.monotonic() + 5
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(2)
    remove_stale_temps(ExportCache().root)


def export_all(jobs: list[Job], workers: int, on_done=None) -> dict:
    """Convert every uncached file in ``workers`` processes (spawned: a fork of a process with
    torch's thread pools can hang); timing starts only after, so it never shares the CPU with a
    converter. Returns {config_key: (one-line error, is a usage error)} for the files that failed."""
    import concurrent.futures as cf
    import multiprocessing as mp

    todo = export_batches(jobs)
    errors: dict = {}

    def finished(j: Job, sec: float, err: str | None, usage: bool) -> None:
        j.result["export_s"] = round(sec, 2)
        if err:
            errors[config_key(j)] = (err, usage)
        if on_done:
            on_done(j)

    if workers <= 1:
        for batch in todo:
            for j, got in zip(batch, _export_batch(batch, os.cpu_count() or 1)):
                finished(j, *got)
        return errors
    per_worker = max(1, (os.cpu_count() or 1) // workers)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
    try:
        futs = {pool.submit(_export_batch, batch, per_worker): batch for batch in todo}
        for fut in cf.as_completed(futs):
            try:
                got = fut.result()
            except Exception as exc:  # the worker process died (out of memory, a converter's abort)
                got = [(0.0, f"conversion process failed: {type(exc).__name__}: {exc}"[:300], False)] * len(futs[fut])
            for j, one in zip(futs[fut], got):
                finished(j, *one)
    except BaseException:
        # Ctrl-C / SIGTERM: the executor's own exit would wait for every queued conversion (an
        # hour on a cold cache); drop the queue and stop the workers, whose staged files go away
        # with their temporary folders.
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return errors


def _workers(uniq: list[Job], s: Settings) -> int:
    return max(1, min(int(s.export_workers or os.cpu_count() or 1), sum(1 for j in uniq if not j.cached) or 1))


def _estimates(uniq: list[Job], s: Settings, emulated: bool, workers: int) -> tuple[dict, dict]:
    """({id(job): conversion seconds of wall time}, {id(job): timing seconds}) for the progress bar."""
    est_x = {k: v / workers for k, v in conversion_estimates(uniq).items()}
    return est_x, {id(j): time_estimate_s(j, s, emulated) for j in uniq}


def estimate_run(jobs: list[Job], s: Settings, emulated: bool = False) -> dict:
    """The progress bar's estimate of a whole run, {conversion, timing, total} seconds, as ``run_jobs``
    records it in ``estimated_s`` (without running anything)."""
    uniq, _ = unique_jobs(jobs)
    return _summed(*_estimates(uniq, s, emulated, _workers(uniq, s)))


def _summed(est_x: dict, est_t: dict) -> dict:
    """``estimated_s`` as results.json records it."""
    conv, timing = sum(est_x.values()), sum(est_t.values())
    return {"conversion": round(conv), "timing": round(timing), "total": round(conv + timing)}


def run_jobs(jobs: list[Job], s: Settings, emulated: bool, progress: bool = True) -> dict:
    """Export and bench every job; results (records, export seconds, load) land in job.result.
    Returns the progress bar's estimate in seconds ({conversion, timing, total}), for the record.

    Each configuration is measured once (``unique_jobs``); conversions run first in a pool of
    ``s.export_workers`` processes, then the files are timed one by one with nothing else of ours
    running. A failed conversion or run is kept as a one-line failure and the run goes on; if the
    very first timed job fails on the device or on a usage error, nothing would run and the error
    is raised.
    """
    from tqdm import tqdm

    from ..bench import bench
    from ..bench.targets import TargetError

    uniq, by_key = unique_jobs(jobs)
    workers = _workers(uniq, s)
    est_x, est_t = _estimates(uniq, s, emulated, workers)
    # progress in estimated seconds of work (conversions and timing), so the ETA is a time
    bar = tqdm(total=round(sum(est_x.values()) + sum(est_t.values())), unit="s of work", disable=not progress,
               dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s of estimated work [{elapsed}<{remaining}] {postfix}")
    ran_any = False
    try:
        bar.set_postfix_str(f"converting {sum(1 for j in uniq if not j.cached)} file(s) in {workers} process(es)")

        def done(j):
            bar.update(round(est_x[id(j)]))

        failed = export_all(uniq, workers, on_done=done)
        for job in uniq:
            bar.set_postfix_str(job.label())
            if config_key(job) in failed:
                err, usage = failed[config_key(job)]
                if usage and not ran_any:  # see below: the settings, not this file
                    raise UsageError(err)
                job.result["error"] = err
                bar.update(round(est_t[id(job)]))
                continue
            t0 = time.perf_counter()
            load0 = os.getloadavg()[0]
            try:
                path = _export(job)  # cached by now: returns at once
                runs, warmup = runs_for(job, s, emulated)
                recs = bench(artifact=path, device=s.device, target=s.target, threads=s.threads, runs=runs,
                             warmup=warmup, profile=job.profile, quiet=True,
                             max_seconds=None if runs else s.max_seconds)
                job.result.update({"records": recs, "time_s": round(time.perf_counter() - t0, 2),
                                   "load_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]})
                ran_any = True
            except (UsageError, TargetError) as exc:
                # Before anything ran, this is the settings or the device, and every job would fail the
                # same way; after that it belongs to this one file, and an hour of results is kept.
                if not ran_any:
                    raise
                job.result["error"] = str(exc)
            except RuntimeFailure as exc:
                job.result["error"] = str(exc)
            bar.update(round(est_t[id(job)]))
    finally:
        bar.close()
    share_results(jobs, by_key)
    return _summed(est_x, est_t)


def share_results(jobs: list[Job], by_key: dict) -> None:
    """Every job of a configuration gets the one measurement (the same dict) of its first job."""
    for j in jobs:
        j.result = by_key[config_key(j)].result


def configuration_values(results: dict) -> dict:
    """{(model, format, precision, engine, size, threads): {cost, ...}} over every section of a
    report's results: a set of more than one value means a configuration was measured twice."""
    out: dict = {}
    for st in results.get("studies", {}).values():
        for j in st.get("jobs", []):
            subj = j["subject"]
            name = subj.get("name") if isinstance(subj, dict) else str(subj)
            for r in j.get("records", []):
                key = (name, j["format"], j["precision"], r.get("engine"), tuple(j["input_size"]), r.get("threads"))
                out.setdefault(key, set()).add(cost(r))
    return out


# ---------------------------------------------------------------- analysis

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


def _noisy(r: dict) -> bool:
    return (r.get("stability") or {}).get("verdict") == "noisy"


def analyse_table8(jobs: list[Job]) -> dict:
    """Rows, power-law fits and the paper's ratios, each claim with a bootstrap 95% interval over
    the runs and a verdict against the paper (``intervals.compare``)."""
    recs = list(_records(jobs))
    unit = cost_unit([r for _, r in recs])
    rows, groups = [], {}
    for j, r in recs:
        size = tuple(j.size)
        paper_ms = paper.table8_ms(j.name, size)
        if paper_ms is None and j.name in paper.V2_BLOCK and size == (224, 224):
            paper_ms = 1e3 / paper.V2_BLOCK[j.name]["arm_img_s"]  # v2 paper Table 8, Snapdragon 810
        boot = intervals.boot_medians(r)
        rows.append({"model": j.name, "format": j.fmt, "precision": j.precision, "threads": r["threads"],
                     "input_size": list(size), "macs": j.macs, "cost": cost(r),
                     "paper_mflops": (paper.TABLE8.get(j.name) or paper.V2_BLOCK.get(j.name))["mflops"],
                     "cost_ci": intervals.interval(boot) if boot is not None else None, "noisy": _noisy(r),
                     "unit": unit, "paper_ms": paper_ms, "gmacs_per_s": r.get("gmacs_per_s"),
                     "table8": j.name in paper.TABLE8, **paper_mflops_columns(j.name)})
        if j.name in paper.TABLE8:
            groups.setdefault(_group_key(j, r), {})[j.name] = (j.macs, cost(r), boot)
    fits, ratios = [], []
    for (target, f, p, t, size), pts in sorted(groups.items(), key=lambda kv: str(kv[0])):
        key = {"target": target, "format": f, "precision": p, "threads": t, "input_size": list(size)}
        boots = {m: v[2] for m, v in pts.items()}
        have_boot = all(b is not None for b in boots.values())
        if len(pts) >= 2:
            try:
                d = fit.fit_power_law([m for m, _, _ in pts.values()], [c for _, c, _ in pts.values()])
            except ValueError:
                d = None
            if d is not None:
                if have_boot:
                    ks = intervals.fit_k_boot([m for m, _, _ in pts.values()], list(boots.values()))
                    d["k_ci"] = intervals.interval(ks)
                    d["speedup_per_4x_ci"] = intervals.interval(4.0 ** ks)
                d["verdict"] = intervals.compare(paper.PAPER_SPEEDUP_PER_4X, d["speedup_per_4x"],
                                                 d.get("speedup_per_4x_ci"), intervals.LAW_MAX_HALFWIDTH)
                fits.append({**key, "unit": unit, **d})
        ours = fit.speedup_ratios({m: v[0] for m, v in pts.items()}, {m: v[1] for m, v in pts.items()})
        theirs = {x["pair"]: x for x in fit.paper_ratios(size)}
        for x in ours:
            pr = theirs.get(x["pair"], {})
            ci = intervals.interval(boots[x["slow"]] / boots[x["fast"]]) if have_boot else None
            ratios.append({**key, **x, "actual_ci": ci, "paper_theoretical": pr.get("theoretical"),
                           "paper_actual": pr.get("actual"),
                           "verdict": intervals.compare(pr.get("actual"), x["actual"], ci,
                                                        intervals.RATIO_MAX_REL_HALFWIDTH * x["actual"])})
    return {"unit": unit, "rows": rows, "fits": fits, "ratios": ratios, "paper_fits": fit.paper_fits(),
            "paper_k": paper.PAPER_K, "paper_speedup_per_4x": paper.PAPER_SPEEDUP_PER_4X}


def paper_mflops_columns(model: str) -> dict:
    """The paper's complexity of ``model`` from each table that gives one, keyed by the table."""
    out = {}
    if model in paper.TABLE8:
        out["paper_mflops_v1_table8"] = paper.TABLE8[model]["mflops"]
    if model in paper.V1_GROUPS:
        out["paper_mflops_v1_table1"] = paper.V1_GROUPS[model]["mflops"]
    if model in paper.V2_BLOCK:
        out["paper_mflops_v2_table5"] = paper.V2_BLOCK[model]["mflops"]
    return out


def analyse_groups(jobs: list[Job]) -> dict:
    """g = 1..8 at 1x. The claim holds when g=3's interval lies below both g=4's and g=8's, does
    not hold when g=4's or g=8's lies below g=3's, and is inconclusive when they overlap."""
    recs = list(_records(jobs))
    unit = cost_unit([r for _, r in recs])
    rows, verdicts, groups = [], [], {}
    for j, r in recs:
        info = paper.V1_GROUPS[j.name]
        boot = intervals.boot_medians(r)
        c = cost(r)
        row = {"model": j.name, "g": info["g"], "format": j.fmt, "precision": j.precision, "threads": r["threads"],
               "macs": j.macs, "paper_mflops": info["mflops"], "top1_err": info["top1_err"], "cost": c,
               "cost_ci": intervals.interval(boot) if boot is not None else [c, c], "noisy": _noisy(r), "unit": unit,
               **paper_mflops_columns(j.name)}
        rows.append(row)
        groups.setdefault(_group_key(j, r), []).append((row, boot))
    for (target, f, p, t, _), rbs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        rs = [x for x, _ in rbs]
        by_g = {x["g"]: x for x in rs}
        fastest = min(by_g, key=lambda g: by_g[g]["cost"])
        rivals = [g for g in by_g if g > paper.V1_GROUPS_CLAIM]
        v = {"target": target, "format": f, "precision": p, "threads": t, "fastest_g": fastest,
             "g3_vs_best_of_4_8": None, "holds": False, "verdict": "n/a"}
        if 3 in by_g and rivals:
            best = min(rivals, key=lambda g: by_g[g]["cost"])
            v["g3_vs_best_of_4_8"] = by_g[3]["cost"] / by_g[best]["cost"]
            sides = [intervals.faster_slower_overlap(by_g[3]["cost_ci"], by_g[g]["cost_ci"]) for g in rivals]
            if all(x == -1 for x in sides):
                v["holds"], v["verdict"] = True, "holds: g=3 is faster than g=4 and g=8 (intervals apart)"
            elif any(x == 1 for x in sides):
                v["verdict"] = f"does not hold: g={best} beats g=3 (intervals apart)"
            else:
                v["verdict"] = f"inconclusive: g=3 and g={best} are within each other's intervals"
        verdicts.append(v)
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
        boot = intervals.boot_medians(r)
        row = {"guideline": cfg.guideline, "variant": cfg.variant, "multiplier": cfg.multiplier,
               "channels": list(cfg.channels), "format": j.fmt, "precision": j.precision, "threads": r["threads"],
               "macs": j.macs, "memory_access": mac_cache[cfg.name], "memory_access_closed_form": closed,
               "cost": c, "cost_ci": intervals.interval(boot) if boot is not None else None, "noisy": _noisy(r),
               "unit": unit, "per_s": (1e3 / c) if unit == "ms" else None,
               "paper_arm_img_s": paper.paper_arm_img_s(cfg.guideline, cfg.variant, cfg.multiplier)}
        rows.append(row)
        tables.setdefault((cfg.guideline, r["device"].get("target"), j.fmt, j.precision, r["threads"],
                           cfg.multiplier), []).append(row)
    verdicts = []
    for (g, target, f, p, t, m), rs in sorted(tables.items(), key=lambda kv: str(kv[0])):
        verdicts.append({"guideline": g, "target": target, "format": f, "precision": p, "threads": t,
                         "multiplier": m, **guideline_verdict(g, rs, m)})
    return {"unit": unit, "rows": rows, "verdicts": verdicts}


def guideline_verdict(guideline: str, rows: list[dict], multiplier: int) -> dict:
    """Does the paper's ranking hold? Its predicted fastest row must be fastest here (its cost
    interval overlaps the fastest row's: not distinguishable from it) and the orders must agree
    (Kendall tau). Rows without an interval (``cost_ci``) are compared as points."""
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
    ci = {r["variant"]: r.get("cost_ci") or [r["cost"], r["cost"]] for r in rows}
    fastest_ok = want in speed and intervals.faster_slower_overlap(ci[want], ci[best]) <= 0
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
