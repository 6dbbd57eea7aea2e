"""The export cache behind ``edge bench --model``: one directory per distinct file.

The key hashes every setting that changes the file (model, format, precision, input size,
classes, batch, layout, calibration, the checkpoint's bytes and the toolkit and converter
versions), so a changed checkpoint or upgrade never gets a stale file back.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..user_cache import cache_root  # noqa: F401  (re-exported: bench.cache.cache_root)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"shufflenet-edge": __version__}
    for pkg in ("torch", "onnx", "onnxruntime", "onnxsim", "litert-torch", "ai-edge-quantizer"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def cache_key(**settings) -> str:
    from ..checkpoint import sha256_file

    ckpt = settings.get("checkpoint")
    settings = {**settings, "checkpoint": sha256_file(ckpt) if ckpt and os.path.isfile(ckpt) else ckpt, "versions": _versions()}
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached_export(model, format: str, precision: str = "fp32", checkpoint=None, input_size=None, num_classes=None,
                  batch=1, layout: str = "nchw", calib=None, calib_size: int = 256, quiet: bool = True) -> Path:
    """The exported file for these settings, converting it on first use (atomically, via export())."""
    from ..export import export
    from ..models import parse_input_size

    size = list(parse_input_size(input_size)) if input_size is not None else None
    if size is None and checkpoint is None and isinstance(model, str):
        # The model's own default size, spelled out, so that `edge bench --model X` and a caller
        # that names 224 explicitly (edge reproduce) share one file instead of converting twice.
        from ..models import get_spec

        side = get_spec(model).default_input_size
        size = [side, side]
    key = cache_key(model=model, format=format, precision=precision, checkpoint=checkpoint, input_size=size,
                    num_classes=num_classes, batch=str(batch), layout=layout, calib=calib, calib_size=calib_size)
    folder = cache_root() / "exports" / key
    done = folder / "artifact.txt"
    if done.is_file():
        path = folder / done.read_text().strip()
        if path.is_file():
            return path
    r = export(model=model, checkpoint=checkpoint, format=format, precision=precision, calib=calib,
               calib_size=calib_size, input_size=size, num_classes=num_classes, batch=batch, layout=layout,
               out=folder, quiet=quiet, overwrite=True)  # a private cache folder
    from ..io_utils import write_text

    write_text(done, r.path.name + "\n")  # written last: a folder without it is an unfinished export
    return r.path
