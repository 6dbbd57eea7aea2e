"""Which layers of an ONNX int8 file stay float: by name (``--keep-fp32 LAYER,...``), by kind
(``--int8-policy fast``: the kinds slower in int8 on onnxruntime, then every layer when the int8 file
is still slower than fp32 on this CPU: ``onnx_latency_guard.py``) and, with ``--keep-fp32 auto
--max-drop PTS --data SPEC``, as many as the accuracy bound needs.

The automatic choice ranks layers with quantize-report's per-layer errors (``quant/layer_errors.py``),
ordered by what accuracy sees: the SQNR of the logits with that layer alone quantized, worst first.
(The SQNR of the layer's own output is blind to an outlier channel: one channel 100x the others
dominates the signal power, while the per-tensor scale it forces leaves the others a few levels.)
It keeps a prefix of that order float. Every candidate is a real file
of the export recipe (``onnx_int8.quantize`` with those layers excluded), scored by its top-1 on
the data's test split in onnxruntime against the fp32 file's. Prefix sizes grow 1, 2, 4, ... until
one is within the bound, then bisect between the last size that was not and that one: about
2 log2(n) quantizations instead of n. Every accepted size was measured (top-1 is not strictly
monotone in the prefix, so none is assumed). At most half of the ranked layers may stay float:
past that the file is no longer an int8 file, and the bound is reported unreachable, with the
best drop seen, instead.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RuntimeFailure, UsageError
from . import onnx_int8

AUTO = "auto"
MAX_FLOAT_FRACTION = 0.5  # of the ranked layers
RANK_IMAGES = 16  # calibration images the per-layer errors are measured on
MAX_EVAL_IMAGES = 2000  # a larger split is subsampled evenly (the sidecar records how many were used)


@dataclass
class AutoSpec:
    """The accuracy bound and the labelled images it is measured on (already in the file's layout)."""

    data: str
    max_drop: float  # top-1 points
    x: np.ndarray
    y: np.ndarray
    split: str = "test"


def labelled_images(data: str, input_size, preprocessing: dict, model_labels, num_outputs: int,
                    split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(float32 N x 3 x H x W images, labels as the model's output indices) of ``data``'s ``split``."""
    from ..data import label_map, load_split, make_dataset, parse_spec

    spec = parse_spec(data)
    loaded = load_split(spec, split)
    if loaded.labels is None:
        raise UsageError(f"--data {data} has no labels: --keep-fp32 auto measures top-1 (npy data: npy:X.npy,Y.npy)")
    if len(loaded) == 0:
        raise UsageError(f"--data {data} has no {split} images: give other --data")
    if len(loaded) > MAX_EVAL_IMAGES:
        loaded = loaded.subset(np.linspace(0, len(loaded) - 1, MAX_EVAL_IMAGES).astype(np.int64))
    remap = label_map(loaded.classes, model_labels, num_outputs, "the model")
    ds = make_dataset(spec, split, input_size, preprocessing, loaded=loaded)
    x = np.stack([ds[i][0].numpy() for i in range(len(ds))]).astype(np.float32, copy=False)
    y = np.asarray(loaded.labels, dtype=np.int64)
    y = remap[y] if remap is not None else y
    if y.size and y.max() >= num_outputs:
        raise UsageError(f"--data {data} has label {int(y.max())} but the model has {num_outputs} outputs")
    return x, y


def top1(path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of the ONNX file ``path`` on ``x`` (in the file's layout) in onnxruntime, as deployed
    (default graph optimizations); a file of batch 1 is fed image by image."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    step = 1 if inp.shape[0] == 1 else 64
    preds = [sess.run(None, {inp.name: x[i:i + step]})[0].reshape(min(step, len(x) - i), -1).argmax(1)
             for i in range(0, len(x), step)]
    return float((np.concatenate(preds) == y).mean())


RANKED_BY = "logits_sqnr_alone_db (edge quantize-report's logits SQNR with the layer alone quantized; lowest first)"


def _logits_first(row: dict) -> tuple:
    """Sort key: lowest logits SQNR with the layer alone quantized first; exact (None) last."""
    value = row["logits_sqnr_alone_db"]
    return (value is None, value if value is not None else 0.0)


def smallest_passing(passes, limit: int) -> int | None:
    """The smallest k in 1..limit with ``passes(k)``: probes 1, 2, 4, ... then bisects between the
    last failing and the first passing size. None when ``limit`` itself fails (or is < 1)."""
    lo, k = 0, 1
    while True:
        k = min(k, limit)
        if k < 1:
            return None
        if passes(k):
            break
        if k == limit:
            return None
        lo, k = k, 2 * k
    hi = k
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def search(fp32_path, out_path, calib: np.ndarray, spec: AutoSpec, exclude_nodes=(), fixed=(),
           granularity: str = "channel") -> tuple[dict, dict]:
    """Write to ``out_path`` the int8 file with the fewest ranked layers float whose top-1 drop on
    ``spec`` is within ``spec.max_drop`` (``exclude_nodes``/``fixed``: already float; ``granularity``:
    the weight scales of every candidate, as ``onnx_int8.quantize`` takes them). Returns
    (the quantization recipe, the sidecar's ``keep_fp32_auto`` entry); RuntimeFailure if no
    allowed prefix reaches the bound (nothing is written then)."""
    import onnx
    import onnxruntime

    from ..quant.layer_errors import onnx_layer_errors

    proto = onnx.load(str(fp32_path))
    fp32_top1 = top1(fp32_path, spec.x, spec.y)
    ranked: list[str] = []
    files, scores, recipe = {}, {}, {}

    def drop(k: int) -> float:
        return round((fp32_top1 - scores[k]) * 100, 3)

    with tempfile.TemporaryDirectory(prefix="keep-fp32-auto-", dir=Path(out_path).parent) as tmp:
        def passes(k: int) -> bool:
            path = Path(tmp) / f"float_{k}.onnx"
            nodes = [*exclude_nodes, *(onnx_int8.nodes_of_layers(proto, ranked[:k]) if k else [])]
            recipe.update(onnx_int8.quantize(fp32_path, path, calib, exclude_nodes=nodes, granularity=granularity))
            files[k], scores[k] = path, top1(path, spec.x, spec.y)
            return drop(k) <= spec.max_drop + 1e-9

        if passes(0):
            best = 0
        else:
            skip = set(fixed)
            rows = sorted(onnx_layer_errors(fp32_path, files[0], calib[:RANK_IMAGES]), key=_logits_first)
            ranked += [r["name"] for r in rows if r["name"] not in skip]
            best = smallest_passing(passes, int(len(ranked) * MAX_FLOAT_FRACTION))
            if best is None:
                k = min(scores, key=drop)
                raise RuntimeFailure(
                    f"--max-drop {spec.max_drop:g} is not reachable on {spec.data}: the best int8 file kept {k} of "
                    f"{len(ranked)} layers float and lost {drop(k):.2f} points of top-1 (fp32 {fp32_top1:.2%}, int8 "
                    f"{scores[k]:.2%}; at most {MAX_FLOAT_FRACTION:.0%} of the layers may stay float): raise "
                    "--max-drop, calibrate on more images (--calib-size) or name layers (--keep-fp32 LAYER,...); "
                    "no file written")
        os.replace(files[best], out_path)
    return dict(recipe), {
        "data": spec.data, "split": spec.split, "images": int(len(spec.y)), "max_drop_pts": spec.max_drop,
        "fp32_top1": fp32_top1, "int8_top1_plain": scores[0], "int8_top1": scores[best], "drop_pts": drop(best),
        "kept_fp32": ranked[:best], "ranked_layers": len(ranked), "ranked_by": RANKED_BY,
        "tried": [{"float_layers": k, "int8_top1": scores[k], "drop_pts": drop(k)} for k in sorted(scores)],
        "engine": f"onnxruntime {onnxruntime.__version__}"}


def quantize_layers(proto, fp32_path, job) -> dict:
    """The export's int8 file (``job.path``): the layers named in ``job.keep_fp32``, those of the
    policy's kinds (``job.float_kinds``) and, with ``job.auto``, those the accuracy search picks
    stay float. Returns the sidecar's int8 entries."""
    keep = list(job.keep_fp32 or ())
    kinds = set(job.float_kinds or ())
    by_policy = [layer["name"] for layer in onnx_int8.layers(proto) if layer["kind"] in kinds and layer["name"] not in keep]
    fixed = keep + by_policy
    exclude = onnx_int8.nodes_of_layers(proto, fixed) if fixed else []
    info = {"int8_policy": {"policy": job.policy, "float_kinds": sorted(kinds), "kept_fp32": by_policy}}
    if job.auto is None:
        info["quantization"] = onnx_int8.quantize(fp32_path, job.path, job.calib, exclude_nodes=exclude,
                                                  granularity=job.granularity)
        info["kept_fp32"] = fixed
    else:
        info["quantization"], chosen = search(fp32_path, job.path, job.calib, job.auto, exclude_nodes=exclude,
                                              fixed=fixed, granularity=job.granularity)
        info["kept_fp32"] = fixed + chosen["kept_fp32"]
        info["keep_fp32_auto"] = chosen
    if job.policy == "fast":
        from .onnx_latency_guard import guard

        info = guard(proto, fp32_path, job, info)
    return info


def check_max_drop(value) -> float:
    try:
        drop = float(value)
    except (TypeError, ValueError):
        drop = float("nan")
    if not math.isfinite(drop) or drop < 0:
        raise UsageError(f"bad --max-drop {value}: the accepted top-1 drop in points, a number >= 0 (e.g. 1.0)")
    return drop
