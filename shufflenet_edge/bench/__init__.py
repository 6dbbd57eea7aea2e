"""``edge bench``: latency of a model or an exported file on this host or an ARM device.

>>> from shufflenet_edge.bench import bench
>>> recs = bench(model="v1_g3", format="tflite", precision="int8", threads=(1, 2))
>>> recs[0]["latency_ms"]["p50"], recs[0]["device"]["cpu"]

``--model`` exports on the fly into a cache (see ``cache.py``); ``--artifact`` benchmarks a given
file. Where it runs is a target (``targets/``); how one inference runs is an engine
(``runtime/engines.py``, ``torch_engine.py``); the timing loop is ``runtime/timing.py``, the same
everywhere.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from ..errors import UsageError
from ..runtime.timing import DEFAULT_MAX_SECONDS
from .targets import RunSpec, Target, TargetError, parse_cpu_list, resolve_target

__all__ = ["bench", "complete_record", "save_records", "parse_threads", "RunSpec", "Target", "TargetError",
           "resolve_target", "FORMATS"]

FORMATS = ("torch", "onnx", "tflite", "ncnn", "pte")
_SUFFIX_FORMAT = {".onnx": "onnx", ".tflite": "tflite", ".param": "ncnn", ".pte": "pte"}


MAX_THREADS = 256  # hard maximum of a thread count (each thread costs memory in the runtimes)


def parse_threads(threads) -> list[int]:
    """'1,2,4' or (1, 2) -> [1, 2, 4]; every count in 1..MAX_THREADS."""
    items = str(threads).split(",") if isinstance(threads, (str, int)) else list(threads)
    try:
        out = [int(str(t).strip()) for t in items if str(t).strip()]
    except ValueError:
        raise UsageError(f"bad --threads '{threads}': use a list like 1,2,4") from None
    if not out or min(out) < 1:
        raise UsageError(f"bad --threads '{threads}': use a list like 1,2,4")
    if max(out) > MAX_THREADS:
        raise UsageError(f"bad --threads '{threads}': at most {MAX_THREADS} threads")
    return out


def warn_oversubscribed(thread_list: list[int]) -> None:
    """More threads than this machine's cores is allowed (a scaling study) but measures contention."""
    cores = os.cpu_count() or 1
    if max(thread_list) > cores:
        print(f"warning: --threads {max(thread_list)} is more than this machine's {cores} cores: "
              "the extra threads share cores", file=sys.stderr)


def complete_record(rec: dict, *, model: str, fmt: str, precision: str, input_size, artifact, macs, target: Target) -> dict:
    """Add the model facts and derived throughput to a device-side record."""
    from .. import __version__

    p50 = rec["latency_ms"]["p50"]
    gmacs = (macs * rec.get("batch", 1) / (p50 / 1e3) / 1e9) if macs and p50 else None  # adb may give no p50
    peak = rec.get("cpu_peak_gmacs")
    frac = gmacs / (peak * rec["threads"]) if gmacs and peak else None
    rec.update({
        "model": model, "format": fmt, "precision": precision, "input_size": list(input_size) if input_size else None,
        "artifact": str(artifact) if artifact else None, "macs": int(macs) if macs else None,
        "gmacs_per_s": round(gmacs, 3) if gmacs else None,
        # a multi-threaded run may use up to `threads` cores: its ceiling is that many single-thread peaks
        "fraction_of_peak": round(frac, 4) if frac else None,
        "toolkit_version": __version__,
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })
    if frac and frac > 1:
        busy = (rec.get("stability") or {}).get("verdict") == "noisy"
        rec["fraction_of_peak_note"] = (
            f"above 1 against the {rec.get('cpu_peak_precision') or 'fp32'} peak ({rec.get('cpu_peak_method')}): "
            + ("the machine was busy (this record is noisy), so the peak, a best-of figure taken once, came out low"
               if busy else f"this engine's {precision} kernels outran that plain GEMM on this file"))
    rec.setdefault("device", {})
    rec["device"]["target"] = rec["device"].get("target") or target.name
    rec["device"]["emulated"] = bool(target.emulated)
    return rec


def _existing_records(path: Path) -> list:
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder: give a JSON file to append records to, e.g. {path}/bench.json")
    if not path.exists():
        return []
    bad = f"--out {path} exists and is not a JSON list of bench records; not overwriting it"
    try:
        existing = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UsageError(bad) from None
    except OSError as exc:
        raise UsageError(f"cannot read --out {path}: {exc.strerror}") from None
    if not isinstance(existing, list):
        raise UsageError(bad)
    return existing


def check_records_file(path) -> None:
    """Before timing: --out must be appendable (a JSON list or absent, in a writable folder)."""
    from ..io_utils import check_writable

    path = Path(path)
    _existing_records(path)
    check_writable(path.parent, what=f"--out {path}")


def save_records(path, records: list[dict]) -> Path:
    """Append ``records`` to the JSON list in ``path`` (atomically): earlier results are never lost."""
    from ..io_utils import write_json

    path = Path(path)
    return write_json(path, _existing_records(path) + list(records))


def _check_opens(artifact: Path, meta: dict) -> None:
    """Open the file here when a runtime for it is installed, so a corrupt or unsuitable file is
    refused before any device is set up or any timing starts."""
    from ..runtime.engines import EngineError, default_engine, open_engine

    try:
        engine = default_engine(artifact)
    except EngineError:
        return  # no local runtime for it: the device's runner will judge
    try:
        open_engine(artifact, engine=engine, threads=1, metadata=meta).image_size()
    except EngineError as exc:
        raise UsageError(str(exc)) from None


def _artifact_facts(artifact: Path, input_size=None) -> tuple[str, str, str, list | None, int | None, dict]:
    from ..export.metadata import read_metadata

    if not artifact.is_file():
        raise UsageError(f"artifact not found: {artifact}")
    fmt = _SUFFIX_FORMAT.get(artifact.suffix.lower())
    if fmt is None:
        raise UsageError(f"unknown artifact type '{artifact.suffix}': expected one of {', '.join(_SUFFIX_FORMAT)}")
    meta = read_metadata(artifact, input_size=input_size)
    _check_opens(artifact, meta)
    return (meta.get("model") or artifact.stem, fmt, meta.get("precision") or "unknown", meta.get("input_size"),
            meta.get("macs"), meta)


# Engines that run a quantized file differently from the runtime that verified it at export:
# their output is checked against that runtime before anything is timed.
GATED_ENGINES = ("openvino",)


def _quantized_gate(path, engine, precision, meta, inference_precision) -> dict | None:
    """Parity of a gated engine on an int8/dynamic file (None when there is nothing to check)."""
    if path is None or engine not in GATED_ENGINES or precision not in ("int8", "dynamic"):
        return None
    from ..export.formats import get_format
    from ..export.parity import engine_check

    options = {"inference_precision": inference_precision} if inference_precision else {}
    return engine_check(path, engine, meta, get_format(meta.get("format") or "onnx").runtime, **options)


def _wrong_records(spec, gate: dict) -> list[dict]:
    """Records for a file whose output failed the check: listed as wrong, never timed."""
    from ..export.parity import bar

    why = (f"output is wrong: cosine {gate['cosine']:.4f} against {gate['reference']} on the same file "
           f"(the bar is {bar(spec.metadata.get('precision'))}); not timed")
    size = os.path.getsize(spec.artifact)  # gated engines run single-file formats
    return [{"engine": gate["engine"], "threads": int(t), "batch": spec.batch, "latency_ms": {"p50": None},
             "output": "wrong", "error": why, "parity": gate, "size_bytes": size,
             "inference_precision": spec.inference_precision or "f32"} for t in spec.threads]


def bench(model=None, format: str = "onnx", precision: str = "fp32", artifact=None, checkpoint=None,
          device: str = "host", target: str | None = None, threads=(1,), runs: int | None = None,
          warmup: int | None = None, rounds: int = 5, input_size=None, batch: int = 1, cpus: str | None = None,
          remote_python: str | None = None, benchmark_binary: str | None = None, profile: bool = False,
          out=None, engine: str | None = None, num_classes: int | None = None, layout: str = "nchw",
          wait: float | None = None, calib: str | None = None, quiet: bool = False,
          max_seconds: float | None = None, inference_precision: str | None = None) -> list[dict]:
    """Benchmark and return one record per (artifact, engine, threads); see the module docstring.

    ``runs=None`` on a target that runs the toolkit's own loop (host, ssh): measure until the
    median's 95% CI is within +-2% or ``max_seconds`` (default ``DEFAULT_MAX_SECONDS``) are spent.
    """
    if (model is None and checkpoint is None) == (artifact is None):
        raise UsageError("give either --model NAME (or --checkpoint FILE) or --artifact FILE")
    fmt = str(format).lower()
    if artifact is None and fmt not in FORMATS:
        raise UsageError(f"unknown format '{format}' (choose from: {', '.join(FORMATS)})")
    thread_list = parse_threads(threads)
    if cpus:
        parse_cpu_list(cpus)  # a typo fails now, not after a long export
    if device == "host" and not quiet:
        warn_oversubscribed(thread_list)
    if out:
        check_records_file(out)  # a bad or unwritable --out fails now, not after the timing
    if int(batch) < 1:
        raise UsageError(f"bad --batch {batch}: must be >= 1")
    if device == "arm" and not target and "EDGE_ARM_TARGET" not in os.environ and not quiet:
        import platform

        if platform.machine().lower() not in ("aarch64", "arm64"):
            print("warning: no ARM device given (--target ssh://... or adb://..., or $EDGE_ARM_TARGET): "
                  "running under qemu, timings are EMULATED", file=sys.stderr)
    tgt = resolve_target(device, target, wait=wait)
    emulated = tgt.emulated
    if runs is None and not getattr(tgt, "until_stable", False):
        runs = 5 if emulated else 100
    if warmup is None:
        warmup = 1 if emulated else 10
    if (runs is not None and int(runs) < 1) or int(warmup) < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
    if max_seconds is not None and float(max_seconds) <= 0:
        raise UsageError(f"bad --max-seconds {max_seconds}: must be > 0")

    module = None
    if artifact is not None:
        path = Path(artifact)
        name, fmt, precision, size, macs, meta = _artifact_facts(path, input_size)
        from ..export.metadata import is_verified

        if not quiet and not is_verified(meta):
            print(f"note: {path} is unverified: its metadata holds no passing parity check against PyTorch "
                  "(edge export records one); its latency is still real", file=sys.stderr)
    elif fmt == "torch":
        from ..complexity import measure
        from ..models import create_model

        if tgt.name not in ("host", "local"):
            raise UsageError("--format torch runs only on this host (devices get an exported file)")
        module = create_model(model, num_classes=num_classes, checkpoint=checkpoint, input_size=input_size)
        path, meta, precision = None, module.edge_meta, "fp32"
        name, size, macs = meta["name"], meta["input_size"], measure(module).macs
    else:
        from .cache import cached_export

        if fmt not in tgt.formats:
            raise UsageError(f"target {tgt.name} cannot run {fmt} files (it runs: {', '.join(tgt.formats)})")
        path = cached_export(model, fmt, precision, checkpoint=checkpoint, input_size=input_size,
                             num_classes=num_classes, batch="dynamic" if int(batch) > 1 and fmt == "onnx" else 1,
                             layout=layout, calib=calib, quiet=quiet)
        name, fmt, precision, size, macs, meta = _artifact_facts(path)
    if fmt not in tgt.formats:
        raise UsageError(f"target {tgt.name} cannot run {fmt} files (it runs: {', '.join(tgt.formats)})")

    spec = RunSpec(artifact=path, engine=engine, threads=thread_list, runs=int(runs) if runs else None,
                   max_seconds=None if runs else float(max_seconds or DEFAULT_MAX_SECONDS), warmup=int(warmup),
                   rounds=int(rounds), batch=int(batch), profile=profile, cpus=cpus, remote_python=remote_python,
                   benchmark_binary=benchmark_binary, model=module, metadata=meta if path is not None else None,
                   inference_precision=inference_precision)
    gate = _quantized_gate(path, engine, precision, meta, inference_precision)
    try:
        records = tgt.run(spec) if gate is None or gate["passed"] else _wrong_records(spec, gate)
    finally:
        tgt.close()
    records = [complete_record(r, model=name, fmt=fmt, precision=precision, input_size=size, artifact=path, macs=macs,
                               target=tgt) for r in records]
    if out:
        save_records(out, records)
    return records
