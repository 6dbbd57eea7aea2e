"""Host latency suite: the models of the speedup study x {torch eager, ONNX fp32/int8, TFLite
fp32/fp16/int8} x {1, 2} threads, through `edge bench` (shufflenet_edge.bench.bench).

    .venv/bin/python bench/host_suite.py [--models v2_1.0x ...] [--variants onnx:int8 ...] [--runs 50 | --max-seconds 8] [--resume]

Writes bench/results/host_<cpu-slug>_<isa>.{json,md} (e.g. host_amd-epyc_avx2-fma-novnni: the ISA
in the name, because int8 results from machines "of the same kind" with and without VNNI differ in
kind) after every configuration, so a partial run keeps its rows. Without --runs each file is
measured until its median's 95% CI is within +-2% or --max-seconds are spent. Models are untrained (latency does not depend on the weights); int8 is calibrated on
random inputs.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shufflenet_edge.bench import bench  # noqa: E402
from shufflenet_edge.bench.report import markdown, versions  # noqa: E402
from shufflenet_edge.errors import EdgeError  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.runtime.timing import cpu_model, isa_features, isa_tag  # noqa: E402

MODELS = ["v1_g3_0.5x", "v1_g3", "v1_g3_2.0x", "v2_0.5x", "v2_1.0x", "v2_1.5x", "v2_2.0x", "mobilenet_v1_1.0x", "alexnet"]
VARIANTS = [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "int8")]
QEMU_VARIANTS = [("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")]


def _variant(text: str) -> tuple[str, str]:
    fmt, _, precision = text.partition(":")
    return fmt, precision or "fp32"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--variants", nargs="+", type=_variant, default=None,
                    help="format:precision pairs, e.g. torch:fp32 onnx:int8 (default: the suite's)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=None, help="fixed runs per file (default: until stable)")
    ap.add_argument("--max-seconds", type=float, default=8.0, help="budget per file when measuring until stable")
    ap.add_argument("--resume", action="store_true", help="keep rows already in the results file")
    ap.add_argument("--qemu", action="store_true",
                    help="emulated aarch64 instead (1 thread, ONNX/TFLite fp32 + int8, instruction counts): "
                         "writes bench/results/qemu_arm64.{json,md}")
    args = ap.parse_args(argv)
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    out = args.out / ("qemu_arm64" if args.qemu else f"host_{slug}_{isa_tag(isa_features())}")
    variants = args.variants or (QEMU_VARIANTS if args.qemu else VARIANTS)
    where = dict(device="arm", target="qemu", threads="1", runs=min(args.runs or 3, 3), warmup=1) if args.qemu else \
        dict(threads=args.threads, runs=args.runs, warmup=5, max_seconds=None if args.runs else args.max_seconds)
    records = json.loads(out.with_suffix(".json").read_text()) if args.resume and out.with_suffix(".json").is_file() else []
    done = {(r["model"], r["format"], r["precision"]) for r in records}
    failures = 0
    for model in args.models:
        for fmt, precision in variants:
            if (model, fmt, precision) in done:
                continue
            try:
                got = bench(model=model, format=fmt, precision=precision, quiet=True, **where)
            except EdgeError as exc:
                print(f"{model} {fmt} {precision}: FAILED {exc}", flush=True)
                failures += 1
                continue
            records += got
            for r in got:
                print(f"{model:18s} {fmt:6s} {precision:5s} t{r['threads']} p50 {r['latency_ms']['p50']:8.3f} ms", flush=True)
            write_json(out.with_suffix(".json"), records)
            write_text(out.with_suffix(".md"), markdown(
                records, "Emulated aarch64 suite (qemu)" if args.qemu else "Host latency suite",
                "python bench/host_suite.py" + (" --qemu" if args.qemu else ""), versions())
                + "\nUntrained models, batch 1, 224x224; the machine is a shared 2-core VM, so compare rows "
                  "measured in one run and read cv/spread before trusting a small difference.\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
