"""No silent loss: an export never replaces an existing file unless told to (``--overwrite``),
and an export whose file already holds the same model, checkpoint and settings is up to date."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError

# what makes two exports the same file (the sidecar keys compared)
SAME = ("model", "checkpoint_sha256", "format", "precision", "layout", "batch", "input_size", "num_classes",
        "int8_request")


def custom_target(out, name: str, suffix: str) -> Path:
    """``--name STEM``: OUT/STEM<suffix>; a plain file name, never a path or a hidden name."""
    stem = str(name).removesuffix(suffix)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", stem):
        raise UsageError(f"bad --name '{name}': use letters, digits and . _ + - (no folders), e.g. digits_v2")
    return Path(out) / f"{stem}{suffix}"


def _origin(meta: dict) -> str:
    sha = meta.get("checkpoint_sha256")
    ckpt = "untrained (random weights)" if sha in (None, "untrained") else f"checkpoint sha256 {str(sha)[:12]}"
    return f"{meta.get('model', '?')}, {ckpt}"


def existing_export(target: Path, wanted: dict, overwrite: bool) -> dict | None:
    """The existing sidecar when ``target`` already holds this very export (the caller reports it
    up to date); None when there is nothing to keep or ``overwrite``; else one UsageError that
    names what the existing file holds and how to proceed."""
    if overwrite or not target.exists():
        return None
    from ..runtime.engines import EngineError, load_sidecar

    try:
        old = load_sidecar(target)
    except EngineError:
        old = {}
    # the same calibration source and as many images (--calib-size): another size is another file
    calib_same = wanted.get("calibration") is None or all(
        (old.get("calibration") or {}).get(k) == wanted["calibration"].get(k) for k in ("source", "n"))
    if old and all(old.get(k) == wanted.get(k) for k in SAME) and calib_same and old.get("parity"):
        return old
    held = f"holds {_origin(old)}" if old else "has no sidecar (origin unknown)"
    differ = [k for k in SAME if old and old.get(k) != wanted.get(k)]
    if old and differ:
        held += f" with other settings ({', '.join(differ)})"
    raise UsageError(f"{target} exists and {held}; not replacing it with {_origin(wanted)}: add --overwrite, "
                     "choose another --out, or give --name STEM for another file name")
