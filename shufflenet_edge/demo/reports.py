"""The page's ``Run benchmark`` report -> ``edge bench`` records (the same keys as every target's).

The page sends its raw per-run milliseconds, split in rounds as ``runtime/timing.py`` splits
them; the statistics and the stable/noisy verdict are computed here with ``timing.summarize``,
so a browser's p50 (and its verdict) means what a board's means.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ..export.artifact import Artifact
from ..export.formats import FORMATS
from ..io_utils import write_json
from ..record import Subject, complete_record
from ..runtime.runner import device_record
from ..runtime.timing import summarize
from .catalog import find
from .report_checks import ReportError, check_report

MAX_BODY = 1 << 20  # bytes: 100k float samples fit with room to spare
ENGINES = {f.browser_engine: f.name for f in FORMATS.values() if f.browser_engine}  # page runtime -> format


def build_record(report, models_dir: Path) -> dict:
    """Check one parsed report (``report_checks``) and return the complete bench record it stands for."""
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
    # the page's rounds, summarized as runtime/timing.py summarizes the host's: statistics,
    # samples and the stable/noisy verdict (no /proc on a phone's browser: no CPU share)
    timed = {**summarize([[v / 1e3 for v in r] for r in rounds], {"load_1min": [None, None], "others_cpu_share": None},
                         rep["threads"]),
             "measure": {"mode": "fixed", "stopped": "fixed", "elapsed_s": None, "max_seconds": None,
                         "target_ci": None}}
    device = {"machine": rep["platform"] or "unknown", "cpu": "unknown (browser)", "cores": rep["hardware_concurrency"],
              "governor": None, "target": f"browser:{ua}", "emulated": False, "user_agent": ua,
              "cross_origin_isolated": rep["cross_origin_isolated"]}
    rec = device_record(engine, rep["runtime_version"], rep["threads"], 1, rep["warmup"], timed, peak_rss_mb=None,
                        size_bytes=Artifact.at(artifact).size_bytes, device=device)
    return complete_record(rec, Subject.of_artifact(artifact, entry.metadata, entry.format), target="browser",
                           emulated=False)


def save_record(record: dict, out: Path) -> Path:
    """One JSON file (a list of one record, like ``edge bench --out``) per report, written atomically."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S.%fZ")
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(record["artifact"]).name)
    return write_json(Path(out) / f"{stamp}_{stem}_{record['engine']}.json", [record])
