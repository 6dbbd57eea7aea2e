"""The one timing loop, its statistics, and facts about the machine it runs on.

Self-contained (standard library + numpy): shipped with ``engines.py`` and ``runner.py`` to
boards and emulated userlands, so a phone, a Pi and this host are timed by the same code.
"""
from __future__ import annotations

import os
import platform
import resource
import sys
import time

import numpy as np

DEFAULT_ROUNDS = 5


def stats_ms(samples_s) -> dict:
    """min/mean/p50/p90/p99/std (ms) and coefficient of variation of per-run seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return {"min": float(a.min()), "mean": mean, "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "std": std,
            "cv": std / mean if mean > 0 else 0.0}


def split_runs(runs: int, rounds: int) -> list[int]:
    rounds = max(1, min(int(rounds), int(runs)))
    base, extra = divmod(int(runs), rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def time_cases(cases: list, runs: int, warmup: int, rounds: int = DEFAULT_ROUNDS, on_round=None) -> list[dict]:
    """Time several ``(invoke, native_input)`` cases in interleaved rounds.

    Each case is warmed up, then the runs are split into ``rounds`` chunks and the cases take
    turns chunk by chunk: a burst of load from elsewhere on the machine then shows up as one
    round's median standing apart (``rounds.spread``) instead of skewing one case against another.
    """
    for invoke, native in cases:
        for _ in range(int(warmup)):
            invoke(native)
    samples: list[list[float]] = [[] for _ in cases]
    round_p50: list[list[float]] = [[] for _ in cases]
    chunks = split_runs(runs, rounds)
    clock = time.perf_counter
    for r, chunk in enumerate(chunks):
        for i, (invoke, native) in enumerate(cases):
            got = []
            for _ in range(chunk):
                t0 = clock()
                invoke(native)
                got.append(clock() - t0)
            samples[i].extend(got)
            round_p50[i].append(float(np.median(got)) * 1e3)
        if on_round:
            on_round(r + 1, len(chunks))
    out = []
    for s, med in zip(samples, round_p50):
        spread = (max(med) / min(med) - 1.0) if min(med) > 0 else 0.0
        out.append({"latency_ms": stats_ms(s), "runs": len(s),
                    "rounds": {"n": len(med), "p50_ms": [round(m, 4) for m in med], "spread": spread}})
    return out


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
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",  # x86
             "asimd", "asimddp", "i8mm", "sve", "sve2", "fphp", "asimdhp")  # aarch64 (Features line)


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
    return {"gmacs": round(n ** 3 / best / 1e9, 3), "n": n, "how": how}
