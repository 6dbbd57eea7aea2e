"""The export cache behind ``edge bench --model`` and ``edge reproduce``: one folder per artifact.

``ExportCache().get_or_build(fields)`` returns the artifact for ``export(**fields)``, converting
it on first use. ``fields`` are export()'s own arguments (a zoo name or a module built by the
caller); the key is derived here and nowhere else, from:

* the settings that change the file (format, precision, size, classes, batch, layout, calibration; for
  int8 what stays float: export's ``int8_request``, the layer kinds of ``--int8-policy`` included, so a
  cached ``all`` file is never served for ``fast``; and ``--weight-granularity``),
* the model's structure: a hash of its module tree and parameter shapes (built on the meta
  device), so a changed layer width or stem rule is never served the old file,
* the checkpoint's bytes (sha256),
* the recipe version of the format/precision (``export/formats.py``) and the versions of the
  toolkit and of the packages that format's conversion uses.

A folder is built under a temporary name (``io_utils``'s pid-tagged work folder) and renamed
into place whole, so a folder that exists is complete.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..user_cache import cache_root

KEY_FIELDS = ("model", "format", "precision", "checkpoint", "input_size", "num_classes", "batch", "layout", "calib",
              "calib_size", "int8_policy", "keep_fp32", "max_drop", "data", "weight_granularity")
DEFAULTS = {"precision": "fp32", "checkpoint": None, "input_size": None, "num_classes": None, "batch": 1,
            "layout": "nchw", "calib": None, "calib_size": 256, "int8_policy": "fast", "keep_fp32": None,
            "max_drop": None, "data": None, "weight_granularity": "channel"}
MANIFEST = "artifact.txt"  # the name of the artifact's runtime file, inside its folder


def _versions(packages) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"shufflenet-edge": __version__}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def structure_hash(module) -> str:
    """sha256 of a module's tree (its repr: layer types, widths, strides, groups ...) and the
    names and shapes of its parameters and buffers: what decides the exported graph, bar weights."""
    h = hashlib.sha256(repr(module).encode())
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    return h.hexdigest()[:16]


def _model_facts(fields: dict) -> dict:
    """The model's name, size, classes and structure as export() would build it (weights aside)."""
    import torch

    model = fields["model"]
    if isinstance(model, torch.nn.Module):
        meta = model.edge_meta
        return {"model": meta["name"], "input_size": list(meta["input_size"]), "num_classes": meta.get("num_classes"),
                "structure": structure_hash(model)}
    from ..checkpoint import sha256_file
    from ..models import create_model

    ckpt = fields["checkpoint"]
    if ckpt is not None and os.path.isfile(ckpt):
        net = create_model(model, num_classes=fields["num_classes"], checkpoint=ckpt, input_size=fields["input_size"])
        sha = sha256_file(ckpt)
    else:
        with torch.device("meta"):  # no weights, no arithmetic: milliseconds even for VGG
            net = create_model(model, num_classes=fields["num_classes"], input_size=fields["input_size"])
        sha = None
    meta = net.edge_meta
    return {"model": meta["name"], "input_size": list(meta["input_size"]), "num_classes": meta["num_classes"],
            "structure": structure_hash(net), "checkpoint": sha}


class ExportCache:
    """Exported artifacts keyed by everything that changes them (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_root() / "exports"

    def key(self, fields: dict) -> str:
        from ..export import int8_request
        from ..export.formats import get_format

        unknown = set(fields) - set(KEY_FIELDS)
        if unknown:
            raise TypeError(f"not export settings: {', '.join(sorted(unknown))}")
        fields = {**DEFAULTS, **fields}
        fmt = get_format(fields["format"])
        precision = str(fields["precision"]).lower()
        recipe = fmt.recipes.get(precision)
        blob = {**{k: fields[k] for k in ("batch", "layout", "calib", "calib_size")}, "batch": str(fields["batch"]),
                "format": fmt.name, "precision": precision, **_model_facts(fields),
                "recipe": recipe.version if recipe else None, "versions": _versions(fmt.packages)}
        request = int8_request(fmt, precision, fields["keep_fp32"], fields["max_drop"], fields["data"],
                               fields["int8_policy"], fields["weight_granularity"])
        if request:  # only int8 keys carry it (policy and its float kinds): every other cached file keeps its key
            # per-channel weights were every int8 file's before --weight-granularity: those keep their keys too
            blob["int8"] = {k: v for k, v in request.items() if (k, v) != ("weight_granularity", "channel")}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def folder(self, fields: dict) -> Path:
        return self.root / self.key(fields)

    def _find(self, folder: Path):
        from ..export.artifact import Artifact, is_verified

        try:
            art = Artifact.at(folder / (folder / MANIFEST).read_text().strip())
        except (OSError, ValueError):
            return None
        return art if art.exists() and is_verified(art.path) else None

    def has(self, fields: dict) -> bool:
        return self._find(self.folder(fields)) is not None

    def get_or_build(self, fields: dict, build=None):
        """The cached ``export.Artifact`` for ``fields``; on a miss ``build(folder)`` (default:
        ``export(**fields, out=folder, quiet=True)``) writes it into a fresh folder, which is
        renamed into place whole."""
        import shutil

        from ..export import export
        from ..io_utils import atomic_dir, write_text

        folder = self.folder(fields)
        found = self._find(folder)
        if found is not None:
            return found
        build = build or (lambda out: export(**fields, out=out, quiet=True))
        if folder.exists():  # incomplete or stale (a file deleted by hand): rebuilt from scratch
            shutil.rmtree(folder, ignore_errors=True)
        try:
            with atomic_dir(folder) as tmp:
                result = build(tmp)
                write_text(tmp / MANIFEST, Path(result.path).name + "\n")
                os.rename(tmp, folder)  # the whole folder at once (atomic_dir's clean-up then finds nothing)
        except OSError:
            if self._find(folder) is None:
                raise
            # another process finished the same artifact first: theirs is as good as ours
        return self._find(folder)


def cached_export(model, format: str, precision: str = "fp32", checkpoint=None, input_size=None, num_classes=None,
                  batch=1, layout: str = "nchw", calib=None, calib_size: int = 256, quiet: bool = True) -> Path:
    """The exported file (runtime file of the artifact) for these settings, converting it on first use."""
    from ..export import export

    fields = dict(model=model, format=format, precision=precision, checkpoint=checkpoint, input_size=input_size,
                  num_classes=num_classes, batch=batch, layout=layout, calib=calib, calib_size=calib_size)
    return ExportCache().get_or_build(fields, lambda out: export(**fields, out=out, quiet=quiet)).path
