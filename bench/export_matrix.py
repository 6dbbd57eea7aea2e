"""Export matrix: every ShuffleNet v1 g=3 and v2 scale x {onnx, tflite} x {fp32, fp16, int8, dynamic}.

For each file: size, conversion seconds (model build + conversion + parity check, as `edge
export` reports them) and the parity figures against PyTorch in the file's own runtime.
Models are untrained (224 px, 1000 classes), so int8 is calibrated on random inputs and the
quantized parity figures only show that the files run and roughly agree; accuracy after
quantization on a trained model is bench/quant_accuracy.py's job.

    .venv/bin/python bench/export_matrix.py [--models v1_g3 v2_1.0x] [--formats onnx] [--calib-size 64] [--resume]

Writes bench/results/export_matrix.{json,md} after every export (a partial run keeps its rows).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shufflenet_edge.bench.report import versions  # noqa: E402
from shufflenet_edge.errors import EdgeError  # noqa: E402
from shufflenet_edge.export import FORMATS, PRECISIONS, export  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.models import list_models  # noqa: E402
from shufflenet_edge.runtime.timing import machine_info  # noqa: E402

MODELS = [m for m in list_models() if m.startswith(("v1_g3", "v2_"))]
RESULTS = ROOT / "bench" / "results"


def _markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = [
        "# Export matrix",
        "",
        f"{doc['date']} on {env['machine']} ({env['cpu']}, {env['cores']} cores; shared with other jobs while it ran, "
        "so conversion seconds are indicative). "
        f"Input {doc['input_size']} px, {doc['num_classes']} classes, untrained weights; int8 calibrated on "
        f"{doc['calib_size']} random inputs; parity on {doc['parity_inputs']} fixed random inputs against PyTorch, "
        "run by onnxruntime / ai-edge-litert.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "",
        "| model | format | precision | size (MB) | vs fp32 | seconds | max abs diff | cosine | top-1 agree | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    fp32 = {(r["model"], r["format"]): r["size_bytes"] for r in doc["rows"] if r["precision"] == "fp32" and r.get("size_bytes")}
    for r in doc["rows"]:
        if r.get("error"):
            lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | - | - | - | - | - | - | FAILED: {r['error']} |")
            continue
        p = r["parity"]
        base = fp32.get((r["model"], r["format"]))
        ratio = f"{base / r['size_bytes']:.2f}x" if base else "-"
        note = "int8 I/O" if r.get("input_quantization") else ""
        lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | {r['size_bytes'] / 1e6:.2f} | {ratio} | "
                     f"{r['seconds']:.1f} | {p['max_abs_diff']:.2e} | {p['cosine']:.6f} | {p['top1_agreement']:.2f} | {note} |")
    lines += ["", "Untrained logits are nearly flat across classes, so top-1 agreement of quantized files is "
              "not meaningful here (cosine is); see quant_accuracy.md for accuracy on a trained model.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--calib-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --out and do only the missing ones")
    args = ap.parse_args(argv)

    from shufflenet_edge.export.parity import N_INPUTS

    m = machine_info()
    doc = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "environment": {"machine": m["machine"], "cpu": m["cpu"], "cores": m["cores"],
                           "host": "shared development machine", "versions": versions()},
           "input_size": args.input_size, "num_classes": 1000, "calib_size": args.calib_size,
           "parity_inputs": N_INPUTS, "rows": []}
    old = args.out / "export_matrix.json"
    if args.resume and old.is_file():
        import json

        doc["rows"] = [r for r in json.loads(old.read_text())["rows"] if "error" not in r]
    done = {(r["model"], r["format"], r["precision"]) for r in doc["rows"]}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="export_matrix.") as work:
        for name in args.models:
            for fmt in args.formats:
                for precision in args.precisions:
                    if (name, fmt, precision) in done:
                        continue
                    row = {"model": name, "format": fmt, "precision": precision}
                    try:
                        r = export(model=name, format=fmt, precision=precision, input_size=args.input_size,
                                   calib_size=args.calib_size, out=work, quiet=True)
                        row.update(size_bytes=r.size_bytes, seconds=r.seconds,
                                   parity={k: r.parity[k] for k in ("max_abs_diff", "cosine", "top1_agreement")},
                                   input_quantization=r.metadata["input_quantization"],
                                   macs=r.metadata["macs"], params=r.metadata["params"], file=r.path.name)
                        r.path.unlink()
                        Path(str(r.path) + ".json").unlink()
                    except EdgeError as exc:
                        row["error"] = str(exc)
                    doc["rows"].append(row)
                    print(f"{name:12s} {fmt:6s} {precision:7s} " + (f"FAILED {row['error']}" if "error" in row else
                          f"{row['size_bytes'] / 1e6:7.2f} MB {row['seconds']:6.1f} s  max|d| {row['parity']['max_abs_diff']:.2e}  "
                          f"cos {row['parity']['cosine']:.6f}"), flush=True)
                    doc["total_seconds"] = round(time.perf_counter() - t_all, 1)
                    args.out.mkdir(parents=True, exist_ok=True)
                    write_json(args.out / "export_matrix.json", doc)
                    write_text(args.out / "export_matrix.md", _markdown(doc))
    return 1 if any("error" in r for r in doc["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
