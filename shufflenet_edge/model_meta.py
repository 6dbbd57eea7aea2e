"""The metadata that travels with every model (checkpoint, sidecar): what each field must hold.

Checked where metadata enters (a checkpoint read, a sidecar read) so a bad field is one line
naming it there, not a crash in a later command. Imports nothing from the package: every layer
may use it.
"""
from __future__ import annotations

import math

MAX_CLASSES = 100_000  # far above ImageNet-21k's 21,841: more is a corrupt file, not a dataset
MAX_SIDE = 16384


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def preprocessing_problem(preprocessing) -> str | None:
    """Why a preprocessing dict cannot be applied (None when it can): checked where it enters."""
    if not isinstance(preprocessing, dict):
        return f"expected a dict with channel_order, pixel_scale, mean, std, got {type(preprocessing).__name__}"
    if str(preprocessing.get("channel_order", "RGB")).upper() not in ("RGB", "BGR"):
        return f"channel_order must be RGB or BGR, got {preprocessing.get('channel_order')!r}"

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    scale = preprocessing.get("pixel_scale", 255.0)
    if not number(scale) or scale <= 0:
        return f"pixel_scale must be a finite number > 0, got {scale!r}"
    for key, default in (("mean", [0.0] * 3), ("std", [1.0] * 3)):
        v = preprocessing.get(key, default)
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(number(c) for c in v):
            return f"{key} must be 3 finite numbers, got {v!r}"[:160]
        if key == "std" and any(c == 0 for c in v):
            return f"std must not be 0, got {v!r}"
    return None


def metadata_problem(meta: dict) -> tuple[str, str] | None:
    """(field, why) for the first unusable field of a model's metadata, None when all are usable."""
    if not isinstance(meta.get("model"), str) or not meta["model"].strip():
        return "model", "expected a model name such as 'v2_1.0x'"
    size = meta.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(is_int(v) and 1 <= v <= MAX_SIDE for v in size)):
        return "input_size", f"expected [H, W], two integers in 1..{MAX_SIDE}"
    n = meta.get("num_classes")
    if not (is_int(n) and 1 <= n <= MAX_CLASSES):
        return "num_classes", f"expected an integer in 1..{MAX_CLASSES}"
    pre = meta.get("preprocessing")
    if pre is not None and (why := preprocessing_problem(pre)):
        return "preprocessing", why
    labels = meta.get("labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) == n and all(isinstance(x, str) for x in labels)):
        return "labels", f"expected {n} class names (strings)"
    return None
