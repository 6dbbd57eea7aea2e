"""Which model files the demo offers, and which one the page opens on.

A file is offered when it is a regular ``.onnx``/``.tflite`` file inside the models folder
(symlinks resolved, never out of it), no part of its path is hidden (a killed export's
``.X.onnx.*.tmp/`` folder), and it is *verified*: its metadata holds a passing parity result.
The listing, the file downloads and the report endpoint all ask :func:`find`, so nothing
unlisted is served or accepted.

Default selection, first that applies: the file named with ``--model``; the fastest by the
latest browser report in the results folder; else :data:`PREFERENCE`.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..export.formats import FORMATS, SUFFIXES
from ..export.metadata import embedded_metadata, is_verified
from ..runtime.engines import EngineError, check_metadata
from .paths import inside

MAX_JSON_BYTES = 4 << 20  # sidecars and reports are a few kB; a huge file is not read into memory
# (format, precision): int8 files are the ones a phone runs fastest; dynamic-range files are slow for convolutions
PREFERENCE = (("tflite", "int8"), ("onnx", "int8"), ("tflite", "fp32"), ("onnx", "fp32"))


@dataclass(frozen=True)
class Entry:
    rel: str  # posix path under the models folder, as the page names it
    path: Path  # resolved, inside the models folder
    format: str
    metadata: dict


def _hidden(rel: str) -> bool:
    """Any dot-named part: covers every temporary name (io_utils.is_temp_name: ``.<name>.<pid>-<rand>.tmp``)."""
    return any(part.startswith(".") for part in rel.split("/"))


def read_json(path: Path):
    """A small JSON file's content, or None when it is missing, too large or not JSON."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _inside_file(path: Path) -> dict:
    """The metadata an export embeds in the file, parsed once per file version (listings repeat)."""
    st = path.stat()
    return _embedded(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _embedded(path: str, mtime_ns: int, size: int) -> dict:
    return embedded_metadata(path)


def _check(models_dir: Path, rel: str) -> tuple[Entry | None, str | None]:
    """(entry, None) for an offered file; (None, why) for a visible file that is not; (None, None)
    for anything hidden, outside the folder or not a model file (never mentioned)."""
    fmt = SUFFIXES.get(Path(rel).suffix.lower())
    path = inside(models_dir, rel)
    if fmt is None or path is None or _hidden(rel) or _hidden(path.relative_to(models_dir.resolve()).as_posix()):
        return None, None
    # the one metadata rule of eval and bench: the sidecar, else the metadata inside the file; a
    # sidecar linked out of the folder counts as missing (never read)
    side = inside(models_dir, rel + ".json")
    meta, source = (read_json(side), f"{rel}.json") if side is not None else (_inside_file(path), f"the metadata inside {rel}")
    if not meta:
        return None, f"no readable metadata (no {Path(rel).name}.json, none inside the file): export it with `edge export`"
    try:  # the same type and range checks as eval and bench: the page feeds the file by these fields
        check_metadata(meta, source)
    except EngineError as exc:
        return None, str(exc)
    if not is_verified(meta):
        return None, "unverified: its metadata holds no passing parity result (re-export it with `edge export`)"
    return Entry(rel, path, fmt, meta), None


def _candidates(models_dir: Path):
    """Relative paths of visible model files; linked folders are not entered (os.walk followlinks=False)."""
    for folder, dirs, files in os.walk(models_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUFFIXES:
                yield (Path(folder) / name).relative_to(models_dir).as_posix()


def scan(models_dir: Path) -> tuple[list[Entry], list[dict]]:
    """(offered entries, [{file, reason}] for visible model files that are not offered)."""
    entries, skipped = [], []
    for rel in _candidates(models_dir):
        entry, why = _check(models_dir, rel)
        if entry is not None:
            entries.append(entry)
        elif why is not None:
            skipped.append({"file": rel, "reason": why})
    return entries, skipped


def find(models_dir: Path, rel: str) -> Entry | None:
    """The offered entry named ``rel`` (as the page or a report names it), else None."""
    if not isinstance(rel, str) or "\x00" in rel:
        return None
    return _check(models_dir, rel)[0]


def _owner(rel: str) -> str:
    """The runtime file of the artifact ``rel`` belongs to: itself, or for its sidecar or another
    file of a several-file format (ncnn's weights beside its .param, say) that file's name."""
    if rel.endswith(".json"):
        return rel[: -len(".json")]
    for fmt in FORMATS.values():
        for suffix in fmt.files[1:]:
            if rel.lower().endswith(suffix):
                return rel[: -len(suffix)] + fmt.suffix
    return rel


def served_file(models_dir: Path, rel: str) -> Path | None:
    """A URL path under ``/models/``: a file of an offered artifact (or its sidecar), else None."""
    owner = _owner(rel)
    entry = find(models_dir, owner)
    if entry is None:
        return None
    return entry.path if owner == rel else inside(models_dir, rel)


def latest_p50(results_dir: Path) -> dict[Path, float]:
    """{resolved artifact path: p50 ms of its latest browser report} from the report files
    (``<time>_<file>_<engine>.json`` lists of bench records) in ``results_dir``."""
    latest: dict[Path, tuple[str, str, float]] = {}
    if not results_dir.is_dir():
        return {}
    for report in sorted(results_dir.glob("*.json")):
        records = read_json(report)
        for rec in records if isinstance(records, list) else []:
            try:
                p50, artifact = rec["latency_ms"]["p50"], Path(rec["artifact"]).resolve()
                order = (str(rec.get("timestamp", "")), report.name)
            except (KeyError, TypeError, ValueError, OSError):
                continue
            if isinstance(p50, (int, float)) and math.isfinite(p50) and p50 > 0:
                if artifact not in latest or order >= latest[artifact][:2]:
                    latest[artifact] = (*order, float(p50))
    return {path: v[2] for path, v in latest.items()}


def preference_rank(entry: Entry) -> tuple[int, str]:
    precision = entry.metadata.get("precision")
    key = (entry.format, precision)
    rank = PREFERENCE.index(key) if key in PREFERENCE else len(PREFERENCE) + (precision == "dynamic")
    return rank, entry.rel


def default_choice(entries: list[Entry], results_dir: Path) -> dict | None:
    """{file, why} for the file the page opens on when the URL names none."""
    if not entries:
        return None
    p50 = latest_p50(results_dir)
    timed = [(p50[e.path], e.rel) for e in entries if e.path in p50]
    if timed:
        ms, rel = min(timed)
        return {"file": rel, "why": f"fastest by the latest browser report in {results_dir} (p50 {ms:.2f} ms)"}
    best = min(entries, key=preference_rank)
    return {"file": best.rel, "why": "no browser report yet: preference order int8 TFLite, int8 ONNX, fp32 TFLite, "
                                     "fp32 ONNX, then the rest, dynamic-range last"}
