"""Quantization accuracy study: does int8 / fp16 keep the accuracy of a trained model?

Trains v1_g3 and v2_1.0x (small-input variants, 32x32) on ``digits`` with the default recipe,
exports each to ONNX and TFLite in every precision (int8 calibrated on the training split),
evaluates every file on the same test split with ``shufflenet_edge.evaluate`` and times it
(batch 1, 1 thread). Writes bench/results/quant_accuracy.{json,md}.

    .venv/bin/python bench/quant_accuracy.py [--models v1_g3 v2_1.0x] [--reuse]

Targets (issue 6): int8 loses <= 1.0 point of top-1 against fp32, fp16 <= 0.2 points.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shufflenet_edge.data import calibration_array  # noqa: E402
from shufflenet_edge.evaluate import evaluate  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.train import train  # noqa: E402

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "int8", "dynamic")
TARGET_PTS = {"fp16": 0.2, "int8": 1.0}


def _cpu() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _train(name: str, work: Path, reuse: bool) -> dict:
    out = work / name
    if reuse and (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    if out.exists():
        import shutil

        shutil.rmtree(out)
    t0 = time.perf_counter()
    s = train(name, "digits", out=out, seed=0)
    s["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "summary.json", s)
    return s


def _export(name: str, ckpt: Path, fmt: str, precision: str, out: Path, calib_size: int):
    """Through the project's export API (the same code `edge export` runs) when it is installed."""
    try:
        from shufflenet_edge.export import export
    except ImportError:
        return _fallback_export(name, ckpt, fmt, precision, out, calib_size)
    r = export(model=name, checkpoint=str(ckpt), format=fmt, precision=precision, calib="digits", calib_size=calib_size,
               out=str(out), quiet=True)
    return Path(r.path), r.to_dict()


def _fallback_export(name: str, ckpt: Path, fmt: str, precision: str, out: Path, calib_size: int):
    """Used only while shufflenet_edge.export is absent: the converters' documented recipes
    (toolchain.md), batch 1, NCHW, with the sidecar fields eval reads."""
    from shufflenet_edge.models import create_model

    model = create_model(checkpoint=ckpt)
    meta = model.edge_meta
    h, w = meta["input_size"]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{meta['name']}_{h}_{precision}.{fmt}"
    x = torch.zeros(1, 3, h, w)
    calib = calibration_array("digits", (h, w), calib_size)
    if fmt == "onnx":
        fp32 = out / f"{meta['name']}_{h}_fp32.onnx"
        if not fp32.is_file() or precision == "fp32":
            torch.onnx.export(model, (x,), str(fp32), dynamo=True, opset_version=18)
            import onnx

            proto = onnx.load(str(fp32))  # one self-contained file, so its size is the model's size
            onnx.save(proto, str(fp32))
            Path(str(fp32) + ".data").unlink(missing_ok=True)
        if precision == "fp16":
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16

            onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(path))
        elif precision == "int8":
            from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

            in_name = __import__("onnx").load(str(fp32)).graph.input[0].name

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter([{in_name: calib[i:i + 1]} for i in range(len(calib))])

                def get_next(self):
                    return next(self.it, None)

            quantize_static(str(fp32), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        elif precision == "dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
    else:
        import litert_torch

        fp32 = out / f"{meta['name']}_{h}_fp32.tflite"
        if not fp32.is_file() or precision == "fp32":
            litert_torch.convert(model.eval(), (x,)).export(str(fp32))
        if precision == "int8":
            from litert_torch.quantize import pt2e_quantizer
            from litert_torch.quantize.quant_config import QuantConfig
            from torchao.quantization.pt2e import quantize_pt2e

            m = torch.export.export(model.eval(), (x,)).module()
            quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
                pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
            m = quantize_pt2e.prepare_pt2e(m, quantizer)
            with torch.no_grad():
                for i in range(len(calib)):
                    m(torch.from_numpy(calib[i:i + 1]))
            m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
            litert_torch.convert(m, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
        elif precision in ("fp16", "dynamic"):
            from ai_edge_quantizer import quantizer as aq
            from ai_edge_quantizer import recipe as recipes

            qt = aq.Quantizer(str(fp32))
            if precision == "fp16":
                qt.load_quantization_recipe([{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
                                              "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                                                            "compute_precision": "FLOAT", "explicit_dequantize": True}}])
            else:
                qt.load_quantization_recipe(recipes.dynamic_wi8_afp32())
            qt.quantize().export_model(str(path), overwrite=True)
    side = {"model": meta["name"], "format": fmt, "precision": precision, "input_shape": [1, 3, h, w], "layout": "nchw",
            "input_size": [h, w], "num_classes": meta["num_classes"], "preprocessing": meta["preprocessing"],
            "labels": meta["labels"], "checkpoint_sha256": meta["checkpoint_sha256"], "trained": True,
            "exporter": "bench/quant_accuracy.py fallback (shufflenet_edge.export not installed)"}
    write_json(Path(str(path) + ".json"), side)
    return path, {"path": str(path), "exporter": side["exporter"]}


def _size(path: Path) -> int:
    extra = Path(str(path) + ".data")  # ONNX external weights, when an exporter writes them apart
    return path.stat().st_size + (extra.stat().st_size if extra.is_file() else 0)


def _latency(path: Path, runs: int) -> dict:
    """Batch-1, 1-thread latency; via the bench API when present, else the runtime engine directly."""
    try:
        from shufflenet_edge.bench import run_bench
    except ImportError:
        run_bench = None
    if run_bench is not None:
        try:
            recs = run_bench(str(path), threads=1, runs=runs)
            rec = recs[0] if isinstance(recs, list) else recs
            return {"p50_ms": rec["latency_ms"]["p50"], "mean_ms": rec["latency_ms"]["mean"], "engine": rec.get("engine"),
                    "via": "shufflenet_edge.bench.run_bench"}
        except TypeError:
            pass  # a different signature than expected: time it directly below
    from shufflenet_edge.runtime import open_engine

    eng = open_engine(path, threads=1)
    x = calibration_array("digits", (32, 32), 1)
    native = eng.prepare(x)
    for _ in range(10):
        eng.invoke(native)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        eng.invoke(native)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": float(np.median(times)), "mean_ms": float(np.mean(times)), "engine": eng.name,
            "via": "runtime engine invoke loop (bench API not available)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["v1_g3", "v2_1.0x"])
    ap.add_argument("--work", default=str(ROOT / "runs" / "quant_accuracy"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--calib-size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=100, help="timed runs per file")
    ap.add_argument("--reuse", action="store_true", help="reuse trained checkpoints from --work")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md (and notes) from the existing .json")
    args = ap.parse_args(argv)
    if args.render_only:
        path = Path(args.results) / "quant_accuracy.json"
        result = json.loads(path.read_text())
        result["notes"] = _notes(result["rows"])
        write_json(path, result)
        write_text(path.with_suffix(".md"), render_md(result))
        return 0
    torch.set_num_threads(2)
    work = Path(args.work)
    rows, trained = [], []
    for name in args.models:
        s = _train(name, work, args.reuse)
        trained.append(s)
        print(f"{name}: test top-1 {s['test_acc']:.2%} after {s['train_seconds']:.0f}s training", flush=True)
        ckpt = Path(s["best"])
        ref = evaluate(checkpoint=ckpt, data="digits", split="test")
        rows.append({"model": name, "format": "torch", "precision": "fp32", "top1": ref["top1"], "top5": ref["top5"],
                     "n": ref["n"], "size_bytes": ckpt.stat().st_size, "delta_pts": 0.0})
        fp32_top1 = {}
        for fmt in FORMATS:
            for precision in PRECISIONS:
                row = {"model": name, "format": fmt, "precision": precision}
                try:
                    path, info = _export(name, ckpt, fmt, precision, work / "exports", args.calib_size)
                except Exception as exc:  # report the failure, keep measuring the rest
                    row["error"] = f"export failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
                    rows.append(row)
                    print(f"  {fmt} {precision}: {row['error']}", flush=True)
                    continue
                r = evaluate(artifact=path, data="digits", split="test")
                row.update(top1=r["top1"], top5=r["top5"], n=r["n"], size_bytes=_size(path), artifact=str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                           engine=r["engine"], parity=info.get("parity"),
                           exporter=info.get("exporter", "shufflenet_edge.export"))
                if precision == "fp32":
                    fp32_top1[fmt] = r["top1"]
                row["delta_pts"] = round((r["top1"] - ref["top1"]) * 100, 2)
                if fmt in fp32_top1:
                    row["delta_vs_format_fp32_pts"] = round((r["top1"] - fp32_top1[fmt]) * 100, 2)
                if precision in TARGET_PTS:
                    row["target_pts"] = TARGET_PTS[precision]
                    row["meets_target"] = -row["delta_pts"] <= TARGET_PTS[precision] + 1e-9
                row["latency"] = _latency(path, args.runs)
                rows.append(row)
                print(f"  {fmt} {precision}: top-1 {r['top1']:.2%} ({row['delta_pts']:+.2f} pts), "
                      f"{row['size_bytes'] / 1e3:.0f} kB, {row['latency']['p50_ms']:.2f} ms", flush=True)
    result = {
        "benchmark": "quant_accuracy",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu(), "cores": __import__("os").cpu_count(), "platform": platform.platform(),
                    "note": "shared 2-core machine (other engineers' jobs running): latencies are indicative"},
        "versions": _versions(),
        "data": "digits (scikit-learn), test split n=360; int8 calibration: 256 images of the training split",
        "targets": {"int8_max_loss_pts": 1.0, "fp16_max_loss_pts": 0.2},
        "training": trained,
        "rows": rows,
    }
    result["notes"] = _notes(rows)
    results = Path(args.results)
    write_json(results / "quant_accuracy.json", result)
    write_text(results / "quant_accuracy.md", render_md(result))
    print(f"wrote {results / 'quant_accuracy.json'} and .md")
    return 0


def _notes(rows: list[dict]) -> list[str]:
    n = next((r["n"] for r in rows if r.get("n")), 0)
    notes = [f"One test image is {100 / n:.2f} points: the fp16 target (0.2 points) is met only by identical accuracy."] if n else []
    missed = [r for r in rows if r.get("meets_target") is False]
    for r in missed:
        notes.append(f"{r['model']} {r['format']} {r['precision']} misses its target: {r['delta_pts']:+.2f} points "
                     f"({-r['delta_pts'] * n / 100:.0f} more test images wrong than fp32).")
    if not missed:
        notes.append("Every fp16 and int8 file meets its target.")
    failed = [r for r in rows if "error" in r]
    notes += [f"{r['model']} {r['format']} {r['precision']}: {r['error']}" for r in failed]
    exporters = {str(r.get("exporter", "")) for r in rows if r.get("format") in FORMATS}
    if any("fallback" in e for e in exporters):
        notes.append("Exported by this script's fallback (shufflenet_edge.export was not installed yet): ONNX via "
                     "torch.onnx.export (dynamo, opset 18), fp16 via onnxruntime's float16 converter (fp32 I/O), int8 via "
                     "onnxruntime quantize_static QDQ (uint8 activations, int8 per-channel weights), dynamic via "
                     "quantize_dynamic; TFLite via litert-torch, int8 via PT2E symmetric per-channel (int8 I/O), fp16 and "
                     "dynamic via ai-edge-quantizer recipes.")
    lat = {(r["model"], r["format"], r["precision"]): r["latency"]["p50_ms"] for r in rows if r.get("latency")}
    slower = [f"{model} {fmt} {prec} ({ms:.2f} vs {lat[(model, fmt, 'fp32')]:.2f} ms)"
              for (model, fmt, prec), ms in sorted(lat.items())
              if prec != "fp32" and lat.get((model, fmt, "fp32")) and ms > lat[(model, fmt, "fp32")] * 1.1]
    if slower:
        notes.append("Slower than fp32 of the same format: " + ", ".join(slower) + ". Smaller is not faster on this "
                     "x86 CPU; shared/reference/toolchain.md measured the same for onnxruntime int8 on v1 g3 and "
                     "for dynamic-range quantization.")
    vias = {(r.get("latency") or {}).get("via") for r in rows if r.get("latency")}
    notes += [f"Latency measured with: {v}." for v in sorted(v for v in vias if v)]
    return notes


def render_md(result: dict) -> str:
    lines = [f"# Quantization accuracy on digits ({result['date']})", "",
             f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; {result['machine']['note']}.  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".  ",
             f"Data: {result['data']}. Latency: batch 1, 1 thread, median.", ""]
    for s in result["training"]:
        lines.append(f"- {s['model']}: trained {s['epochs']} epochs in {s['train_seconds']:.0f} s on {s['device']}, "
                     f"best val {s['best_val_acc']:.2%} (epoch {s['best_epoch']}), test {s['test_acc']:.2%}")
    lines += ["", "| model | format | precision | top-1 % | delta vs torch fp32 (pts) | target | size (kB) | latency p50 (ms) | engine |",
              "|---|---|---|---:|---:|---|---:|---:|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | - | - | - | - | - | {r['error']} |")
            continue
        target = "" if "target_pts" not in r else (f"<= {r['target_pts']}: " + ("met" if r["meets_target"] else "**missed**"))
        lat = r.get("latency", {}).get("p50_ms")
        lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | {r['top1'] * 100:.2f} | {r['delta_pts']:+.2f} | "
                     f"{target} | {r['size_bytes'] / 1e3:.0f} | {'-' if lat is None else f'{lat:.2f}'} | {r.get('engine', 'torch')} |")
    notes = result.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
