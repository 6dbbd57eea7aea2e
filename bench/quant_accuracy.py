"""Quantization accuracy study: does int8 / fp16 keep the accuracy of a trained model, and when does it not?

Trains every family (ShuffleNet v1 g1/g3/g8 at 1x and 0.5x, v2 0.5x/1x, MobileNet v1 and v2; small-input
variants, 32x32) on ``digits`` with the default recipe (``--epochs`` shortens it), exports each through
the toolkit (``se.export``, the code `edge export` runs) to ONNX and TFLite in every precision (int8
calibrated on ``--calib-size`` images of the training split) and evaluates every file on the same test
split with ``se.evaluate``. ONNX int8 files follow ``--int8-policy fast`` (the default; rows list the
layers kept float); an "int8 mixed" row adds the file ``--keep-fp32 auto --max-drop 1.0 --data digits``
writes (``--no-mixed`` leaves it out).

Digits is easy: at 256 calibration images every int8 file keeps fp32 accuracy. The stress section
(``--stress-models``, int8 only) exports the models whose layers have few channels again with small
calibration sets (``--stress-calib-sizes``, 8 and 32 images) and per-tensor instead of per-channel weights
(``edge export --weight-granularity tensor``), where int8 starts to lose.

With ``--runs N`` every file of a model is timed in one process, interleaved round by round
(``shufflenet_edge.runtime.timing.time_cases``, batch 1, 1 thread), so load from elsewhere on the
machine hits every file alike; each row keeps its stability verdict. Without it, no latency.

    python bench/quant_accuracy.py [--models ...] [--stress-models ...] [--runs 100] [--reuse] [--note TEXT]

Writes bench/results/quant_accuracy.{json,md} (``--results DIR``).
Targets (issue 6): int8 loses <= 1.0 point of top-1 against fp32, fp16 <= 0.2 points.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import shufflenet_edge as se  # noqa: E402
from shufflenet_edge.bench.report import versions  # noqa: E402
from shufflenet_edge.export import FORMATS, PRECISIONS  # noqa: E402
from shufflenet_edge.export.formats import WEIGHT_GRANULARITIES  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.runtime.timing import machine_info  # noqa: E402

TARGET_PTS = {"fp16": 0.2, "int8": 1.0}
# MobileNet v1 at 0.5x: at 32 px the 1.0x network is 176M MACs, four times the others (and its training time)
MODELS = ["v1_g1", "v1_g1_0.5x", "v1_g3", "v2_1.0x", "v1_g3_0.5x", "v1_g8", "mobilenet_v2", "mobilenet_v1_0.5x",
          "v2_0.5x", "v1_g8_0.5x"]
# few channels per layer: where one scale per tensor and few calibration images hurt first
STRESS_MODELS = ["v2_0.5x", "v1_g3_0.25x", "v1_g8_0.5x"]
CALIB_SIZE = 256


def _train(name: str, work: Path, reuse: bool, epochs: int | None, subset: int | None) -> dict:
    out = work / name
    if reuse and (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    shutil.rmtree(out, ignore_errors=True)  # this script's own work folder
    t0 = time.perf_counter()
    # one thread: the study runs pinned to one core next to other jobs (torch's default pool would spin)
    s = se.train(name, "digits", out=out, seed=0, epochs=epochs, subset=subset, threads=1, quiet=True)
    s["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "summary.json", s)
    return s


def _die_with_parent() -> None:
    """Training workers stop when the run does (Linux): a killed run would otherwise leave them training,
    and taking the run's queued models, in the folders the next run (``--reuse``) trains into."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _reference(s: dict) -> dict:
    """The torch fp32 row of a trained model (its summary ``s``)."""
    ckpt = Path(s["best"])
    ref = se.evaluate(checkpoint=ckpt, data="digits", split="test")
    return {"model": s["model"], "format": "torch", "precision": "fp32", "top1": ref["top1"], "top5": ref["top5"],
            "n": ref["n"], "size_bytes": ckpt.stat().st_size, "delta_pts": 0.0, "checkpoint": str(ckpt)}


def _measure(ref: dict, fmt: str, precision: str, label: str, out: Path, setting: dict | None = None,
             **export_args) -> tuple[dict, Path | None]:
    """(row, file) for one export of ``ref``'s checkpoint, evaluated on the test split; a failed export is a
    row with ``error`` (and no file), so one failure never hides the rest. ``setting``: the stress row's keys."""
    row = {"model": ref["model"], "format": fmt, "precision": label, **(setting or {})}
    try:
        x = se.export(checkpoint=ref["checkpoint"], format=fmt, precision=precision, calib="digits", out=out,
                      quiet=True, **export_args)
    except se.EdgeError as exc:
        row["error"] = f"export failed: {exc}"
        print(f"  {fmt} {label}: {row['error']}", flush=True)
        return row, None
    r = se.evaluate(artifact=x.path, data="digits", split="test")
    row.update(top1=r["top1"], top5=r["top5"], n=r["n"], size_bytes=x.size_bytes, artifact=x.path.name,
               engine=r["engine"], parity=x.parity, exporter=x.metadata.get("exporter"),
               delta_pts=round((r["top1"] - ref["top1"]) * 100, 2))
    if x.metadata.get("kept_fp32") is not None:  # ONNX int8: which layers stayed float, and why
        row["kept_fp32"] = x.metadata["kept_fp32"]
        row["int8_policy"] = (x.metadata.get("int8_policy") or {}).get("policy")
        if (x.metadata.get("quantization") or {}).get("applied") is False:  # the latency check kept it all float
            row["all_float"] = True
    if x.metadata.get("keep_fp32_auto"):
        row["keep_fp32_auto"] = {k: x.metadata["keep_fp32_auto"][k] for k in
                                 ("drop_pts", "max_drop_pts", "int8_top1_plain", "kept_fp32")}
    if precision in TARGET_PTS:
        row["target_pts"] = TARGET_PTS[precision]
        row["meets_target"] = -row["delta_pts"] <= TARGET_PTS[precision] + 1e-9
    print(f"  {fmt} {label}{_setting_text(row)}: top-1 {r['top1']:.2%} ({row['delta_pts']:+.2f} pts), "
          f"{row['size_bytes'] / 1e3:.0f} kB", flush=True)
    return row, Path(x.path)


def _setting_text(row: dict) -> str:
    return f" [calib {row['calib_size']}, per-{row['granularity']}]" if "granularity" in row else ""


def _cases(fmt: str, precisions, mixed: bool, model: str):
    """(precision, row label, extra export arguments) per file: each precision, and for ONNX int8 with
    ``mixed`` the accuracy-bounded mixed-precision file (``--keep-fp32 auto --max-drop 1.0 --data digits``)."""
    for precision in precisions:
        yield precision, precision, {}
        if fmt != "onnx" or precision != "int8":
            continue
        # the default (fast) policy keeps a model all float where int8 is slower on this CPU (every
        # ShuffleNet v1 on an AVX2 host): its accuracy is then fp32's, so every layer int8 is shown too
        yield precision, "int8 all", {"int8_policy": "all", "name": f"{model}_int8_all"}
        if mixed:
            yield precision, "int8 mixed", {"keep_fp32": "auto", "max_drop": TARGET_PTS["int8"], "data": "digits",
                                            "name": f"{model}_int8_mixed"}


def _time_files(timed: list[tuple[dict, Path]], runs: int) -> None:
    """Batch-1, 1-thread latency of every file of one model, timed interleaved in this process; each
    row gets ``latency`` (p50, mean, cv, runs, the stability verdict and why)."""
    from shufflenet_edge.runtime import open_engine
    from shufflenet_edge.runtime.runner import bench_input
    from shufflenet_edge.runtime.timing import time_cases

    engines = [open_engine(path, threads=1) for _, path in timed]
    results = time_cases([(e.invoke, e.prepare(bench_input(e, 1))) for e in engines], runs=runs,
                         warmup=max(3, runs // 20), threads=[1] * len(engines))
    for (row, _), eng, res in zip(timed, engines, results):
        lat, stab = res["latency_ms"], res.get("stability") or {}
        row["latency"] = {"p50_ms": lat["p50"], "mean_ms": lat["mean"], "cv": lat.get("cv"), "runs": res["runs"],
                          "engine": eng.name, "round_spread": res["rounds"]["spread"],
                          "verdict": stab.get("verdict"), "noisy_reasons": stab.get("reasons")}


def _main_rows(ref: dict, args, out: Path) -> list[dict]:
    """Every format x precision of one model (plus the int8 mixed file), timed when ``--runs``."""
    rows, files, fp32_top1 = [ref], [], {}
    for fmt in args.formats:
        for precision, label, extra in _cases(fmt, args.precisions, args.mixed, ref["model"]):
            row, path = _measure(ref, fmt, precision, label, out, calib_size=args.calib_size, **extra)
            rows.append(row)
            if path is None:
                continue
            files.append((row, path))
            if label == "fp32":
                fp32_top1[fmt] = row["top1"]
            if fmt in fp32_top1:
                row["delta_vs_format_fp32_pts"] = round((row["top1"] - fp32_top1[fmt]) * 100, 2)
    if args.runs > 0 and files:
        _time_files(files, args.runs)
        for row, _ in files:
            print(f"  {row['format']} {row['precision']}: {row['latency']['p50_ms']:.3f} ms "
                  f"({row['latency']['verdict']})", flush=True)
    return rows


def _stress_rows(ref: dict, args, out: Path, main: list[dict]) -> list[dict]:
    """int8 files of one model for every calibration size x weight granularity. The main table's int8 file
    (``--calib-size``, per-channel) is reused, not exported again."""
    rows = []
    for fmt in args.stress_formats:
        for calib_size in args.stress_calib_sizes:
            for granularity in args.stress_granularities:
                setting = {"calib_size": calib_size, "granularity": granularity}
                same = [r for r in main if r["format"] == fmt and r["precision"] == ("int8 all" if fmt == "onnx" else "int8")]
                if same and calib_size == args.calib_size and granularity == WEIGHT_GRANULARITIES[0]:
                    rows.append({**same[0], **setting, "reused": "main table"})
                    continue
                name = f"{ref['model']}_int8_calib{calib_size}_{granularity}"
                policy = {"int8_policy": "all"} if fmt == "onnx" else {}  # accuracy under stress, not the latency check
                rows.append(_measure(ref, fmt, "int8", "int8", out, setting, calib_size=calib_size,
                                     weight_granularity=granularity, name=name, **policy)[0])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--formats", nargs="+", default=["onnx", "tflite"], choices=list(FORMATS))
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    ap.add_argument("--stress-models", nargs="*", default=STRESS_MODELS,
                    help="models of the stress section (int8 only); none: no stress section")
    ap.add_argument("--stress-formats", nargs="+", default=["onnx", "tflite"], choices=["onnx", "tflite"])
    ap.add_argument("--stress-calib-sizes", nargs="+", type=int, default=[8, 32, CALIB_SIZE])
    ap.add_argument("--stress-granularities", nargs="+", default=list(WEIGHT_GRANULARITIES),
                    choices=list(WEIGHT_GRANULARITIES))
    ap.add_argument("--work", default=str(ROOT / "runs" / "quant_accuracy"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--calib-size", type=int, default=CALIB_SIZE)
    ap.add_argument("--runs", type=int, default=0,
                    help="timed runs per file, interleaved per model (0: no latency; use on a quiet machine)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the digits recipe's)")
    ap.add_argument("--subset", type=int, default=None, help="train on this many images (smoke tests)")
    ap.add_argument("--reuse", action="store_true", help="reuse trained checkpoints from --work")
    ap.add_argument("--train-jobs", type=int, default=1, help="models trained at once, beside the exports")
    ap.add_argument("--no-mixed", dest="mixed", action="store_false",
                    help="skip the ONNX int8 file with --keep-fp32 auto (the 'int8 mixed' rows)")
    ap.add_argument("--note", action="append", default=[],
                    help="a line about how this run was made (e.g. what else the machine ran), shown in the .md")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md (and notes) from the existing .json")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="with --render-only: add the models of other runs' quant_accuracy.json (a study run in parts)")
    args = ap.parse_args(argv)
    results = Path(args.results)
    if args.render_only:
        path = results / "quant_accuracy.json"
        result = json.loads(path.read_text())
        for other in args.merge:
            _merge(result, json.loads(Path(other).read_text()), other)
        result["notes"] = _notes(result)
        _write(results, result)
        return 0
    t_start = time.perf_counter()
    work = Path(args.work)
    exports = work / "exports"
    shutil.rmtree(exports, ignore_errors=True)  # fresh files every run: nothing stale is evaluated
    rows, stress, trained = [], [], {}
    names = list(dict.fromkeys([*args.models, *args.stress_models]))
    # ``--train-jobs`` processes train the models in order while this one exports and evaluates those already
    # trained: on one core shared with other jobs that hides most of the training
    pool = ProcessPoolExecutor(max(1, args.train_jobs), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent)
    try:
        training = {n: pool.submit(_train, n, work, args.reuse, args.epochs, args.subset) for n in names}
        for name in names:  # a model's stress rows right after its main rows: a stopped run keeps both
            s = trained[name] = training[name].result()
            print(f"{name}: test top-1 {s['test_acc']:.2%} after {s['train_seconds']:.0f}s training", flush=True)
            ref = _reference(s)
            if name in args.models:
                rows += _main_rows(ref, args, exports / name)
            if name in args.stress_models:
                stress += [ref, *_stress_rows(ref, args, exports / name / "stress", [r for r in rows if r["model"] == name])]
            _write(results, _result(args, argv, t_start, trained, rows, stress, done=False))
    finally:
        pool.shutdown(cancel_futures=True)  # a failed run does not train the models it will not export
    result = _result(args, argv, t_start, trained, rows, stress, done=True)
    _write(results, result)
    print(f"wrote {results / 'quant_accuracy.json'} and .md ({result['seconds']} s)")
    return 0


def _result(args, argv, t_start: float, trained: dict, rows: list, stress: list, done: bool) -> dict:
    m = machine_info()
    result = {
        "benchmark": "quant_accuracy",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/quant_accuracy.py " + shlex.join(map(str, sys.argv[1:] if argv is None else argv)),
        "seconds": round(time.perf_counter() - t_start),
        # written after every model: a run stopped part-way leaves the models it finished, marked incomplete
        "complete": done,
        "machine": {"cpu": m["cpu"], "cores": m["cores"], "isa": m.get("isa"), "platform": m["system"], "python": m["python"],
                    "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
        "run_notes": args.note,
        "versions": versions(),
        "data": "digits (scikit-learn), test split n=360; int8 calibration: "
                f"{args.calib_size} images of the training split",
        "targets": {"int8_max_loss_pts": 1.0, "fp16_max_loss_pts": 0.2},
        "latency": (f"batch 1, 1 thread, median of {args.runs} runs; every file of a model timed in one process, "
                    "interleaved round by round (runtime.timing.time_cases)" if args.runs > 0 else
                    "not measured (run with --runs N on a quiet machine)"),
        "training": list(trained.values()),
        "rows": rows,
        "stress": {"what": "int8 only: calibration images x weight granularity (edge export --calib-size N "
                           "--weight-granularity {channel,tensor}); delta_pts against the model's torch fp32 top-1",
                   "formats": args.stress_formats, "calib_sizes": args.stress_calib_sizes,
                   "granularities": args.stress_granularities, "rows": stress},
    }
    result["notes"] = _notes(result)
    return result


def _merge(result: dict, part: dict, name: str) -> None:
    """Add to ``result`` the models ``part`` (another run of this script, same versions) has and it has not;
    both runs are kept in ``parts`` (command, date, seconds, complete)."""
    if part["versions"] != result["versions"] or part["data"] != result["data"]:
        sys.exit(f"error: {name} was made with other versions or data than {result['command']}: not merged")
    have = {t["model"] for t in result["training"]}
    new = {t["model"] for t in part["training"]} - have
    result.setdefault("parts", [{k: result.get(k) for k in ("command", "date", "seconds", "complete")}])
    result["parts"].append({k: part.get(k) for k in ("command", "date", "seconds", "complete")})
    result["training"] += [t for t in part["training"] if t["model"] in new]
    # rows of a (model, format) this result lacks: a model's other format from a run with the same checkpoints
    pairs = {(r["model"], r["format"]) for r in result["rows"]}
    result["rows"] += [r for r in part["rows"] if (r["model"], r["format"]) not in pairs]
    for holder in (result, result["stress"]):  # the formats both runs covered
        if "formats" in holder:
            other = part if holder is result else part["stress"]
            holder["formats"] = list(dict.fromkeys([*holder["formats"], *other.get("formats", [])]))
    spairs = {(r["model"], r["format"]) for r in result["stress"]["rows"]}
    result["stress"]["rows"] += [r for r in part["stress"]["rows"] if (r["model"], r["format"]) not in spairs]
    for rows in (result["rows"], result["stress"]["rows"]):  # a model's rows together, formats in table order
        models = list(dict.fromkeys(r["model"] for r in rows))
        rows.sort(key=lambda r: (models.index(r["model"]), ["torch", *FORMATS].index(r["format"])))
    result["complete"] = all(p.get("complete") for p in result["parts"])


def _write(results: Path, result: dict) -> None:
    write_json(results / "quant_accuracy.json", result)
    write_text(results / "quant_accuracy.md", render_md(result))


def _label(r: dict) -> str:
    return f"{r['model']} {r['format']} {r['precision']}{_setting_text(r)}"


def _notes(result: dict) -> list[str]:
    rows = result["rows"]
    stress = [r for r in (result.get("stress") or {}).get("rows", []) if r["format"] != "torch"]
    n = next((r["n"] for r in rows + stress if r.get("n")), 0)
    notes = [f"One test image is {100 / n:.2f} points: the fp16 target (0.2 points) is met only by identical accuracy."] if n else []
    missed = [r for r in rows if r.get("meets_target") is False]
    for r in missed:
        notes.append(f"{_label(r)} misses its target: {r['delta_pts']:+.2f} points "
                     f"({-r['delta_pts'] * n / 100:.0f} more test images wrong than torch fp32).")
    if rows and not missed:
        notes.append("Every fp16 and int8 file of the main table meets its target.")
    lost = [r for r in stress if r.get("meets_target") is False]
    if stress:
        notes.append("Stress settings losing more than 1 point: " + (
            ", ".join(f"{_label(r)} {r['delta_pts']:+.2f}" for r in lost) if lost else "none") + ".")
    failed = [r for r in rows + stress if "error" in r]
    notes += [f"{_label(r)}: {r['error']}" for r in failed]
    lat = {(r["model"], r["format"], r["precision"]): r["latency"]["p50_ms"] for r in rows if r.get("latency")}
    slower = [f"{model} {fmt} {prec} ({ms:.2f} vs {lat[(model, fmt, 'fp32')]:.2f} ms)"
              for (model, fmt, prec), ms in sorted(lat.items())
              if prec != "fp32" and lat.get((model, fmt, "fp32")) and ms > lat[(model, fmt, "fp32")] * 1.1]
    if slower:
        notes.append("More than 10% slower than fp32 of the same format: " + ", ".join(slower) + ".")
    # an "int8 mixed" file that kept no layer float beyond the plain int8 file's is the same network: how far
    # their times differ is what this run's noise does to one file
    same = [(r, p) for r in rows for p in rows if r["precision"] == "int8 mixed" and p["precision"] == "int8"
            and (r["model"], r["format"]) == (p["model"], p["format"]) and r.get("latency") and p.get("latency")
            and r.get("kept_fp32") == p.get("kept_fp32")]
    if same:
        ratios = [max(a["latency"]["p50_ms"], b["latency"]["p50_ms"]) / min(a["latency"]["p50_ms"], b["latency"]["p50_ms"])
                  for a, b in same]
        notes.append(f"Same network timed twice (int8 and an int8 mixed file that kept no extra layer float, {len(same)} "
                     f"models): p50s differ by up to {max(ratios):.2f}x (median {sorted(ratios)[len(ratios) // 2]:.2f}x); "
                     "latency differences smaller than that are not measured here.")
    noisy = [_label(r) for r in rows if (r.get("latency") or {}).get("verdict") == "noisy"]
    if noisy:
        notes.append(f"Latency marked noisy by the stability verdict ({len(noisy)} of {len(lat)} files; compare "
                     "with care): " + ", ".join(noisy) + ".")
    return notes


def render_md(result: dict) -> str:
    timed = any(r.get("latency") for r in result["rows"])
    m = result["machine"]
    pinned = f", pinned to CPU {','.join(map(str, m['cpu_affinity']))}" if m.get("cpu_affinity") and \
        len(m["cpu_affinity"]) < m["cores"] else ""
    lines = [f"# Quantization accuracy on digits ({result['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores{pinned}"
             + (f"; ISA: {', '.join(m['isa'])}" if m.get("isa") else "") + ".  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".  ",
             f"Data: {result['data']}. Every file exported by the toolkit (`se.export`, as `edge export`) and "
             f"evaluated by `se.evaluate`. Latency: {result.get('latency', 'batch 1, 1 thread, median')}.  ",
             f"Rerun: `{result.get('command', 'python bench/quant_accuracy.py')}`"
             + (f" ({result['seconds'] / 60:.0f} min)  " if result.get("seconds") else "  ")]
    lines += [f"Merged from a second run: `{p['command']}` ({(p.get('seconds') or 0) / 60:.0f} min)  "
              for p in (result.get("parts") or [])[1:]]
    lines += [f"Run note: {n}  " for n in result.get("run_notes") or []]
    if result.get("complete") is False:
        lines.append("**Incomplete**: the run was stopped part-way; the tables hold the models it finished.")
    lines.append("")
    for s in sorted(result["training"], key=lambda t: t["model"]):
        lines.append(f"- {s['model']}: trained {s['epochs']} epochs in {s['train_seconds']:.0f} s on {s['device']}, "
                     f"best val {s['best_val_acc']:.2%} (epoch {s['best_epoch']}), test {s['test_acc']:.2%}")
    head = ["model", "format", "precision", "top-1 %", "delta vs torch fp32 (pts)", "target", "size (kB)"]
    head += ["latency p50 (ms)", "verdict"] if timed else []
    lines += ["", "| " + " | ".join(head + ["engine"]) + " |",
              "|---|---|---|---:|---:|---|---:|" + ("---:|---|" if timed else "") + "---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | - | - | - | -"
                         f"{' | - | -' if timed else ''} | {r['error']} |")
            continue
        target = "" if "target_pts" not in r else (f"<= {r['target_pts']}: " + ("met" if r["meets_target"] else "**missed**"))
        lat = r.get("latency") or {}
        label = r["precision"] + (" (kept all float: int8 was slower here)" if r.get("all_float") else "")
        cells = [r["model"], r["format"], label, f"{r['top1'] * 100:.2f}", f"{r['delta_pts']:+.2f}", target,
                 f"{r['size_bytes'] / 1e3:.0f}"]
        if timed:
            cells += ["-" if not lat else f"{lat['p50_ms']:.3f}", lat.get("verdict") or "-"]
        lines.append("| " + " | ".join(cells + [r.get("engine", "torch")]) + " |")
    lines += _render_stress(result.get("stress") or {})
    notes = result.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _render_stress(stress: dict) -> list[str]:
    """One line per model and format: the int8 top-1 delta (points vs torch fp32) per setting."""
    rows = stress.get("rows") or []
    if not rows:
        return []
    settings = [(c, g) for c in stress["calib_sizes"] for g in stress["granularities"]]
    lines = ["", "## Stress: few calibration images, per-tensor weights", "",
             f"{stress['what']}. Cells: top-1 delta in points (bold: loses more than 1 point).", "",
             "| model | format | torch fp32 top-1 % | " + " | ".join(f"calib {c}, per-{g}" for c, g in settings) + " |",
             "|---|---|---:|" + "---:|" * len(settings)]
    ref = {r["model"]: r for r in rows if r["format"] == "torch"}
    for model in dict.fromkeys(r["model"] for r in rows):
        for fmt in stress["formats"]:
            got = {(r["calib_size"], r["granularity"]): r for r in rows if r["model"] == model and r["format"] == fmt}
            if not got:
                continue
            cells = []
            for s in settings:
                r = got.get(s)
                cells.append("-" if r is None else "failed" if "error" in r else
                             f"**{r['delta_pts']:+.2f}**" if r["delta_pts"] < -TARGET_PTS["int8"] else f"{r['delta_pts']:+.2f}")
            top1 = f"{ref[model]['top1'] * 100:.2f}" if model in ref else "-"
            lines.append(f"| {model} | {fmt} | {top1} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
