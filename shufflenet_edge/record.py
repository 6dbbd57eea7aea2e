"""The benchmark record: one typed definition, one way to complete it, one JSON Schema.

Every producer (the runner on a host, board or qemu; the torch engine; the adb target; the
demo page's reports) builds the device-side part with ``runtime.runner.device_record`` and
passes it through ``complete_record``, which adds what the host knows (model facts,
throughput, versions). ``BenchRecord`` is the only list of keys: the schema file shipped with
the package (``record.schema.json``, for users of ``edge bench --json``) is generated from it,
and a test checks that the file is current and that every producer's output validates.

Adding a field is one edit to the TypedDicts below, then
``python -m shufflenet_edge.record --write`` to regenerate the schema file.

(No ``from __future__ import annotations`` here: TypedDict needs real annotations to tell
required keys from ``NotRequired`` ones on Python 3.11.)
"""
import datetime as dt
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, Optional, TypedDict

RECORD_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("record.schema.json")


class Latency(TypedDict):
    """Milliseconds over the timed runs. A tool that prints no percentiles (adb) gives null, and so
    does a file whose output failed the check (never timed)."""

    min: Optional[float]
    mean: Optional[float]
    p10: NotRequired[Optional[float]]  # what a latency model is fitted to (``timing.undisturbed_ms``); adb gives none
    p50: Optional[float]
    p90: Optional[float]
    p99: Optional[float]
    std: Optional[float]
    cv: Optional[float]


class Rounds(TypedDict):
    """The runs split into interleaved rounds: a noisy machine shows as spread between their medians."""

    n: int
    p50_ms: list[float]
    spread: float


class Device(TypedDict):
    """Where it ran. Boards, phones and browsers add what they know (open-ended)."""

    machine: str
    cpu: str
    cores: Optional[int]
    governor: Optional[str]
    target: str
    emulated: bool
    cores_usable: NotRequired[Optional[int]]
    max_mhz: NotRequired[Optional[int]]
    isa: NotRequired[list[str]]
    system: NotRequired[str]
    python: NotRequired[str]
    cpus: NotRequired[str]


class BenchRecord(TypedDict):
    record_version: int
    model: str
    format: str
    precision: str
    engine: str
    runtime_version: str
    threads: int
    batch: int
    warmup: int
    runs: int
    latency_ms: Latency
    rounds: NotRequired[Rounds]  # absent where nothing was timed (output: wrong)
    peak_rss_mb: Optional[float]
    size_bytes: Optional[int]
    device: Device
    cpu_peak_gmacs: Optional[float]
    cpu_peak_method: Optional[str]
    cpu_peak_precision: Optional[str]  # the kernel the peak was measured with: fp32 sgemm or int8 GEMM
    input_size: Optional[list[int]]
    artifact: Optional[str]
    macs: Optional[int]
    gmacs_per_s: Optional[float]
    fraction_of_peak: Optional[float]
    fraction_of_peak_note: NotRequired[str]
    # edge reproduce: cpu_peak_gmacs is the best peak of the whole run (scope "run"); the file's own stays here
    cpu_peak_gmacs_file: NotRequired[Optional[float]]
    cpu_peak_scope: NotRequired[str]
    verified: Optional[bool]
    toolkit_version: str
    timestamp: str
    stability: NotRequired[dict]  # runtime/timing.py's verdict ("stable"/"noisy") and the figures behind it
    measure: NotRequired[dict]  # how the runs were chosen: fixed count or until stable
    samples_ms: NotRequired[list[float]]  # the per-run times (thinned to at most timing.MAX_SAMPLES_KEPT)
    instructions_per_inference: NotRequired[int]
    latency_note: NotRequired[str]
    profile: NotRequired[dict]
    benchmark_model: NotRequired[dict]
    output: NotRequired[str]  # "wrong": the engine's output failed the parity check, so it was not timed
    error: NotRequired[str]
    parity: NotRequired[dict]  # that check's figures
    inference_precision: NotRequired[str]  # OpenVINO's precision hint in force (f32, bf16)


OPEN = (Device,)  # objects that may carry keys beyond their declared ones


@dataclass(frozen=True)
class Subject:
    """What was benchmarked, as the host knows it (from the sidecar, or the model for torch)."""

    model: str
    format: str
    precision: str
    input_size: Optional[list] = None
    artifact: Optional[str] = None
    macs: Optional[int] = None
    verified: Optional[bool] = None  # None: not a file (torch)

    @classmethod
    def of_artifact(cls, path, meta: dict, fmt: str) -> "Subject":
        """An exported file, described by its sidecar ``meta`` ({} when it has none)."""
        from .export.artifact import is_verified

        return cls(meta.get("model") or Path(path).stem, fmt, meta.get("precision") or "unknown",
                   meta.get("input_size"), str(path), meta.get("macs"), is_verified(meta))


def complete_record(rec: dict, subject: Subject, *, target: str, emulated: bool) -> BenchRecord:
    """Add the subject's facts, derived throughput and versions to a device-side record."""
    from . import __version__

    p50 = rec["latency_ms"]["p50"]
    macs = subject.macs
    gmacs = (macs * rec.get("batch", 1) / (p50 / 1e3) / 1e9) if macs and p50 else None  # adb may give no p50
    peak = rec.get("cpu_peak_gmacs")
    frac = gmacs / (peak * rec["threads"]) if gmacs and peak else None
    rec.setdefault("cpu_peak_method", None)
    rec.setdefault("cpu_peak_precision", None)
    rec.update({
        "record_version": RECORD_VERSION, "model": subject.model, "format": subject.format,
        "precision": subject.precision, "input_size": list(subject.input_size) if subject.input_size else None,
        "artifact": subject.artifact, "macs": int(macs) if macs else None,
        "gmacs_per_s": round(gmacs, 3) if gmacs else None,
        # a multi-threaded run may use up to `threads` cores: its ceiling is that many single-thread peaks
        "fraction_of_peak": round(frac, 4) if frac else None,
        "verified": subject.verified,
        "toolkit_version": __version__,
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })
    if frac and frac > 1:
        busy = (rec.get("stability") or {}).get("verdict") == "noisy"
        rec["fraction_of_peak_note"] = (
            f"above 1 against the {rec.get('cpu_peak_precision') or 'fp32'} peak ({rec.get('cpu_peak_method')}): "
            + ("the machine was busy (this record is noisy), so the peak, a best-of figure taken once, came out low"
               if busy else f"this engine's {subject.precision} kernels outran that plain GEMM on this file"))
    rec.setdefault("device", {})
    rec["device"]["target"] = rec["device"].get("target") or target
    rec["device"]["emulated"] = bool(emulated)
    return rec


# ------------------------------------------------------------------ the JSON Schema, from the types

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null", dict: "object"}


def _schema_of(tp) -> dict:
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return {"type": "object", "description": (tp.__doc__ or "").strip() or None,
                "properties": {k: _schema_of(v) for k, v in hints.items()},
                "required": sorted(tp.__required_keys__), "additionalProperties": tp in OPEN}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0])}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        types = [_schema_of(a)["type"] for a in args]
        return {"type": types}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _strip_none(obj):
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items() if v is not None}
    return obj


def schema() -> dict:
    """The JSON Schema of ``edge bench --json`` output (a list of BenchRecord), from the types above."""
    record = _strip_none(_schema_of(BenchRecord))
    record["properties"]["record_version"] = {"type": "integer", "const": RECORD_VERSION}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://github.com/shufflenet-edge/shufflenet-edge/record.schema.json",
            "title": "shufflenet-edge benchmark records (edge bench --json, --json-out)",
            "description": "A list of records, one per (file, engine, thread count). Generated from "
                           "shufflenet_edge/record.py: python -m shufflenet_edge.record --write",
            "type": "array", "items": record}


def _type_ok(value, name: str) -> bool:
    return {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None, "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}[name](value)


def validate(value, spec: Optional[dict] = None, where: str = "$") -> list[str]:
    """Problems of ``value`` against ``spec`` (default: the shipped schema file), [] when valid.

    A small validator for the keywords this schema uses (type, const, properties, required,
    additionalProperties, items), so checking a record needs no extra package.
    """
    spec = json.loads(SCHEMA_FILE.read_text()) if spec is None else spec
    types = spec.get("type")
    if types is not None and not any(_type_ok(value, t) for t in ([types] if isinstance(types, str) else types)):
        return [f"{where}: {type(value).__name__} {value!r:.60} is not {types}"]
    if "const" in spec and value != spec["const"]:
        return [f"{where}: {value!r} is not {spec['const']!r}"]
    problems = []
    if isinstance(value, dict):
        props = spec.get("properties", {})
        problems += [f"{where}: missing '{k}'" for k in spec.get("required", []) if k not in value]
        if spec.get("additionalProperties", True) is False:
            problems += [f"{where}: unknown key '{k}' (declare it in shufflenet_edge/record.py)"
                         for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                problems += validate(v, props[k], f"{where}.{k}")
    if isinstance(value, list) and "items" in spec:
        for i, v in enumerate(value):
            problems += validate(v, spec["items"], f"{where}[{i}]")
    return problems


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":  # python -m shufflenet_edge.record [--write]: print or regenerate the schema file
    if sys.argv[1:] == ["--write"]:
        SCHEMA_FILE.write_text(schema_text())
        print(f"wrote {SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(schema_text())
