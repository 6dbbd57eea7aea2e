"""The page's ``Run benchmark`` report -> ``edge bench`` records (the same keys as every target's).

The page sends its raw per-run milliseconds, split in rounds as ``runtime/timing.py`` splits
them; the statistics are computed here with ``timing.stats_ms``, so a browser's p50 means what
a board's p50 means.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..io_utils import write_json
from ..runtime.engines import load_sidecar
from ..runtime.timing import stats_ms
from .paths import inside

DEFAULT_OUT = Path("bench/results/browser")
MAX_BODY = 1 << 20  # bytes: 100k float samples fit with room to spare
MAX_SAMPLES = 100_000
ENGINES = {"onnxruntime-web": "onnx", "tfjs-tflite": "tflite"}


class ReportError(UsageError):
    """A report the server refuses (answered with HTTP 400 and this one line)."""


class _BrowserTarget:
    name = "browser"
    emulated = False


def _number(value, what: str, lo: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < lo:
        raise ReportError(f"bad {what}: {value!r}")
    return float(value)


def _text(report: dict, key: str, limit: int = 512) -> str:
    value = report.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise ReportError(f"bad {key}: expected a string of at most {limit} characters")
    return value


def build_record(report: dict, models_dir: Path) -> dict:
    """Validate one report and return the complete bench record it stands for."""
    from ..bench import complete_record

    if not isinstance(report, dict):
        raise ReportError("the report must be a JSON object")
    artifact = inside(models_dir, _text(report, "artifact", 1000))
    if artifact is None or artifact.suffix.lower() not in (".onnx", ".tflite"):
        raise ReportError(f"unknown artifact {report.get('artifact')!r}: not a model file in the models directory")
    engine = _text(report, "engine")
    if ENGINES.get(engine) != artifact.suffix.lower()[1:]:
        raise ReportError(f"engine {engine!r} does not run {artifact.suffix} files")
    rounds = report.get("rounds_ms")
    if not isinstance(rounds, list) or not rounds or not all(isinstance(r, list) and r for r in rounds):
        raise ReportError("rounds_ms must be a non-empty list of non-empty lists of milliseconds")
    if sum(len(r) for r in rounds) > MAX_SAMPLES:
        raise ReportError(f"too many samples (at most {MAX_SAMPLES})")
    rounds = [[_number(v, "latency sample", 1e-6) for v in r] for r in rounds]
    samples = [v for r in rounds for v in r]
    medians = [float(np.median(r)) for r in rounds]
    threads = int(_number(report.get("threads", 1), "threads", 1))
    cores = report.get("hardware_concurrency")
    ua = _text(report, "user_agent")
    meta = load_sidecar(artifact)
    rec = {
        "engine": engine, "runtime_version": _text(report, "runtime_version", 64), "threads": threads,
        "batch": 1, "warmup": int(_number(report.get("warmup", 0), "warmup")), "peak_rss_mb": None,
        "size_bytes": artifact.stat().st_size,
        "device": {"machine": _text(report, "platform", 128) or "unknown", "cpu": "unknown (browser)",
                   "cores": int(cores) if isinstance(cores, int) and cores > 0 else None, "governor": None,
                   "target": f"browser:{ua}", "emulated": False, "user_agent": ua,
                   "cross_origin_isolated": bool(report.get("cross_origin_isolated"))},
        "cpu_peak_gmacs": None,
        "latency_ms": stats_ms(np.asarray(samples) / 1e3), "runs": len(samples),
        "rounds": {"n": len(rounds), "p50_ms": [round(m, 4) for m in medians],
                   "spread": max(medians) / min(medians) - 1.0},
    }
    return complete_record(rec, model=meta.get("model") or artifact.stem, fmt=ENGINES[engine],
                           precision=meta.get("precision") or "unknown", input_size=meta.get("input_size"),
                           artifact=artifact, macs=meta.get("macs"), target=_BrowserTarget())


def save_record(record: dict, out: Path) -> Path:
    """One JSON file (a list of one record, like ``edge bench --out``) per report, written atomically."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S.%fZ")
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(record["artifact"]).name)
    return write_json(Path(out) / f"{stamp}_{stem}_{record['engine']}.json", [record])
