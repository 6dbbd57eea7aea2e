"""``edge export``: a model (zoo name, optional checkpoint) to an ONNX or TFLite file in fp32,
fp16, int8 or dynamic-range precision, checked against PyTorch in its own runtime.

>>> from shufflenet_edge.export import export
>>> r = export(model="v1_g3", format="tflite", precision="int8")
>>> r.path, r.to_dict()["parity"]

An export is an ``Artifact`` (``artifact.py``): the file a runtime opens, any other files its
format has, and the ``.json`` sidecar. It is built in a private work folder next to its
destination and moved into place as a unit (files first, the sidecar last) only after the
parity check passed, so a failed or interrupted export leaves nothing behind and never
half-overwrites an earlier export. What a format is comes from one table (``formats.py``).
"""
from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgeError, RuntimeFailure, UsageError, one_line
from .artifact import Artifact, commit, is_verified
from .formats import FORMATS, LAYOUTS, PRECISIONS, RECIPES, ConvertJob, Format, check_combo, file_name, get_format
from .overwrite import custom_target, existing_export

__all__ = ["export", "ExportResult", "Artifact", "is_verified", "FORMATS", "PRECISIONS", "LAYOUTS", "RECIPES",
           "Format", "get_format"]


@dataclass
class ExportResult:
    path: Path  # the file a runtime opens (artifact.path)
    format: str
    precision: str
    size_bytes: int
    seconds: float
    parity: dict
    metadata: dict
    notes: list[str] = field(default_factory=list)
    up_to_date: bool = False  # the file already held this export: nothing was written

    @property
    def artifact(self) -> Artifact:
        return Artifact(Path(self.path), get_format(self.format))

    def to_dict(self) -> dict:
        return {"path": str(self.path), "files": [str(f) for f in self.artifact.all_files()],
                "format": self.format, "precision": self.precision,
                "size_bytes": self.size_bytes, "seconds": self.seconds, "parity": self.parity,
                "trained": self.metadata.get("trained"), "notes": list(self.notes), "metadata": self.metadata,
                "up_to_date": self.up_to_date}


class _ChannelLast:
    """Builds an nn.Module taking NHWC input (camera pipelines are channel-last) around the model."""

    @staticmethod
    def wrap(model):
        import torch

        class ChannelLastInput(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x.permute(0, 3, 1, 2))

        return ChannelLastInput(model).eval()


def _calibration(meta: dict, precision: str, calib, calib_size: int, notes: list[str]):
    """Calibration images (N x 3 x H x W float32, preprocessed) or None when not needed."""
    import numpy as np

    if calib_size is None or int(calib_size) < 1:
        raise UsageError(f"bad --calib-size {calib_size}: must be >= 1")
    trained = meta["checkpoint_sha256"] != "untrained"
    if calib:
        from ..data import calibration_array, data_preprocessing

        if not trained:  # random weights have no preprocessing of their own: use the data's
            meta["preprocessing"] = data_preprocessing(calib) or meta["preprocessing"]
        x = calibration_array(calib, tuple(meta["input_size"]), int(calib_size), meta["preprocessing"])
        if not np.isfinite(x).all():  # NaN scales would make a file of NaNs that still "exports"
            raise UsageError(f"calibration data {calib} contains NaN or infinite values: clean it or give other --calib data")
        if len(x) == 0:
            raise UsageError(f"calibration data {calib} has no images: give other --calib data")
        return x
    if precision != "int8":
        return None
    if trained:
        raise UsageError("int8 export of a checkpoint needs calibration data: add --calib SPEC "
                         "(digits, npy:FILE, imagefolder:DIR, cifar10:DIR, tinyimagenet:DIR)")
    h, w = meta["input_size"]
    notes.append(f"int8 calibrated on {calib_size} random inputs (untrained model, no --calib)")
    return np.random.default_rng(0).standard_normal((int(calib_size), 3, h, w)).astype(np.float32)


def _batch(batch):
    if batch in (1, "1"):
        return 1
    if str(batch).lower() == "dynamic":
        return "dynamic"
    raise UsageError(f"bad batch '{batch}': use 1 or dynamic")


def build_model(model=None, checkpoint=None, input_size=None, num_classes=None):
    """(eval-mode module, its metadata): a zoo name or checkpoint, or a module built by the caller
    (reproduce's micro-benchmarks) that brings its own ``edge_meta``."""
    import torch

    from ..models import create_model, default_preprocessing

    if not isinstance(model, torch.nn.Module):
        net = create_model(model, num_classes=num_classes, checkpoint=checkpoint, input_size=input_size)
        return net, net.edge_meta
    if not isinstance(getattr(model, "edge_meta", None), dict):
        raise UsageError("a module passed to export() needs an edge_meta dict (name, input_size, num_classes, ...)")
    meta = {"checkpoint_sha256": "untrained", "labels": None, "num_classes": 0, "stem": "imagenet",
            "preprocessing": None, **model.edge_meta}
    meta["preprocessing"] = meta["preprocessing"] or default_preprocessing()
    return model.eval(), meta


def _file_view(net, calib_x, layout: str, hw):
    """(module, sample, calibration) as the file sees them: NHWC wraps the model and permutes the data."""
    import numpy as np
    import torch

    sample = torch.zeros(1, 3, *hw)
    if layout != "nhwc":
        return net, sample, calib_x
    calib = None if calib_x is None else np.ascontiguousarray(calib_x.transpose(0, 2, 3, 1))
    return _ChannelLast.wrap(net), sample.permute(0, 2, 3, 1).contiguous(), calib


def _convert(fmt: Format, job: ConvertJob, name: str, dest: Path, verbose: bool) -> dict:
    from ..io_utils import write_error
    from .quiet import silenced

    converter = importlib.import_module(f"{__name__}.{fmt.converter}")
    with silenced(not verbose):
        try:
            return converter.convert(job)
        except EdgeError:  # the converter's own one-line error (--keep-fp32 auto's unreachable bound)
            raise
        except Exception as exc:
            raise write_error(dest, exc) or RuntimeFailure(
                f"{fmt.name} {job.precision} conversion of {name} failed: {one_line(exc)}") from None


def _parity(net, staged: Artifact, x, side: dict, precision: str, verbose: bool) -> dict:
    """Run the staged file in its runtime against PyTorch; the sidecar's parity entry, or RuntimeFailure."""
    from .artifact import parity_passed
    from .parity import check, fp32_tolerance
    from .quiet import silenced

    fmt, name = staged.format, staged.path.name
    try:
        with silenced(not verbose):
            parity = check(net, staged.path, x, side, engine=fmt.runtime)
    except Exception as exc:
        raise RuntimeFailure(f"{fmt.runtime} cannot run the exported {name}: {one_line(exc)}") from None
    parity["passed"] = parity_passed({k: v for k, v in parity.items() if k != "passed"}, precision)
    if not parity["passed"]:
        raise RuntimeFailure(f"parity check failed for {name}: max abs diff {parity['max_abs_diff']:.3g} "
                             f"> {fp32_tolerance(parity):.3g} against PyTorch (outputs up to "
                             f"{parity['max_abs_ref']:.3g}); no file written")
    return {k: parity[k] for k in ("max_abs_diff", "max_abs_ref", "cosine", "top1_agreement", "n", "engine", "passed")}


def int8_request(fmt: Format, precision: str, keep_fp32=None, max_drop=None, data=None, int8_policy="fast",
                 weight_granularity="channel") -> dict | None:
    """What an int8 export was asked for beyond the recipe, checked (one-line usage errors) and in the
    form the sidecar, the up-to-date check and the export cache compare: {policy, float_kinds, keep_fp32,
    max_drop_pts, data, weight_granularity}; None for other precisions. ``keep_fp32``: layer names (a
    comma-separated string or a sequence), ``auto`` among them for the accuracy-bounded choice
    (``onnx_mixed.py``); ``weight_granularity``: ``channel`` or ``tensor`` weight scales."""
    from .formats import int8_float_kinds, int8_granularity
    from .onnx_mixed import AUTO, check_max_drop

    policy = str(int8_policy or "fast").lower()
    kinds = int8_float_kinds(fmt, policy)
    granularity = int8_granularity(fmt, precision, weight_granularity)
    names = [n.strip() for n in (keep_fp32.split(",") if isinstance(keep_fp32, str) else keep_fp32 or ()) if n.strip()]
    auto = any(n.lower() == AUTO for n in names)
    if names and (fmt.name != "onnx" or precision != "int8"):
        raise UsageError("--keep-fp32 applies to --format onnx --precision int8 (TFLite: not yet)")
    if max_drop is not None and not auto:
        raise UsageError("--max-drop applies to --keep-fp32 auto: it bounds the top-1 drop the automatic choice of "
                         "float layers accepts")
    if data is not None and not auto:
        raise UsageError("--data applies to --keep-fp32 auto: the labelled data its top-1 drop is measured on")
    if auto and not data:
        raise UsageError("--keep-fp32 auto needs --data SPEC: the labelled data whose top-1 drop --max-drop bounds "
                         "(e.g. --data digits)")
    if precision != "int8":
        return None
    return {"policy": policy, "float_kinds": sorted(kinds),
            "keep_fp32": sorted(n for n in names if n.lower() != AUTO) + ([AUTO] if auto else []),
            "max_drop_pts": check_max_drop(1.0 if max_drop is None else max_drop) if auto else None,
            "data": str(data) if auto else None, "weight_granularity": granularity}


def _auto_spec(request: dict | None, net, meta: dict, layout: str):
    """The labelled test images --keep-fp32 auto scores candidates on, in the file's layout (or None)."""
    if not request or request["max_drop_pts"] is None:
        return None
    from .onnx_mixed import AutoSpec, labelled_images

    h, w = meta["input_size"]
    x, y = labelled_images(request["data"], (h, w), meta["preprocessing"], meta.get("labels"), meta["num_classes"])
    return AutoSpec(request["data"], request["max_drop_pts"], _file_view(net, x, layout, (h, w))[2], y)


def export(model=None, checkpoint=None, format: str = "onnx", precision: str = "fp32", calib: str | None = None,
           calib_size: int = 256, input_size=None, num_classes: int | None = None, batch=1, layout: str = "nchw",
           out="exports", quiet: bool = False, verbose: bool = False, overwrite: bool = False,
           name: str | None = None, keep_fp32=None, max_drop: float | None = None, data: str | None = None,
           int8_policy: str = "fast", weight_granularity: str = "channel", parity_n: int | None = None) -> ExportResult:
    """Export ``model`` and check it; returns an ExportResult (see module docstring).

    An existing file is never replaced unless ``overwrite``; one that already holds this export
    (same model, checkpoint sha256 and settings) is returned as ``up_to_date``. ``name`` gives
    the file a custom stem instead of ``<model>_<size>_<precision>[_nhwc]``.

    ``quiet`` drops this function's own notes from stderr; ``verbose`` lets the converters'
    logs through (by default they are kept and shown only if a conversion fails).

    int8 (ONNX): ``keep_fp32`` layers stay float; ``keep_fp32="auto"`` with ``data`` keeps the
    most sensitive layers float until the top-1 drop on ``data``'s test split is at most
    ``max_drop`` points (default 1.0); ``int8_policy="fast"`` leaves the layer kinds that are
    slower in int8 on the format's engine float, ``"all"`` quantizes them too. int8 (ONNX, TFLite):
    ``weight_granularity="tensor"`` gives each weight one scale instead of one per output channel.
    The sidecar records all of it (``int8_request``, ``int8_policy``, ``kept_fp32``, ``keep_fp32_auto``).
    ``parity_n``: how many inputs the parity check runs (default ``parity.N_INPUTS``; the sidecar's
    ``parity.n`` records it). ``edge reproduce`` checks its large-input files on fewer.
    """
    from ..complexity import measure
    from ..io_utils import atomic_dir, check_writable, sigterm_unwinds, write_json
    from .metadata import sidecar
    from .parity import N_INPUTS, parity_inputs

    t0 = time.perf_counter()
    fmt = get_format(format)
    precision, layout, batch = str(precision).lower(), str(layout).lower(), _batch(batch)
    check_combo(fmt, precision, batch, layout)
    request = int8_request(fmt, precision, keep_fp32, max_drop, data, int8_policy, weight_granularity)
    net, meta = build_model(model, checkpoint, input_size, num_classes)
    notes: list[str] = []
    calib_x = _calibration(meta, precision, calib, calib_size, notes)
    warning = fmt.notes.get(precision)
    if warning:
        notes.append(f"warning: {warning}")
    if meta["checkpoint_sha256"] == "untrained":
        notes.append("untrained: random weights (fine for latency work, not for accuracy)")
    if not quiet:
        for note in notes:
            print(note if note.startswith("warning:") else f"note: {note}", file=sys.stderr)

    h, w = meta["input_size"]
    target = custom_target(out, name, fmt.suffix) if name else Path(out) / file_name(meta["name"], (h, w), precision,
                                                                                     layout, fmt)
    wanted = {"model": meta["name"], "checkpoint_sha256": meta.get("checkpoint_sha256", "untrained"),
              "format": fmt.name, "precision": precision, "layout": layout, "batch": batch, "input_size": [h, w],
              "num_classes": meta["num_classes"],
              "calibration": ({"source": calib or "random", "n": int(len(calib_x))} if precision == "int8" and calib_x is not None
                              else None), "int8_request": request}
    held = existing_export(target, wanted, overwrite)
    if held is not None:
        return ExportResult(path=target, format=fmt.name, precision=precision, size_bytes=Artifact(target, fmt).size_bytes,
                            seconds=round(time.perf_counter() - t0, 2), parity=held["parity"], metadata=held,
                            notes=notes, up_to_date=True)
    auto = _auto_spec(request, net, meta, layout)
    cx = measure(net)
    dest = Artifact(target, fmt)
    file_model, sample, file_calib = _file_view(net, calib_x, layout, (h, w))
    # a read-only folder or a full disk fails now, not after the conversion (file ~4 bytes/param)
    check_writable(dest.path.parent, need_bytes=4 * cx.params + (1 << 20), what=str(dest.path))
    with sigterm_unwinds(), atomic_dir(dest.path) as work:
        staged = Artifact(work / dest.path.name, fmt)
        job = ConvertJob(file_model, sample, staged.path, precision, batch, file_calib, auto=auto,
                         **({"keep_fp32": tuple(n for n in request["keep_fp32"] if n != "auto"),
                             "float_kinds": tuple(request["float_kinds"]), "policy": request["policy"],
                             "granularity": request["weight_granularity"]}
                            if request else {}))
        info = _convert(fmt, job, meta["name"], dest.path, verbose)
        input_q = info.pop("input_quantization", None)
        side = sidecar(meta, fmt.name, precision, layout, batch, cx.macs, cx.params, input_q,
                       exporter=info.pop("converter", fmt.tool), **info)
        if request:
            side["int8_request"] = request
        # the files carry their metadata too (ONNX metadata_props, a TFLite metadata entry): a lost sidecar loses
        # nothing. Embedded before the parity check, so the bytes checked are the bytes written; again after it
        # with the result, so the file alone still says it was verified (only the metadata differs).
        embed = getattr(importlib.import_module(f"{__name__}.{fmt.converter}"), fmt.post_write) if fmt.post_write \
            else None
        if embed:
            embed(staged.path, side)
        side["parity"] = _parity(net, staged, parity_inputs((h, w), calib_x, parity_n or N_INPUTS), side, precision, verbose)
        side["calibration"] = None if calib_x is None or precision != "int8" else {
            "source": calib or "random", "n": int(len(calib_x))}
        if embed:
            embed(staged.path, side)
        if staged.missing():
            raise RuntimeFailure(f"the {fmt.name} converter did not write {', '.join(p.name for p in staged.missing())}")
        write_json(staged.sidecar, side)
        commit(staged, dest)
    quantization = side.get("quantization") or {}
    why = quantization.get("why") if quantization.get("applied") is False else None
    if why:  # --int8-policy fast found int8 slower than fp32 here: the user asked for int8, so say it loudly
        notes.append(why)
        if not quiet:
            print(f"note: {why}", file=sys.stderr)
    return ExportResult(path=dest.path, format=fmt.name, precision=precision, size_bytes=dest.size_bytes,
                        seconds=round(time.perf_counter() - t0, 2), parity=side["parity"], metadata=side, notes=notes)
