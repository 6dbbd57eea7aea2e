"""The one timing loop, its statistics, and facts about the machine it runs on.

Self-contained (standard library + numpy): shipped with ``engines.py`` and ``runner.py`` to
boards and emulated userlands, so a phone, a Pi and this host are timed by the same code.
"""
from __future__ import annotations

import os
import platform
import random
import resource
import sys
import time

import numpy as np

DEFAULT_ROUNDS = 5

# Measure-until-stable (``time_cases(runs=None)``): rounds go on until the 95% bootstrap
# confidence interval of every case's median is within +-TARGET_CI of the median, or until
# ``max_seconds`` of wall time are spent. At least MIN_ROUNDS rounds and MIN_RUNS runs always.
TARGET_CI = 0.02
DEFAULT_MAX_SECONDS = 8.0
MIN_ROUNDS = DEFAULT_ROUNDS
MIN_RUNS = 10
MAX_SAMPLES_KEPT = 4000  # per record: enough to bootstrap intervals of ratios and fits later

# A record is "noisy" when any of these is exceeded (README, "Stable and noisy records"):
NOISY_LIMITS = {
    "ci_halfwidth": 0.03,  # 95% CI of the median wider than +-3% of the median
    "spread": 0.10,  # medians of the interleaved rounds more than 10% apart (max/min - 1)
    "cv": 0.25,  # standard deviation above 25% of the mean
    "others_cpu_share": 0.10,  # other processes used over 10% of the cores this run could use
    "freq_change": 0.10,  # the cores' clock moved by over 10% between start and end
    "load_excess": 0.5,  # 1-min load average above the run's own threads + 0.5 (only when the CPU share is unreadable)
}


def stats_ms(samples_s) -> dict:
    """min/mean/p10/p50/p90/p99/std (ms) and coefficient of variation of per-run seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return {"min": float(a.min()), "mean": mean, "p10": float(np.percentile(a, 10)), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "std": std,
            "cv": std / mean if mean > 0 else 0.0}


def bootstrap_median_ci(samples, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``samples`` (same unit)."""
    a = np.asarray(samples, dtype=np.float64)
    if len(a) < 2:
        v = float(a[0]) if len(a) else float("nan")
        return v, v
    rng = np.random.default_rng(seed)
    meds = []
    step = max(1, 2_000_000 // len(a))  # bound memory: resample in blocks
    for done in range(0, n_boot, step):
        k = min(step, n_boot - done)
        meds.append(np.median(a[rng.integers(0, len(a), size=(k, len(a)))], axis=1))
    m = np.concatenate(meds)
    tail = (1.0 - level) / 2 * 100
    return float(np.percentile(m, tail)), float(np.percentile(m, 100 - tail))


def ci_halfwidth(samples, n_boot: int = 1000) -> float:
    """Half the width of the median's 95% CI, relative to the median (0.02 = +-2%)."""
    lo, hi = bootstrap_median_ci(samples, n_boot=n_boot)
    med = float(np.median(samples))
    return (hi - lo) / 2 / med if med > 0 else float("inf")


def split_runs(runs: int, rounds: int) -> list[int]:
    rounds = max(1, min(int(rounds), int(runs)))
    base, extra = divmod(int(runs), rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


# ---------------------------------------------------------------- what else the machine was doing

def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_busy_ticks(cpus: list[int]) -> int | None:
    """Busy clock ticks (user+nice+system+irq+softirq+steal) of ``cpus`` from /proc/stat."""
    text = _read("/proc/stat")
    if not text:
        return None
    want = {f"cpu{c}" for c in cpus}
    total, seen = 0, 0
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in want:
            v = [int(x) for x in parts[1:9]]
            total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
            seen += 1
    return total if seen == len(want) else None


def _own_ticks() -> int | None:
    """User + system ticks of this process (all its threads) from /proc/self/stat."""
    text = _read("/proc/self/stat")
    if not text:
        return None
    rest = text.rsplit(")", 1)[-1].split()
    return int(rest[11]) + int(rest[12])


def _cpu_mhz(cpus: list[int]) -> float | None:
    """Mean current clock of ``cpus`` (cpufreq's scaling_cur_freq, else /proc/cpuinfo's 'cpu MHz')."""
    vals = []
    for c in cpus:
        khz = _read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq")
        if khz and khz.isdigit():
            vals.append(int(khz) / 1000)
    if not vals:
        info = _read("/proc/cpuinfo") or ""
        proc = None
        for line in info.splitlines():
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "processor":
                proc = int(v) if v.strip().isdigit() else None
            elif k == "cpu mhz" and proc in cpus:
                try:
                    vals.append(float(v))
                except ValueError:
                    pass
    return sum(vals) / len(vals) if vals else None


def _loadavg() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


class Environment:
    """What the rest of the machine did while a measurement ran (Linux /proc; None where unreadable)."""

    def __init__(self):
        self.cpus = _usable_cpus()
        self.t0 = time.perf_counter()
        self.load0 = _loadavg()
        self.busy0 = _cpu_busy_ticks(self.cpus)
        self.own0 = _own_ticks()
        self.mhz0 = _cpu_mhz(self.cpus)

    def finish(self) -> dict:
        wall = time.perf_counter() - self.t0
        busy, own = _cpu_busy_ticks(self.cpus), _own_ticks()
        share = None
        if None not in (busy, own, self.busy0, self.own0) and wall > 0:
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            others = (busy - self.busy0) - (own - self.own0)
            share = round(min(1.0, max(0.0, others / (hz * wall * len(self.cpus)))), 3)
        mhz1 = _cpu_mhz(self.cpus)
        gov = _read(f"/sys/devices/system/cpu/cpu{self.cpus[0]}/cpufreq/scaling_governor") if self.cpus else None
        return {"load_1min": [_round(self.load0, 2), _round(_loadavg(), 2)], "others_cpu_share": share,
                "cpus": self.cpus, "mhz": [_round(self.mhz0, 0), _round(mhz1, 0)], "governor": gov,
                "wall_s": round(wall, 2)}


def _round(v, nd):
    return None if v is None else round(float(v), nd)


def verdict(samples_ms, round_p50_ms, env: dict | None = None, threads: int = 1) -> dict:
    """``stable`` or ``noisy`` from a record's own data, with every figure that decided it.

    ``reasons`` names each NOISY_LIMITS entry that was exceeded. The load average lags by up to
    a minute and counts this run itself, so it decides only where the CPU share is unreadable.
    """
    a = np.asarray(samples_ms, dtype=np.float64)
    med = float(np.median(a))
    lo, hi = bootstrap_median_ci(a)
    half = (hi - lo) / 2 / med if med > 0 else float("inf")
    mean = float(a.mean())
    cv = float(a.std(ddof=1)) / mean if len(a) > 1 and mean > 0 else 0.0
    spread = (max(round_p50_ms) / min(round_p50_ms) - 1.0) if round_p50_ms and min(round_p50_ms) > 0 else 0.0
    env = env or {}
    lim = NOISY_LIMITS
    over = {}  # NOISY_LIMITS key -> why
    if half > lim["ci_halfwidth"]:
        over["ci_halfwidth"] = f"median's 95% CI +-{half:.1%} (limit +-{lim['ci_halfwidth']:.0%})"
    if spread > lim["spread"]:
        over["spread"] = f"rounds' medians {spread:.0%} apart (limit {lim['spread']:.0%})"
    if cv > lim["cv"]:
        over["cv"] = f"cv {cv:.0%} (limit {lim['cv']:.0%})"
    share = env.get("others_cpu_share")
    if share is not None and share > lim["others_cpu_share"]:
        over["others_cpu_share"] = f"other processes used {share:.0%} of the cores (limit {lim['others_cpu_share']:.0%})"
    mhz = env.get("mhz") or [None, None]
    if None not in mhz and min(mhz) > 0 and max(mhz) / min(mhz) - 1 > lim["freq_change"]:
        over["freq_change"] = f"clock moved {mhz[0]:.0f} -> {mhz[1]:.0f} MHz"
    loads = [x for x in env.get("load_1min") or [] if x is not None]
    if share is None and loads and max(loads) > threads + lim["load_excess"]:
        over["load_excess"] = f"load average {max(loads):.1f} with {threads} benchmark thread(s)"
    reasons = list(over.values())
    return {"verdict": "noisy" if reasons else "stable", "reasons": reasons, "exceeded": list(over),
            "median_ms": round(med, 5), "ci95_ms": [round(lo, 5), round(hi, 5)], "ci_halfwidth": round(half, 5),
            "cv": round(cv, 5), "spread": round(spread, 5), **env}



def summarize(rounds_s: list[list[float]], env: dict | None = None, threads: int = 1) -> dict:
    """The result of one case from its per-round seconds: statistics, rounds, samples, stability."""
    samples = [x for r in rounds_s for x in r]
    med = [float(np.median(r)) * 1e3 for r in rounds_s if len(r)]
    spread = (max(med) / min(med) - 1.0) if med and min(med) > 0 else 0.0
    ms = np.asarray(samples, dtype=np.float64) * 1e3
    stride = max(1, -(-len(ms) // MAX_SAMPLES_KEPT))
    return {"latency_ms": stats_ms(samples), "runs": len(samples),
            "rounds": {"n": len(med), "p50_ms": [round(m, 4) for m in med], "spread": spread},
            "samples_ms": [round(float(x), 4) for x in ms[::stride]],
            "stability": verdict(ms, med, env, threads)}


def _chunk_for(per_run_s: float, max_seconds: float, n_cases: int) -> int:
    """Runs per case per round so that MIN_ROUNDS rounds use about a quarter of the budget."""
    round_s = max_seconds / 4 / MIN_ROUNDS / max(1, n_cases)
    return int(max(1, min(10_000, round_s / max(per_run_s, 1e-7))))


# The statistic a latency model is fitted to and judged by (``undisturbed_ms``): this VM slows 2-4x
# for 0.1-1 s at a time (a kernel timed every 17 ms for a minute: most samples within 5% of the
# fastest, runs of slow ones in between). Slowdowns only ever add time, so a low percentile of the
# runs is the machine's own speed, where a median moves with how much of the window was slow.
UNDISTURBED_PERCENTILE = 10


def undisturbed_ms(result: dict) -> float:
    """The ``UNDISTURBED_PERCENTILE``-th percentile of a timed case's runs (ms)."""
    lat = result["latency_ms"]
    return float(lat["p10"] if "p10" in lat else lat["min"])


def round_ratios(a_round_ms, b_round_ms) -> np.ndarray:
    """Per-round time ratios a/b of two cases timed in the same rounds of ``time_cases`` (their
    ``rounds.p50_ms``): a step in the machine's speed moves both files of a round, so their median is
    the comparison the VM's speed steps do not bias. Truncated to the rounds both have."""
    a = np.asarray(a_round_ms, dtype=float)
    b = np.asarray(b_round_ms, dtype=float)
    n = min(len(a), len(b))
    return a[:n] / b[:n]


def time_cases(cases: list, runs: int | None, warmup: int, rounds: int = DEFAULT_ROUNDS, on_round=None,
               max_seconds: float | None = None, target_ci: float = TARGET_CI, threads=None) -> list[dict]:
    """Time several ``(invoke, native_input)`` cases in interleaved rounds. A case may carry a third
    item, ``before()``: called ahead of each of its runs, untimed (``predict.measure.Canary``'s warm run).

    Each case is warmed up, then the cases take turns round by round: a burst of load from
    elsewhere on the machine then shows up as one round's median standing apart
    (``rounds.spread``) instead of skewing one case against another. The turn order is shuffled
    every round (seeded: reruns take the same orders): in a fixed order each case always follows the
    same neighbour, whose cache footprint and the VM's periodic speed steps then bias it the same way
    every round.

    ``runs`` given: exactly that many runs, split into ``rounds`` chunks (scripts and tests).
    ``runs=None``: measure until stable: rounds go on until every case's median has a 95% CI
    within +-``target_ci`` (after at least ``rounds`` rounds and MIN_RUNS runs), or until
    ``max_seconds`` (default DEFAULT_MAX_SECONDS) have passed; ``measure.stopped`` says which.
    ``threads``: each case's thread count (for the load-average rule of ``verdict``).
    """
    t_start = time.perf_counter()
    env = Environment()
    clock = time.perf_counter
    adaptive = runs is None
    n_warm = max(1, int(warmup)) if adaptive else int(warmup)  # adaptive: one call at least, to size rounds
    per_run = [0.0]
    befores = [case[2] if len(case) > 2 else None for case in cases]
    for invoke, native, *_ in cases:
        t0 = clock()
        for _ in range(n_warm):
            invoke(native)
        per_run.append((clock() - t0) / max(1, n_warm))
    budget = float(max_seconds if max_seconds is not None else DEFAULT_MAX_SECONDS)
    if adaptive:
        chunks = [_chunk_for(max(per_run), budget, len(cases))]
    else:
        chunks = split_runs(runs, rounds)
    samples: list[list[list[float]]] = [[] for _ in cases]
    stopped = "fixed"
    r = 0
    order = random.Random(0)
    while True:
        chunk = chunks[r] if not adaptive else chunks[0]
        turns = list(range(len(cases)))
        order.shuffle(turns)
        for i in turns:
            invoke, native, *_ = cases[i]
            before = befores[i]
            got = []
            for _ in range(chunk):
                if before is not None:
                    before()
                t0 = clock()
                invoke(native)
                got.append(clock() - t0)
            samples[i].append(got)
        r += 1
        if on_round:
            on_round(r, len(chunks) if not adaptive else None)
        if not adaptive:
            if r >= len(chunks):
                break
            continue
        if r < max(1, int(rounds)) or r * chunk < MIN_RUNS:
            continue
        if all(ci_halfwidth([x for rr in s for x in rr], n_boot=300) <= target_ci for s in samples):
            stopped = "ci"
            break
        if clock() - t_start >= budget:
            stopped = "budget"
            break
    envd = env.finish()
    measure = {"mode": "adaptive" if adaptive else "fixed", "stopped": stopped, "order": "shuffled per round",
               "elapsed_s": round(time.perf_counter() - t_start, 2),
               "max_seconds": budget if adaptive else None, "target_ci": target_ci if adaptive else None}
    ths = list(threads) if threads is not None else [1] * len(cases)
    return [{**summarize(s, envd, int(t)), "measure": measure} for s, t in zip(samples, ths)]


def peak_rss_mb() -> float:
    """Peak resident set of this process so far.

    /proc's VmHWM first: getrusage's ru_maxrss survives exec on Linux, so a runner started from
    a big parent (torch loaded) would report the parent's peak instead of its own.
    """
    status = _read("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name as /proc/cpuinfo gives it (x86 'model name', ARM 'Hardware'/'Model' or part ids).

    ``cpuinfo``: another device's /proc/cpuinfo text (a phone read over adb) instead of this machine's.
    """
    text = (_read("/proc/cpuinfo") or "") if cpuinfo is None else cpuinfo
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip().lower(), v.strip())
    for key in ("model name", "hardware", "model", "cpu model"):
        if fields.get(key):
            return fields[key]
    if fields.get("cpu part"):
        return f"ARM implementer {fields.get('cpu implementer', '?')} part {fields['cpu part']}"
    return (platform.processor() or platform.machine()) if cpuinfo is None else "unknown"


# The SIMD features that decide how fast int8 can be relative to fp32: without a dot-product
# instruction (x86 VNNI, ARM dotprod/i8mm) an int8 GEMM issues as many multiply-adds per cycle
# as fp32 FMA does, so a quantized model gains only memory traffic.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16",  # x86
             "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2", "fphp", "asimdhp")  # aarch64 (Features line)
# Short names for file names and headers (``host_<cpu>_<isa>``): the flags that change speed in kind.
_ISA_TAG = (("amx_int8", "amx"), ("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"), ("avx512f", "avx512"),
            ("avx2", "avx2"), ("fma", "fma"), ("i8mm", "i8mm"), ("asimddp", "dotprod"), ("asimdhp", "fp16"),
            ("sve", "sve"), ("asimd", "neon"))


def isa_features(cpuinfo: str | None = None) -> list[str]:
    """The ISA_FLAGS this CPU advertises in /proc/cpuinfo (its 'flags' or 'Features' line)."""
    text = (_read("/proc/cpuinfo") or "") if cpuinfo is None else cpuinfo
    have: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            have.update(value.split())
    return [f for f in ISA_FLAGS if f in have]


def int8_dot_product(features: list[str]) -> bool:
    return any(f in features for f in INT8_DOT_FLAGS)


def isa_tag(features: list[str]) -> str:
    """'avx2-fma-novnni', 'avx512-avx512vnni', 'neon-dotprod-i8mm': the ISA in a file name.

    Without an int8 dot-product instruction the tag says so ('novnni' / 'nodotprod'): that is
    what makes int8 results from two machines "of the same kind" differ in kind.
    """
    have = set(features)
    tags = [t for f, t in _ISA_TAG if f in have]
    if "avx512" in tags and "avx2" in tags:
        tags = [t for t in tags if t not in ("avx2", "fma")]  # implied
    if not int8_dot_product(list(have)):
        tags.append("nodotprod" if "asimd" in have else "novnni")
    return "-".join(tags) or "unknown"


def machine_summary(dev: dict) -> str:
    """One line naming a device: CPU, ISA that matters, cores (every results file's header)."""
    isa = dev.get("isa")
    isa_s = (", ".join(isa) + ("" if int8_dot_product(isa) else "; no int8 dot-product instruction")) if isa else "ISA unknown"
    cores = dev.get("cores")
    usable = dev.get("cores_usable")
    core_s = f"{cores} cores" + (f" ({usable} usable)" if usable and usable != cores else "") if cores else "cores unknown"
    return f"{dev.get('cpu') or 'unknown CPU'} ({dev.get('machine') or '?'}; {isa_s}; {core_s})"


def machine_info() -> dict:
    """What a benchmark record says about the device it ran on."""
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {"machine": platform.machine(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "cores_usable": affinity, "governor": governor,
            "max_mhz": int(max_khz) // 1000 if max_khz and max_khz.isdigit() else None,
            "isa": isa_features(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def gemm_peak_gmacs(n: int = 512, seconds: float = 0.5) -> dict:
    """Single-thread fp32 GEMM throughput (GMAC/s): the CPU's practical compute ceiling.

    BLAS threads are held to one for this measurement (threadpoolctl where installed, which
    also covers a numpy already loaded with its own pool), so the figure is per core.
    """
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(1)
        how = "numpy+threadpoolctl"
    except ImportError:
        limiter = None
        how = "numpy"
    try:
        a @ b
        best = float("inf")
        end = time.perf_counter() + seconds
        reps = 0
        while reps < 3 or time.perf_counter() < end:
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
            reps += 1
    finally:
        if limiter is not None:
            limiter.unregister() if hasattr(limiter, "unregister") else limiter.__exit__(None, None, None)
    return {"gmacs": round(n ** 3 / best / 1e9, 3), "n": n, "how": how, "precision": "fp32",
            "method": f"{how} sgemm {n}"}


def int8_gemm_peak_gmacs(n: int = 512, seconds: float = 0.5) -> dict | None:
    """Single-thread int8 GEMM throughput (GMAC/s) through ONNX Runtime's MatMulInteger (u8 x s8).

    The int8 ceiling of this CPU as a real int8 engine reaches it (MLAS: VNNI/AMX where the CPU
    has them, else pmaddubsw), so an int8 model's fraction of peak compares like with like.
    None where onnxruntime or onnx (which builds the one-node model) is missing.
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    b = np.random.default_rng(1).integers(-127, 128, size=(n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).integers(0, 256, size=(n, n), dtype=np.uint8)
    feed = {"a": a}
    sess.run(None, feed)
    best = float("inf")
    end = time.perf_counter() + seconds
    reps = 0
    while reps < 3 or time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    how = f"onnxruntime {ort.__version__}"
    return {"gmacs": round(n ** 3 / best / 1e9, 3), "n": n, "how": how, "precision": "int8",
            "method": f"{how} MatMulInteger u8s8 {n}"}


# Which kernel bounds a file of each precision: fp16 files run fp32 arithmetic on CPUs without
# fp16 FMA (XNNPACK converts weights on load), dynamic-range files do their convs in int8.
PEAK_PRECISION = {"fp32": "fp32", "fp16": "fp32", "int8": "int8", "dynamic": "int8"}


def peak_for(precision: str | None) -> dict | None:
    """The single-thread peak that matches a file's precision (fp32 sgemm or int8 GEMM)."""
    if PEAK_PRECISION.get(precision or "fp32", "fp32") == "int8":
        return int8_gemm_peak_gmacs()
    return gemm_peak_gmacs()
