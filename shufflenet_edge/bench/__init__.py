"""``edge bench``: latency of a model or an exported file on this host or an ARM device.

>>> from shufflenet_edge.bench import bench
>>> recs = bench(model="v1_g3", format="tflite", precision="int8", threads=(1, 2))
>>> recs[0]["latency_ms"]["p50"], recs[0]["device"]["cpu"]

``--model`` exports on the fly into a cache (see ``cache.py``); ``--artifact`` benchmarks a given
file. Where it runs is a target (``targets/``, by URL scheme); how one inference runs is an
engine (``runtime/engines.py``, ``torch_engine.py``); the timing loop is ``runtime/timing.py``,
the same everywhere; what comes back is a record (``shufflenet_edge/record.py``).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import UsageError
from ..record import Subject, complete_record
from ..runtime.timing import DEFAULT_MAX_SECONDS, TARGET_CI
from . import torch_engine  # noqa: F401  (registers the torch engine)
from .targets import RunSpec, Target, TargetError, emulation_warning, parse_cpu_list, resolve_target

__all__ = ["bench", "run_bench", "BenchOptions", "complete_record", "save_records", "parse_threads", "RunSpec",
           "Target", "TargetError", "resolve_target", "FORMATS", "bench_formats"]


def bench_formats() -> tuple[str, ...]:
    """What ``--format`` takes: PyTorch eager, then every export format."""
    from ..export.formats import FORMATS as EXPORT_FORMATS

    return ("torch", *EXPORT_FORMATS)


FORMATS = bench_formats()
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


def _existing_records(path: Path) -> list:
    if path.is_dir():
        raise UsageError(f"--json-out {path} is a folder: give a JSON file to append records to, e.g. {path}/bench.json")
    if not path.exists():
        return []
    bad = f"--json-out {path} exists and is not a JSON list of bench records; not overwriting it"
    try:
        existing = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UsageError(bad) from None
    except OSError as exc:
        raise UsageError(f"cannot read --json-out {path}: {exc.strerror}") from None
    if not isinstance(existing, list):
        raise UsageError(bad)
    return existing


def check_records_file(path) -> None:
    """Before timing: --json-out must be appendable (a JSON list or absent, in a writable folder)."""
    from ..io_utils import check_writable

    path = Path(path)
    _existing_records(path)
    check_writable(path.parent, what=f"--json-out {path}")


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


@dataclass
class BenchOptions:
    """Everything ``bench()`` takes, grouped: what to run, where, and how to time it."""

    # what: a zoo model (exported on the fly, or run eagerly with format="torch") or a file
    model: object = None
    checkpoint: object = None
    format: str = "onnx"
    precision: str = "fp32"
    artifact: object = None
    input_size: object = None
    num_classes: int | None = None
    layout: str = "nchw"
    calib: str | None = None
    # where: --device/--target, and the target's own settings (its constructor's keywords)
    device: str = "host"
    target: str | None = None
    target_options: dict = field(default_factory=dict)
    # how
    engine: str | None = None
    inference_precision: str | None = None  # OpenVINO's f32 (its default here) or bf16
    threads: object = (1,)
    runs: int | None = None  # None: until stable (targets running the toolkit's loop), else their default
    max_seconds: float | None = None  # the until-stable loop's budget per file
    warmup: int | None = None
    rounds: int = 5
    batch: int = 1
    cpus: str | None = None
    profile: bool = False
    out: object = None  # append the records to this JSON list (--json-out)
    quiet: bool = False

    def check(self) -> None:
        """Usage errors that need no export and no device, so they come before either."""
        if (self.model is None and self.checkpoint is None) == (self.artifact is None):
            raise UsageError("give either --model NAME (or --checkpoint FILE) or --artifact FILE")
        self.format = str(self.format).lower()
        if self.artifact is None and self.format not in bench_formats():
            raise UsageError(f"unknown format '{self.format}' (choose from: {', '.join(bench_formats())})")
        self.threads = parse_threads(self.threads)
        if self.cpus:
            parse_cpu_list(self.cpus)  # a typo fails now, not after a long export
        if self.device == "host" and not self.quiet:
            warn_oversubscribed(self.threads)
        if self.out:
            check_records_file(self.out)  # a bad or unwritable --json-out fails now, not after the timing
        if int(self.batch) < 1:
            raise UsageError(f"bad --batch {self.batch}: must be >= 1")
        if self.max_seconds is not None and float(self.max_seconds) <= 0:
            raise UsageError(f"bad --max-seconds {self.max_seconds}: must be > 0")
        if self.inference_precision is not None:
            if self.inference_precision not in INFERENCE_PRECISIONS:
                raise UsageError(f"bad --inference-precision {self.inference_precision} "
                                 f"(choose from: {', '.join(INFERENCE_PRECISIONS)})")
            if self.engine != "openvino":
                raise UsageError("--inference-precision is an OpenVINO setting (add --engine openvino); "
                                 f"{self.engine or 'the default engine'} runs the file's own precision")


TARGET_OPTIONS = ("remote_python", "benchmark_binary", "wait")  # bench() keywords that go to the target
INFERENCE_PRECISIONS = ("f32", "bf16")  # --inference-precision (OpenVINO's INFERENCE_PRECISION_HINT)


# Engines that run a quantized file differently from the runtime that verified it at export:
# their output is checked against that runtime before anything is timed.
GATED_ENGINES = ("openvino",)


def _quantized_gate(spec: RunSpec, facts: Subject, meta: dict | None) -> dict | None:
    """Parity of a gated engine on an int8/dynamic file against the engine that verified it at
    export (the format's first engine), here (None when there is nothing to check)."""
    if not spec.is_file or spec.engine not in GATED_ENGINES or facts.precision not in ("int8", "dynamic"):
        return None
    from ..export.formats import get_format
    from ..export.parity import engine_check

    options = {"inference_precision": spec.inference_precision} if spec.inference_precision else {}
    return engine_check(spec.artifact, spec.engine, meta or {}, get_format(facts.format).runtime, **options)


def _wrong_records(spec: RunSpec, facts: Subject, gate: dict) -> list[dict]:
    """Records for a file whose output failed the check: listed as wrong, never timed."""
    from ..export.artifact import Artifact
    from ..export.parity import bar
    from ..runtime.runner import device_record
    from ..runtime.timing import machine_info

    why = (f"output is wrong: cosine {gate['cosine']:.4f} against {gate['reference']} on the same file "
           f"(the bar is {bar(facts.precision)}); not timed")
    size = Artifact.at(spec.artifact).size_bytes
    untimed = {"latency_ms": dict.fromkeys(("min", "mean", "p10", "p50", "p90", "p99", "std", "cv")), "runs": 0}
    return [{**device_record(gate["engine"], "", t, spec.batch, 0, untimed, peak_rss_mb=None, size_bytes=size,
                             device=machine_info()),
             "output": "wrong", "error": why, "parity": gate,
             "inference_precision": spec.inference_precision or "f32"} for t in spec.threads]


def bench(model=None, format: str = "onnx", precision: str = "fp32", artifact=None, checkpoint=None,
          device: str = "host", target: str | None = None, threads=(1,), runs: int | None = None,
          warmup: int | None = None, rounds: int = 5, input_size=None, batch: int = 1, cpus: str | None = None,
          remote_python: str | None = None, benchmark_binary: str | None = None, profile: bool = False,
          out=None, engine: str | None = None, num_classes: int | None = None, layout: str = "nchw",
          wait: float | None = None, calib: str | None = None, quiet: bool = False,
          max_seconds: float | None = None, json_out=None, inference_precision: str | None = None) -> list[dict]:
    """Benchmark and return one record per (artifact, engine, threads); see the module docstring.

    ``runs=None`` on a target that runs the toolkit's own loop (host, ssh): measure until the
    median's 95% CI is within +-2% or ``max_seconds`` (default ``DEFAULT_MAX_SECONDS``) are spent.

    The keywords are those of ``edge bench``; ``out`` and ``json_out`` both name the JSON list
    the records are appended to. ``run_bench(BenchOptions(...))`` is the same call.
    """
    args = dict(locals())
    opts = BenchOptions(**{f.name: args[f.name] for f in fields(BenchOptions) if f.name in args},
                        target_options={k: args[k] for k in TARGET_OPTIONS})
    opts.out = json_out or out
    return run_bench(opts)


def _file_subject(path: Path, input_size=None) -> tuple[Subject, dict]:
    """What a file is (its metadata: sidecar, else embedded, else ``input_size``), after checking
    that every file of its artifact is there and that it opens here where a runtime is installed."""
    from ..export.artifact import Artifact
    from ..export.metadata import read_metadata

    if not path.is_file():
        raise UsageError(f"artifact not found: {path}")
    art = Artifact.at(path)
    if art.missing():
        raise UsageError(f"{path.name}: its {art.format.name} artifact lacks {', '.join(p.name for p in art.missing())}")
    meta = read_metadata(path, input_size=input_size)
    _check_opens(path, meta)
    return Subject.of_artifact(path, meta, art.format.name), meta


def _subject(opts: BenchOptions, tgt: Target):
    """(what RunSpec.artifact gets, its Subject, its metadata): a file, exported on the fly if need
    be, or a module (metadata None)."""
    if opts.artifact is not None:
        path = Path(opts.artifact)
        return path, *_file_subject(path, opts.input_size)
    if opts.format == "torch":
        from ..complexity import measure
        from ..models import create_model

        if "torch" not in tgt.formats:
            raise UsageError("--format torch runs only on this host (devices get an exported file)")
        module = create_model(opts.model, num_classes=opts.num_classes, checkpoint=opts.checkpoint,
                              input_size=opts.input_size)
        meta = module.edge_meta
        return module, Subject(meta["name"], "torch", "fp32", meta["input_size"], None, measure(module).macs), None
    from .cache import cached_export

    if opts.format not in tgt.formats:
        raise UsageError(f"target {tgt.name} cannot run {opts.format} files (it runs: {', '.join(tgt.formats)})")
    from ..export.formats import get_format

    dynamic = int(opts.batch) > 1 and get_format(opts.format).dynamic_batch
    path = cached_export(opts.model, opts.format, opts.precision, checkpoint=opts.checkpoint,
                         input_size=opts.input_size, num_classes=opts.num_classes, batch="dynamic" if dynamic else 1,
                         layout=opts.layout, calib=opts.calib, quiet=opts.quiet)
    return path, *_file_subject(path)


def run_bench(opts: BenchOptions) -> list[dict]:
    """``bench()`` on an options object: check, pick the target, get the file, run, complete, save."""
    opts.check()
    if emulation_warning(opts.device, opts.target) and not opts.quiet:
        print("warning: no ARM device given (--target ssh://... or adb://..., or $EDGE_ARM_TARGET): "
              "running under qemu, timings are EMULATED", file=sys.stderr)
    tgt = resolve_target(opts.device, opts.target, **opts.target_options)
    runs = opts.runs
    if runs is None and not tgt.until_stable:
        runs = 5 if tgt.emulated else 100
    warmup = (1 if tgt.emulated else 10) if opts.warmup is None else int(opts.warmup)
    if (runs is not None and int(runs) < 1) or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
    try:
        subject, facts, meta = _subject(opts, tgt)
        if facts.format not in tgt.formats:
            raise UsageError(f"target {tgt.name} cannot run {facts.format} files (it runs: {', '.join(tgt.formats)})")
        spec = RunSpec(artifact=subject, engine=opts.engine, threads=opts.threads, runs=int(runs) if runs else None,
                       max_seconds=None if runs else float(opts.max_seconds or DEFAULT_MAX_SECONDS), warmup=warmup,
                       rounds=int(opts.rounds), batch=int(opts.batch), profile=opts.profile, cpus=opts.cpus,
                       inference_precision=opts.inference_precision)
        if spec.runs is None and not opts.quiet:  # said once the inputs are known good, before the wait
            print(f"measuring until the median's 95% CI is within +-{TARGET_CI:.0%}, at most {spec.max_seconds:g} s "
                  "per file (--max-seconds; --runs N for a fixed count)", file=sys.stderr)
        gate = _quantized_gate(spec, facts, meta)
        if gate is None or gate["passed"]:
            # a passed check stays on the record: which engine it was checked against, and how close
            records = [r if gate is None else {**r, "parity": gate} for r in tgt.run(spec)]
        else:
            records = _wrong_records(spec, facts, gate)
    finally:
        tgt.close()
    records = [complete_record(r, facts, target=tgt.name, emulated=tgt.emulated) for r in records]
    if facts.verified is False and not opts.quiet:  # after the run: an error stays the only line
        from ..export.artifact import unverified_note

        print(f"note: {unverified_note(subject, {})}", file=sys.stderr)
    if opts.out:
        save_records(opts.out, records)
    return records
