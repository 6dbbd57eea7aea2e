"""``edge eval``: accuracy of a PyTorch checkpoint or an exported file on a data spec.

Exported files (ONNX / TFLite, fp32 / fp16 / int8) run through the same runtime engines as the
benchmarks; their sidecar metadata (input size, preprocessing, labels) decides how the data is
prepared, so every precision of a model is judged on identical inputs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .data import data_preprocessing, label_map, load_split, make_dataset, parse_spec
from .errors import UsageError
from .loops import accuracy_of, default_device, logits_of, make_loader  # noqa: F401 (accuracy_of: API)


def metrics(logits: np.ndarray, labels: np.ndarray, class_names: list[str], top_pairs: int = 5) -> dict:
    """top1/top5, per-class accuracy, confusion matrix (rows = actual, columns = predicted)."""
    k = logits.shape[1]
    n = len(labels)
    pred = logits.argmax(1)
    topk = np.argsort(-logits, axis=1)[:, :min(5, k)]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    per_class = {}
    for i, name in enumerate(names):
        total = int(confusion[i].sum())
        per_class[name] = {"accuracy": (float(confusion[i, i]) / total) if total else None, "n": total}
    off = [(int(confusion[a, p]), a, p) for a in range(k) for p in range(k) if a != p and confusion[a, p]]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    return {
        "n": n,
        "top1": float((pred == labels).mean()) if n else 0.0,
        "top5": float((topk == labels[:, None]).any(1).mean()) if n else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "labels": names,
        "most_confused": [{"actual": names[a], "predicted": names[p], "count": c} for c, a, p in off[:top_pairs]],
    }




def _artifact_logits(path: Path, spec, split: str, batch_size: int, engine: str | None, threads: int,
                     input_size=None, preprocessing=None, inference_precision: str | None = None):
    from .export.metadata import is_verified, parse_preprocessing, read_metadata, require_metadata
    from .runtime.engines import EngineError, open_engine

    meta = read_metadata(path, input_size=input_size, preprocessing=parse_preprocessing(preprocessing))
    try:
        options = {"inference_precision": inference_precision} if inference_precision else {}
        if options and (engine or "") != "openvino":
            raise UsageError("--inference-precision is an OpenVINO setting: add --engine openvino")
        eng = open_engine(path, engine=engine, threads=threads, metadata=meta, **options)
        size = eng.image_size()
    except EngineError as exc:
        raise UsageError(str(exc)) from None
    # npy: arrays are preprocessed already; every other kind needs the file's own preprocessing
    require_metadata(path, meta, () if data_preprocessing(spec) is None else ("preprocessing",))
    preprocessing = meta.get("preprocessing") or data_preprocessing(spec)
    data = load_split(spec, split)
    ds = make_dataset(spec, split, size, preprocessing, loaded=data)
    outs = []
    for start in range(0, len(ds), batch_size):
        x = np.stack([ds[i][0].numpy() for i in range(start, min(start + batch_size, len(ds)))])
        try:
            outs.append(eng.predict(x))
        except EngineError as exc:
            raise UsageError(str(exc)) from None
    logits = np.concatenate(outs).astype(np.float32).reshape(len(ds), -1)
    info = {"artifact": str(path), "engine": eng.name, "runtime_version": eng.runtime_version,
            **({"inference_precision": eng.inference_precision} if hasattr(eng, "inference_precision") else {}),
            "model": meta.get("model"), "format": meta.get("format") or path.suffix.lstrip("."),
            "precision": meta.get("precision"), "input_size": list(size), "trained": meta.get("trained"),
            "verified": is_verified(meta)}
    return logits, data, meta.get("labels"), info


def evaluate(model: str | None = None, checkpoint: str | os.PathLike | None = None, artifact: str | os.PathLike | None = None,
             data: str = "digits", split: str = "test", batch_size: int = 256, engine: str | None = None, threads: int = 1,
             device: str | None = None, plot: str | os.PathLike | None = None, input_size=None,
             preprocessing=None, inference_precision: str | None = None) -> dict:
    """Evaluate a checkpoint (``model``+``checkpoint``) or an exported ``artifact`` on ``data``'s ``split``.

    Returns {top1, top5, n, per_class, confusion, labels, most_confused, source...}; writes a
    confusion-matrix PNG when ``plot`` is given."""
    spec = parse_spec(data)
    if (artifact is None) == (checkpoint is None):
        raise UsageError("give either --checkpoint (with --model) or --artifact")
    if plot is not None:  # a read-only folder or full disk fails now, not after the evaluation
        from .io_utils import check_writable

        check_writable(Path(plot).parent, need_bytes=1 << 20, what=f"--plot {plot}")
    if artifact is not None:
        path = Path(artifact)
        if not path.is_file():
            raise UsageError(f"artifact not found: {path}")
        logits, split_data, model_labels, info = _artifact_logits(path, spec, split, batch_size, engine, threads,
                                                                  input_size, preprocessing, inference_precision)
    else:
        from .models import create_model
        net = create_model(model, checkpoint=checkpoint)
        dev = torch.device(device) if device else default_device()
        net.to(dev)
        meta = net.edge_meta
        split_data = load_split(spec, split)
        ds = make_dataset(spec, split, meta["input_size"], meta.get("preprocessing"), loaded=split_data)
        from .bench.torch_engine import torch_threads

        with torch_threads(threads):  # the same --threads policy as an exported file's runtime
            logits, _ = logits_of(net, make_loader(ds, batch_size), dev)
        model_labels = meta.get("labels")
        info = {"checkpoint": str(checkpoint), "model": meta["name"], "format": "torch", "precision": "fp32",
                "input_size": meta["input_size"], "device": str(dev)}
    if split_data.labels is None:
        raise UsageError(f"data {spec} has no labels: evaluation needs npy:X.npy,Y.npy")
    what = info.get("artifact") or info.get("checkpoint")
    labels = split_data.labels
    remap = label_map(split_data.classes, model_labels, logits.shape[1], what)
    if remap is not None:
        labels = remap[labels]
    if labels.size and labels.max() >= logits.shape[1]:
        raise UsageError(f"data {spec} has label {int(labels.max())} but {what} has {logits.shape[1]} outputs")
    names = model_labels if model_labels and len(model_labels) == logits.shape[1] else split_data.classes
    result = {**info, "data": str(spec), "split": split, **metrics(logits, labels, names)}
    notes = list(split_data.notes or [])
    if info.get("verified") is False:
        from .export.artifact import unverified_note

        notes.append(unverified_note(info["artifact"], {}))
    if notes:
        result["notes"] = notes
    if plot is not None:
        result["plot"] = str(plot_confusion(result, plot))
    return result


def plot_confusion(result: dict, path: str | os.PathLike) -> Path:
    """Confusion matrix PNG, rows = actual class, columns = predicted (as in the seed tutorial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io_utils import atomic_path

    cm = np.asarray(result["confusion"])
    names = result["labels"]
    k = len(names)
    side = min(max(4.0, 0.45 * k + 2), 24.0)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images")
    if k <= 40:
        ax.set_xticks(range(k), names, rotation=90 if k > 10 or max(map(len, names)) > 3 else 0)
        ax.set_yticks(range(k), names)
        if k <= 20:
            peak = cm.max() or 1
            for a in range(k):
                for p in range(k):
                    if cm[a, p]:
                        ax.text(p, a, str(cm[a, p]), ha="center", va="center", fontsize=8,
                                color="white" if cm[a, p] > peak / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    src = Path(result.get("artifact") or result.get("checkpoint") or "").name
    model = result.get("model") or "?"
    ax.set_title(f"{model} ({src})\n{result['data']}, {result['split']} split, n={result['n']}: "
                 f"top-1 {result['top1']:.2%}", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
