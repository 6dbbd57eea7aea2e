"""The page's ``Run benchmark`` report -> ``edge bench`` records (the same keys as every target's).

The page sends its raw per-run milliseconds, split in rounds as ``runtime/timing.py`` splits
them; the statistics and the stable/noisy verdict are computed here with ``timing.summarize``,
so a browser's p50 (and its verdict) means what a board's means.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ..io_utils import write_json
from ..runtime.timing import summarize
from .catalog import find
from .report_checks import ReportError, check_report

MAX_BODY = 1 << 20  # bytes: 100k float samples fit with room to spare
ENGINES = {"onnxruntime-web": "onnx", "tfjs-tflite": "tflite"}


class _BrowserTarget:
    name = "browser"
    emulated = False


def build_record(report, models_dir: Path) -> dict:
    """Check one parsed report (``report_checks``) and return the complete bench record it stands for."""
    from ..bench import complete_record

    rep = check_report(report)
    entry = find(models_dir, rep["artifact"])
    if entry is None:
        raise ReportError(f"unknown artifact {rep['artifact']!r}: not a listed (verified) model file in the "
                          "models directory")
    artifact, engine = entry.path, rep["engine"]
    if ENGINES.get(engine) != entry.format:
        raise ReportError(f"engine {engine!r} does not run {artifact.suffix} files")
    rounds = rep["rounds_ms"]
    ua = rep["user_agent"]
    meta = entry.metadata
    rec = {
        "engine": engine, "runtime_version": rep["runtime_version"], "threads": rep["threads"],
        "batch": 1, "warmup": rep["warmup"], "peak_rss_mb": None,
        "size_bytes": artifact.stat().st_size,
        "device": {"machine": rep["platform"] or "unknown", "cpu": "unknown (browser)",
                   "cores": rep["hardware_concurrency"], "governor": None,
                   "target": f"browser:{ua}", "emulated": False, "user_agent": ua,
                   "cross_origin_isolated": rep["cross_origin_isolated"]},
        "cpu_peak_gmacs": None,
        # the page's rounds, summarized as runtime/timing.py summarizes the host's: statistics,
        # samples and the stable/noisy verdict (no /proc on a phone's browser: no CPU share)
        **summarize([[v / 1e3 for v in r] for r in rounds], {"load_1min": [None, None], "others_cpu_share": None},
                    rep["threads"]),
        "measure": {"mode": "fixed", "stopped": "fixed", "elapsed_s": None, "max_seconds": None,
                    "target_ci": None},
    }
    return complete_record(rec, model=meta.get("model") or artifact.stem, fmt=ENGINES[engine],
                           precision=meta.get("precision") or "unknown", input_size=meta.get("input_size"),
                           artifact=artifact, macs=meta.get("macs"), target=_BrowserTarget())


def save_record(record: dict, out: Path) -> Path:
    """One JSON file (a list of one record, like ``edge bench --out``) per report, written atomically."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S.%fZ")
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(record["artifact"]).name)
    return write_json(Path(out) / f"{stamp}_{stem}_{record['engine']}.json", [record])
