"""Benchmark one exported file with one engine at one or more thread counts; print JSON.

This is the program that runs *on the device*: the host imports ``run()`` directly, while the
ssh and qemu targets copy this file with ``engines.py``, ``timing.py`` and ``opgroups.py`` into
a scratch directory on the board and run ``python3 runner.py ARTIFACT ...`` there. So it
imports only the standard library, numpy and the runtime itself, and its modules are loaded
as siblings when run as a script.

Output (stdout): ``{"records": [...]}`` or ``{"error": "one line"}`` with exit code 3.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

if __package__ in (None, ""):  # run as a script on a board: siblings are plain modules
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import engines  # type: ignore
    import opgroups  # type: ignore
    import timing  # type: ignore
else:
    from . import engines, opgroups, timing

import numpy as np


def bench_input(engine, batch: int, seed: int = 0) -> np.ndarray:
    """Fixed standard-normal float32 NCHW input of the file's spatial size."""
    h, w = engine.image_size()
    if engine.batch_fixed and engine.batch_fixed != batch:
        raise engines.EngineError(f"the file has a fixed batch of {engine.batch_fixed}; --batch {batch} needs an "
                                  "ONNX export with --batch dynamic")
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)


def _profile_ort(path: str, threads: int, x: np.ndarray, runs: int, warmup: int, metadata: dict, workdir: str) -> dict:
    """ONNX Runtime's own per-node profile over ``runs`` inferences, grouped by opgroups."""
    eng = engines.OnnxRuntimeEngine(path, threads=threads, metadata=metadata, profile=True,
                                    profile_prefix=os.path.join(workdir, "ort_profile"))
    native = eng.prepare(x)
    for _ in range(warmup):
        eng.invoke(native)
    trace_path = eng.end_profiling()  # drop warm-up events: start a fresh profile
    os.unlink(trace_path)
    eng = engines.OnnxRuntimeEngine(path, threads=threads, metadata=metadata, profile=True,
                                    profile_prefix=os.path.join(workdir, "ort_profile"))
    native = eng.prepare(x)
    for _ in range(runs):
        eng.invoke(native)
    trace_path = eng.end_profiling()
    try:
        with open(trace_path) as f:
            events = json.load(f)
    finally:
        os.unlink(trace_path)
    return opgroups.group_ort_events(events, runs)


def device_record(engine: str, runtime_version: str, threads: int, batch: int, warmup: int, timed: dict, *,
                  peak_rss_mb, size_bytes, device: dict, cpu_peak: dict | None = None) -> dict:
    """The device-side part of a bench record (``shufflenet_edge.record.BenchRecord``), built the
    same way by every producer: ``timed`` is what ``timing.time_cases`` gives for one case
    (``latency_ms``, ``runs``, ``rounds`` ...); ``cpu_peak`` is ``timing.peak_for(...)`` or None
    where it was not measured."""
    return {"engine": engine, "runtime_version": runtime_version, "threads": int(threads), "batch": int(batch),
            "warmup": int(warmup), "peak_rss_mb": peak_rss_mb, "size_bytes": size_bytes, "device": dict(device),
            "cpu_peak_gmacs": cpu_peak["gmacs"] if cpu_peak else None,
            "cpu_peak_method": cpu_peak["method"] if cpu_peak else None,
            "cpu_peak_precision": cpu_peak["precision"] if cpu_peak else None, **timed}


def artifact_size(artifact: str, engine) -> int:
    """Bytes of every file of the artifact (the one opened and those the engine names beside it)."""
    return sum(os.path.getsize(f) for f in [artifact, *engine.companions()] if os.path.isfile(f))


def run(artifact: str, engine: str | None = None, threads=(1,), runs: int | None = 100, warmup: int = 10,
        rounds: int = timing.DEFAULT_ROUNDS, batch: int = 1, profile: bool = False, peak: bool = True,
        metadata: dict | None = None, workdir: str | None = None, on_round=None,
        max_seconds: float | None = None, inference_precision: str | None = None) -> list[dict]:
    """One record per thread count (device-side fields only; the host adds model facts).

    ``runs=None`` measures until stable within ``max_seconds`` (``timing.time_cases``)."""
    name = engine or engines.default_engine(artifact)
    options = {}
    if inference_precision:
        if name != "openvino":
            raise engines.EngineError(f"--inference-precision is an OpenVINO setting (add --engine openvino); "
                                      f"{name} runs the file's own precision")
        options["inference_precision"] = inference_precision
    # an engine with one threadpool per process (ExecuTorch) is sized when it loads: its thread
    # counts take turns one after another instead of round by round
    cls = engines.ENGINES.get(name)
    groups = ([[t] for t in threads] if getattr(cls, "one_pool_per_process", False) and len(set(threads)) > 1
              else [list(threads)])
    timed = []  # (engine, thread count, timing result)
    for group in groups:
        opened = [engines.open_engine(artifact, engine=name, threads=t, metadata=metadata, **options) for t in group]
        try:
            size = artifact_size(artifact, opened[0])
            meta = metadata or opened[0].metadata or {}
            x = bench_input(opened[0], batch)
            cases = [(e.invoke, e.prepare(x)) for e in opened]
            timed += zip(opened, group, timing.time_cases(cases, runs, warmup, rounds, on_round=on_round,
                                                          max_seconds=max_seconds, threads=group))
        finally:
            for e in opened:
                e.close()
    rss = timing.peak_rss_mb()
    cpu_peak = timing.peak_for(meta.get("precision")) if peak else None
    device = timing.machine_info()
    records = []
    for e, t, res in timed:
        rec = device_record(e.name, e.runtime_version, t, batch, warmup, res, peak_rss_mb=round(rss, 1), size_bytes=size,
                            device=device, cpu_peak=cpu_peak)
        if hasattr(e, "inference_precision"):
            rec["inference_precision"] = e.inference_precision
        if profile:
            if e.name != "onnxruntime":
                rec["profile"] = {"error": f"no per-op profile from Python for {e.name} (TFLite's C++ "
                                           "benchmark_model --enable_op_profiling gives one)"}
            else:
                rec["profile"] = _profile_ort(artifact, t, x, max(1, min(runs or 20, 20)), min(warmup, 3),
                                              meta, workdir or tempfile.gettempdir())
        records.append(rec)
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifact")
    p.add_argument("--engine", default=None)
    p.add_argument("--threads", default="1", help="comma-separated thread counts")
    p.add_argument("--runs", type=int, default=None, help="fixed run count (default: measure until stable)")
    p.add_argument("--max-seconds", type=float, default=None, help="time budget of the until-stable loop")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=timing.DEFAULT_ROUNDS)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--inference-precision", default=None, help="OpenVINO: f32 (default) or bf16")
    p.add_argument("--no-peak", action="store_true", help="skip the GEMM peak (instruction counting)")
    a = p.parse_args(argv)
    try:
        threads = [int(t) for t in a.threads.split(",") if t.strip()]
        records = run(a.artifact, a.engine, threads, a.runs, a.warmup, a.rounds, a.batch, a.profile,
                      peak=not a.no_peak, max_seconds=a.max_seconds, inference_precision=a.inference_precision)
    except engines.EngineError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    except Exception as exc:  # on a board, any failure must still come back as one line of JSON
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        print(json.dumps({"error": f"{type(exc).__name__}: {first}"}))
        return 3
    print(json.dumps({"records": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
