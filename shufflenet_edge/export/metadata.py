"""The metadata that travels with every exported file (sidecar ``<file>.json``, and ONNX
metadata_props): what a runtime needs to feed the file correctly and to trust it."""
from __future__ import annotations

import datetime as dt


def sidecar(meta: dict, fmt: str, precision: str, layout: str, batch, macs: int, params: int,
            input_quantization: dict | None, **extra) -> dict:
    from .. import __version__

    h, w = meta["input_size"]
    n = -1 if batch == "dynamic" else 1
    trained = meta.get("checkpoint_sha256", "untrained") != "untrained"
    return {
        "model": meta["name"],
        "format": fmt,
        "precision": precision,
        "input_shape": [n, h, w, 3] if layout == "nhwc" else [n, 3, h, w],
        "layout": layout,
        "input_size": [h, w],
        "num_classes": meta["num_classes"],
        "preprocessing": meta["preprocessing"],
        "input_quantization": input_quantization,
        "labels": meta.get("labels"),
        "macs": int(macs),
        "params": int(params),
        "checkpoint_sha256": meta.get("checkpoint_sha256", "untrained"),
        "toolkit_version": __version__,
        "trained": trained,
        "batch": batch,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
