"""``edge export``: a model (zoo name, optional checkpoint) to an ONNX or TFLite file in fp32,
fp16, int8 or dynamic-range precision, checked against PyTorch in its own runtime.

>>> from shufflenet_edge.export import export
>>> r = export(model="v1_g3", format="tflite", precision="int8")
>>> r.path, r.to_dict()["parity"]

Every file is built in a private work directory next to its destination and renamed into
place (file first, then its ``.json`` sidecar) only after the parity check passed, so a failed
or interrupted export leaves nothing behind and never half-overwrites an earlier export.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RuntimeFailure, UsageError, one_line
from .formats import FORMATS, LAYOUTS, PRECISIONS, RECIPES, ConvertJob, Format, check_combo, file_name, get_format
from .overwrite import custom_target, existing_export

__all__ = ["export", "ExportResult", "FORMATS", "PRECISIONS", "LAYOUTS", "RECIPES", "Format", "get_format"]


@dataclass
class ExportResult:
    path: Path
    format: str
    precision: str
    size_bytes: int
    seconds: float
    parity: dict
    metadata: dict
    notes: list[str] = field(default_factory=list)
    up_to_date: bool = False  # the file already held this export: nothing was written

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "precision": self.precision,
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


def _keep_fp32(layers, fmt: str, precision: str) -> tuple:
    """--keep-fp32 LAYER[,LAYER...] as a tuple; only ONNX int8 files have layers to keep float."""
    if not layers:
        return ()
    names = tuple(n.strip() for n in (layers.split(",") if isinstance(layers, str) else layers) if n.strip())
    if names and (fmt != "onnx" or precision != "int8"):
        raise UsageError("--keep-fp32 applies to --format onnx --precision int8 (TFLite: not yet)")
    return names


def export(model=None, checkpoint=None, format: str = "onnx", precision: str = "fp32", calib: str | None = None,
           calib_size: int = 256, input_size=None, num_classes: int | None = None, batch=1, layout: str = "nchw",
           out="exports", quiet: bool = False, verbose: bool = False, overwrite: bool = False,
           name: str | None = None, keep_fp32=None) -> ExportResult:
    """Export ``model`` and check it; returns an ExportResult (see module docstring).

    An existing file is never replaced unless ``overwrite``; one that already holds this export
    (same model, checkpoint sha256 and settings) is returned as ``up_to_date``. ``name`` gives
    the file a custom stem instead of ``<model>_<size>_<precision>[_nhwc]``.

    ``quiet`` drops this function's own notes from stderr; ``verbose`` lets the converters'
    logs through (by default they are kept and shown only if a conversion fails).
    """
    import numpy as np
    import torch

    from ..complexity import measure
    from ..models import create_model
    from .metadata import sidecar
    from .parity import check, fp32_tolerance, parity_inputs
    from .quiet import silenced

    t0 = time.perf_counter()
    fmt = get_format(format)
    precision = str(precision).lower()
    layout = str(layout).lower()
    if batch in (1, "1"):
        batch = 1
    elif str(batch).lower() == "dynamic":
        batch = "dynamic"
    else:
        raise UsageError(f"bad batch '{batch}': use 1 or dynamic")
    check_combo(fmt, precision, batch, layout)
    keep = _keep_fp32(keep_fp32, fmt.name, precision)

    if isinstance(model, torch.nn.Module):
        # A module built by the caller (reproduce's micro-benchmarks): it brings its own edge_meta.
        net = model.eval()
        if not isinstance(getattr(net, "edge_meta", None), dict):
            raise UsageError("a module passed to export() needs an edge_meta dict (name, input_size, num_classes, ...)")
        meta = {"checkpoint_sha256": "untrained", "labels": None, "num_classes": 0, "stem": "imagenet",
                "preprocessing": None, **net.edge_meta}
        if meta["preprocessing"] is None:
            from ..models import default_preprocessing

            meta["preprocessing"] = default_preprocessing()
    else:
        net = create_model(model, num_classes=num_classes, checkpoint=checkpoint, input_size=input_size)
        meta = net.edge_meta
    notes: list[str] = []
    calib_x = _calibration(meta, precision, calib, calib_size, notes)
    if precision == "dynamic" and fmt.name == "onnx":
        notes.append("warning: dynamic-range ONNX runs convolutions as ConvInteger, several times slower than fp32 "
                     "on x86; prefer --precision int8")
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
              "calibration": {"source": calib or "random"} if precision == "int8" else None}
    held = existing_export(target, wanted, overwrite)
    if held is not None:
        return ExportResult(path=target, format=fmt.name, precision=precision, size_bytes=target.stat().st_size,
                            seconds=round(time.perf_counter() - t0, 2), parity=held["parity"], metadata=held,
                            notes=notes, up_to_date=True)
    cx = measure(net)
    sample = torch.zeros(1, 3, h, w)
    file_model, file_calib = net, calib_x
    if layout == "nhwc":
        file_model = _ChannelLast.wrap(net)
        sample = sample.permute(0, 2, 3, 1).contiguous()
        file_calib = None if calib_x is None else np.ascontiguousarray(calib_x.transpose(0, 2, 3, 1))

    from ..io_utils import atomic_dir, check_writable, sigterm_unwinds, write_error

    # a read-only folder or a full disk fails now, not after the conversion (file ~4 bytes/param)
    check_writable(target.parent, need_bytes=4 * cx.params + (1 << 20), what=str(target))
    with sigterm_unwinds(), atomic_dir(target) as work:
        tmp = work / target.name
        job = ConvertJob(file_model, sample, tmp, precision, batch, file_calib, keep_fp32=keep)
        converter = importlib.import_module(f"{__name__}.{fmt.converter}")
        with silenced(not verbose):
            try:
                info = converter.convert(job)
            except Exception as exc:
                raise write_error(target, exc) or RuntimeFailure(
                    f"{fmt.name} {precision} conversion of {meta['name']} failed: {one_line(exc)}") from None
        input_q = info.pop("input_quantization", None)
        side = sidecar(meta, fmt.name, precision, layout, batch, cx.macs, cx.params, input_q,
                       exporter=info.pop("converter", fmt.tool), **info)
        # the file carries its metadata too (ONNX metadata_props, a TFLite metadata entry): a lost sidecar loses
        # nothing. Embedded before the parity check, so the bytes checked are the bytes written; again after it
        # with the result, so the file alone still says it was verified (only the metadata differs).
        # (a format with no place for metadata in its files, e.g. ncnn's .param/.bin, has no embed_metadata)
        embed = getattr(importlib.import_module(f"{__name__}.{fmt.converter}"), "embed_metadata", None)
        if embed is not None:
            embed(tmp, side)
        x = parity_inputs((h, w), calib_x)
        try:
            with silenced(not verbose):
                parity = check(net, tmp, x, side, engine=fmt.runtime)
        except Exception as exc:
            raise RuntimeFailure(f"{fmt.runtime} cannot run the exported {target.name}: {one_line(exc)}") from None
        if precision == "fp32" and not parity["max_abs_diff"] <= fp32_tolerance(parity):
            raise RuntimeFailure(f"parity check failed for {target.name}: max abs diff {parity['max_abs_diff']:.3g} "
                                 f"> {fp32_tolerance(parity):.3g} against PyTorch (outputs up to "
                                 f"{parity['max_abs_ref']:.3g}); no file written")
        side["parity"] = {k: parity[k] for k in ("max_abs_diff", "cosine", "top1_agreement", "n", "engine")}
        side["calibration"] = None if calib_x is None or precision != "int8" else {
            "source": calib or "random", "n": int(len(calib_x))}
        if embed is not None:
            embed(tmp, side)
        from ..io_utils import write_json

        write_json(work / (target.name + ".json"), side)
        for suffix in fmt.companions:  # the other files first: the main file and sidecar mark it complete
            os.replace(tmp.with_suffix(suffix), target.with_suffix(suffix))
        os.replace(tmp, target)
        os.replace(work / (target.name + ".json"), Path(str(target) + ".json"))
    size = sum(p.stat().st_size for p in [target, *(target.with_suffix(s) for s in fmt.companions)])
    return ExportResult(path=target, format=fmt.name, precision=precision, size_bytes=size,
                        seconds=round(time.perf_counter() - t0, 2), parity=side["parity"], metadata=side, notes=notes)
