"""``--int8-policy fast``'s last step for ONNX: the int8 file must not be slower than fp32 on this CPU.

Whether int8 pays on onnxruntime depends on the CPU and on the model, not on a layer kind alone.
Measured on an AVX2 host without VNNI (bench/results/int8_layers.md): AlexNet's int8 file runs in
0.5x its fp32 time, while every int8 form of ShuffleNet v1 tried (QDQ or QOperator, u8 or s8
weights, grouped 1x1 and depthwise convs kept float, only Conv/Gemm quantized) took 1.2-2.0x:
the quantize/dequantize passes at every float/int8 boundary and the lost NCHWc conv fusions cost
more than the narrow int8 convs save. So after the kind-based choice the file is timed against
the fp32 graph, interleaved on this machine (TensorRT picks its tactics the same way), and when
int8 is slower every layer stays float: the file is then the fp32 graph, and the sidecar says so
and why (``int8_policy.latency_check``). ``--int8-policy all`` never does this.
"""
from __future__ import annotations

import shutil

import numpy as np

BUDGET_S = 3.0  # timing both files at most about this long
ROUNDS = 10  # at least: the verdict is a median over per-round ratios


def decide(int8_round_ms, fp32_round_ms) -> dict:
    """The verdict from per-round medians of both files timed in the same rounds: the median of the
    per-round ratios (a step in the machine's speed moves both files of a round), int8 kept when it
    is at most 1 (never measured slower)."""
    from ..runtime.timing import round_ratios

    ratio = float(np.median(round_ratios(int8_round_ms, fp32_round_ms)))
    return {"int8_ms": float(np.median(int8_round_ms)), "fp32_ms": float(np.median(fp32_round_ms)),
            "int8_over_fp32": round(ratio, 4),
            "decision": "int8" if ratio <= 1.0 else "float"}


def measure(int8_path, fp32_path, x: np.ndarray) -> dict:
    """Both files on onnxruntime, 1 thread, batch 1, interleaved rounds (runtime.timing)."""
    from ..runtime.engines import OnnxRuntimeEngine
    from ..runtime.timing import time_cases

    engines = [OnnxRuntimeEngine(str(p), threads=1, metadata={}) for p in (int8_path, fp32_path)]
    cases = [(e.invoke, e.prepare(x)) for e in engines]
    # the timing loop's own stopping rule (as `edge bench`): rounds until both medians are tight, at most BUDGET_S
    timed = time_cases(cases, runs=None, warmup=2, rounds=ROUNDS, max_seconds=BUDGET_S, threads=[1, 1])
    out = decide(timed[0]["rounds"]["p50_ms"], timed[1]["rounds"]["p50_ms"])
    out.update(runs=timed[0]["runs"], rounds=len(timed[0]["rounds"]["p50_ms"]), engine="onnxruntime, 1 thread")
    return out


def guard(proto, fp32_path, job, info: dict) -> dict:
    """Times ``job.path`` (the int8 file just written) against ``fp32_path``; when int8 is slower,
    writes the fp32 graph to ``job.path`` and marks every layer float in ``info`` (returned)."""
    from ..runtime.timing import isa_features
    from . import onnx_int8

    check = measure(job.path, fp32_path, np.ascontiguousarray(job.calib[:1]))
    check["isa"] = isa_features()
    info["int8_policy"]["latency_check"] = check
    if check["decision"] == "float":
        shutil.copyfile(fp32_path, job.path)
        every = [layer["name"] for layer in onnx_int8.layers(proto)]
        info["int8_policy"]["kept_fp32"] = [n for n in every if n not in (job.keep_fp32 or ())]
        info["kept_fp32"] = every
        info["quantization"] = {**info.get("quantization", {}), "applied": False,
                                "why": f"the int8 file ran slower than fp32 on this CPU ({check['int8_over_fp32']:.2f}x "
                                       "its time): every layer kept float; --int8-policy all quantizes anyway"}
        info.pop("keep_fp32_auto", None)
    return info
