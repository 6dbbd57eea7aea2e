"""Before/after of the TFLite int8 export's graph rewrite (issue 15, item 5): the padded max-pool after
the stem's ReLU written as a zero pad + max-pool (``export/xnnpack_rewrite.zero_pad_max_pools``).

For each model (untrained, 224 px, batch 1, 1 thread) the int8 file with the rewrite (what
``edge export --format tflite --precision int8`` writes), the same export without it, and the fp32
file are timed in one interleaved run (``runtime.timing.time_cases``; paired per-round ratios), and
with ``--qemu`` each file's aarch64 instructions per inference are counted under qemu (Cortex-A76
ISA; deterministic), which is where int8's gain over fp32 shows on a host without VNNI.

    .venv/bin/python bench/tflite_int8_rewrite.py [--models v1_g3 v2_1.0x] [--runs 300] [--qemu]

Writes DIR/tflite_int8_rewrite.{json,md} (default bench/results).
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import shufflenet_edge as se  # noqa: E402
from shufflenet_edge.bench.report import versions  # noqa: E402
from shufflenet_edge.export import export, xnnpack_rewrite  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.runtime import open_engine  # noqa: E402
from shufflenet_edge.runtime.timing import machine_info, round_ratios, time_cases  # noqa: E402

FORMS = ("fp32", "int8 before", "int8 after")


def files(model: str, size: int, work: Path) -> dict:
    out = {"int8 after": export(model=model, format="tflite", precision="int8", input_size=size, calib_size=32,
                                out=work / "after", quiet=True).path,
           "fp32": export(model=model, format="tflite", precision="fp32", input_size=size, out=work / "fp32",
                          quiet=True).path}
    rewrite = xnnpack_rewrite.zero_pad_max_pools
    xnnpack_rewrite.zero_pad_max_pools = lambda gm: 0  # the export as it was before the rewrite
    try:
        out["int8 before"] = export(model=model, format="tflite", precision="int8", input_size=size, calib_size=32,
                                    out=work / "before", quiet=True).path
    finally:
        xnnpack_rewrite.zero_pad_max_pools = rewrite
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["v1_g3", "v2_1.0x"])
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--qemu", action="store_true", help="also count aarch64 instructions per inference under qemu")
    ap.add_argument("--conditions", default=None, help="what else ran on the machine (kept in the JSON and the md)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    meta = {**machine_info(), "versions": versions(), "runs": args.runs, "input_size": args.input_size,
            "command": "python bench/tflite_int8_rewrite.py " + shlex.join(sys.argv[1:]), "conditions": args.conditions,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tflite_rewrite.") as tmp:
        paths = {(m, f): p for m in args.models for f, p in files(m, args.input_size, Path(tmp) / m).items()}
        keys = list(paths)
        engines = [open_engine(paths[k], threads=1) for k in keys]
        x = np.random.default_rng(1).standard_normal((1, 3, args.input_size, args.input_size)).astype(np.float32)
        timed = dict(zip(keys, time_cases([(e.invoke, e.prepare(x)) for e in engines], runs=args.runs,
                                          warmup=max(3, args.runs // 20))))
        insns = {}
        if args.qemu:
            for k in keys:
                rec = se.bench(artifact=paths[k], device="arm", target="qemu", threads="1", runs=3, warmup=1, quiet=True)[0]
                insns[k] = rec.get("instructions_per_inference")
        for m in args.models:
            rounds = {f: timed[(m, f)]["rounds"]["p50_ms"] for f in FORMS}
            row = {"model": m, "p50_ms": {f: timed[(m, f)]["latency_ms"]["p50"] for f in FORMS},
                   "load_1min": (timed[(m, "fp32")].get("stability") or {}).get("load_1min"),
                   "after_over_before": float(np.median(round_ratios(rounds["int8 after"], rounds["int8 before"]))),
                   "speedup_over_fp32": {f: float(np.median(round_ratios(rounds["fp32"], rounds[f])))
                                         for f in ("int8 before", "int8 after")}}
            if insns:
                row["arm_instructions"] = {f: insns[(m, f)] for f in FORMS}
                row["arm_ratio_fp32_over"] = {f: insns[(m, "fp32")] / insns[(m, f)] for f in ("int8 before", "int8 after")}
            rows.append(row)
            print(m, row, flush=True)
    write_json(args.out / "tflite_int8_rewrite.json", {"machine": meta, "rows": rows})
    lines = [f"# TFLite int8: the padded max-pool rewrite, before and after (ai-edge-litert {meta['versions'].get('ai-edge-litert')})",
             "", f"{meta['cpu']} ({', '.join(meta['isa'])}), 1 thread, batch 1, {args.input_size} px, untrained models, "
             f"{args.runs} runs per file interleaved (paired per-round ratios); {meta['created']}.  ",
             f"Rerun: `{meta['command']}`" + (f"  \nConditions: {meta['conditions']}" if meta.get("conditions") else ""), "",
             "| model | int8 after / before (host) | int8 speedup over fp32, before -> after (host) |"
             + (" aarch64 Minsn fp32 / int8 before / int8 after | ARM fp32/int8 ratio, before -> after |" if args.qemu else ""),
             "|---|---:|---:|" + ("---:|---:|" if args.qemu else "")]
    for r in rows:
        cells = [r["model"], f"{r['after_over_before']:.3f}",
                 f"{r['speedup_over_fp32']['int8 before']:.2f}x -> {r['speedup_over_fp32']['int8 after']:.2f}x"]
        if args.qemu:
            a = r["arm_instructions"]
            cells += [" / ".join(f"{a[f] / 1e6:.2f}" for f in FORMS),
                      f"{r['arm_ratio_fp32_over']['int8 before']:.2f}x -> {r['arm_ratio_fp32_over']['int8 after']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    write_text(args.out / "tflite_int8_rewrite.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'tflite_int8_rewrite.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
