"""Checkpoint files: this project's format and plain (torchvision) state_dicts.

Everything is loaded with ``torch.load(..., weights_only=True)``; training state that is not a
tensor (numpy RNG state) is stored as plain lists so that stays possible.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from .errors import UsageError
from .io_utils import atomic_path
from .model_meta import metadata_problem

FORMAT = "shufflenet-edge-checkpoint"
FORMAT_VERSION = 1


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_failure(exc: Exception) -> str:
    """One line on why a safe load failed. torch's own message for a pickle that names code opens
    with advice to retry with weights_only=False (i.e. to run that code): never pass that on."""
    text = str(exc).strip()
    if text.startswith("Weights only load failed"):
        import re

        found = re.search(r"unsupported GLOBAL (\S+)", text) or re.search(r"global '?([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (f"the file contains Python code or objects{what} that a safe load (weights only) refuses: "
                "it is not a checkpoint of tensors")
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Return the checkpoint dict; a plain state_dict comes back as {"state_dict": ...}."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with forbidden globals, truncated file ...
        raise UsageError(f"cannot read checkpoint {p}: {_load_failure(exc)}") from None
    if not isinstance(obj, dict):
        raise UsageError(f"cannot read checkpoint {p}: expected a dict, got {type(obj).__name__}")
    if obj.get("format") == FORMAT:
        if not isinstance(obj.get("state_dict"), dict) or "model" not in obj:
            raise UsageError(f"checkpoint {p} is malformed: missing 'model' or 'state_dict'")
        _check_metadata(obj, p)
        return obj
    state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"checkpoint {p} is neither a shufflenet-edge checkpoint nor a state_dict of tensors")
    # megvii's official files wrap the model in DataParallel
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {"state_dict": state}


def _check_metadata(obj: dict, p: Path) -> None:
    """The metadata every consumer trusts (eval, export, the sidecar) must have the types it claims."""
    problem = metadata_problem(obj)
    if problem is not None:
        key, why = problem
        value = repr(obj.get(key))
        value = value if len(value) <= 60 else value[:57] + "..."
        raise UsageError(f"checkpoint {p} has a bad '{key}' ({value}): {why}; it was not written by edge train "
                         "or was edited: retrain, or fix that field")


def save_checkpoint(path: str | os.PathLike, model_meta: dict, state_dict: dict, **extra) -> Path:
    """Write this project's format atomically; ``model_meta`` is the model's ``edge_meta``."""
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model_meta["name"],
        "input_size": list(model_meta["input_size"]),
        "num_classes": int(model_meta["num_classes"]),
        "preprocessing": model_meta.get("preprocessing"),
        "labels": model_meta.get("labels"),
        "state_dict": state_dict,
        **extra,
    }
    import io

    buffer = io.BytesIO()  # torch.save to a file turns a full disk into a RuntimeError; plain writes raise OSError
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer.getbuffer())
    return Path(path)
