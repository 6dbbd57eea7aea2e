"""The model zoo: ``create_model(name, ...)`` and ``list_models()``."""
from __future__ import annotations

import os

import torch
from torch import nn

from ..checkpoint import load_checkpoint, sha256_file
from ..errors import UsageError
from .common import STEMS, channel_shuffle, parse_input_size, stem_for
from .registry import IMAGENET_MEAN, IMAGENET_STD, UNBUILDABLE, ModelSpec, PaperMeta, get_spec, list_models, model_specs, resolve_name

__all__ = ["create_model", "list_models", "get_spec", "model_specs", "ModelSpec", "PaperMeta", "channel_shuffle",
           "parse_input_size", "stem_for", "UNBUILDABLE", "default_preprocessing", "STEMS"]


def default_preprocessing() -> dict:
    """ImageNet convention (torchvision): RGB, pixels / 255, then per-channel mean/std."""
    return {"channel_order": "RGB", "pixel_scale": 255.0, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def _check_same(what: str, flag, stored, ckpt_path) -> None:
    if flag is not None and stored is not None and flag != stored:
        raise UsageError(f"--{what} {flag} contradicts checkpoint {ckpt_path} ({what} {stored})")


def _load_weights(model: nn.Module, state: dict, name: str, ckpt_path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise UsageError(f"checkpoint {ckpt_path} does not fit model '{name}': {detail[:240]}") from None


def create_model(name: str | None = None, num_classes: int | None = None, checkpoint: str | os.PathLike | None = None,
                 input_size=None, labels: list[str] | None = None, preprocessing: dict | None = None) -> nn.Module:
    """Build a registered model in eval mode, optionally loading a local checkpoint.

    With a checkpoint of this project's format, the model name, input size and num_classes come
    from it and a contradicting argument is an error. A plain state_dict (torchvision v2) is
    loaded strictly into ``name``, with num_classes taken from its ``fc.weight``.
    The returned module carries ``edge_meta``: name, input size, stem (cifar, tinyimagenet, imagenet), num_classes,
    preprocessing, labels and the checkpoint's sha256 (or "untrained").
    """
    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    size = parse_input_size(input_size) if input_size is not None else None
    if ckpt is not None and "model" in ckpt:
        stored = resolve_name(ckpt["model"])
        if name is not None and resolve_name(name) != stored:
            raise UsageError(f"checkpoint {checkpoint} is for model '{ckpt['model']}', not '{name}'")
        name = stored
        stored_size = tuple(ckpt["input_size"])
        _check_same("input-size", size and "x".join(map(str, size)), "x".join(map(str, stored_size)), checkpoint)
        _check_same("num-classes", num_classes, int(ckpt["num_classes"]), checkpoint)
        size, num_classes = stored_size, int(ckpt["num_classes"])
        labels = labels or ckpt.get("labels")
        preprocessing = preprocessing or ckpt.get("preprocessing")
    elif ckpt is not None:
        if name is None:
            raise UsageError(f"checkpoint {checkpoint} is a plain state_dict: name the model with --model")
        fc = ckpt["state_dict"].get("fc.weight")
        if fc is None:
            raise UsageError(f"checkpoint {checkpoint} has no fc.weight: not a classifier state_dict")
        _check_same("num-classes", num_classes, int(fc.shape[0]), checkpoint)
        num_classes = int(fc.shape[0])
    if name is None:
        raise UsageError("no model given")
    spec = get_spec(name)
    num_classes = 1000 if num_classes is None else int(num_classes)
    if num_classes < 1:
        raise UsageError(f"bad --num-classes {num_classes}: must be >= 1")
    size = size or (spec.default_input_size, spec.default_input_size)
    stem = stem_for(size)
    model = spec.build(num_classes=num_classes, stem=stem)
    if ckpt is not None:
        _load_weights(model, ckpt["state_dict"], spec.name, checkpoint)
    if labels is not None and len(labels) != num_classes:
        raise UsageError(f"{len(labels)} labels given for {num_classes} classes")
    model.edge_meta = {
        "name": spec.name,
        "family": spec.family,
        "input_size": [int(size[0]), int(size[1])],
        "stem": stem,
        "num_classes": num_classes,
        "preprocessing": preprocessing or default_preprocessing(),
        "labels": labels,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "checkpoint_sha256": sha256_file(checkpoint) if checkpoint is not None else "untrained",
    }
    return model.eval()


def example_input(model: nn.Module, batch: int = 1, seed: int = 0) -> torch.Tensor:
    h, w = model.edge_meta["input_size"]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, h, w, generator=g)
