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


TFLITE_METADATA_NAME = "shufflenet_edge"  # the flatbuffer metadata entry that holds the sidecar as JSON


def embedded_metadata(path) -> dict:
    """The metadata stored inside an exported file (ONNX metadata_props, the TFLite flatbuffer's
    ``shufflenet_edge`` entry), or {} when the file holds none or cannot be read as such."""
    import json

    suffix = str(path).lower().rsplit(".", 1)[-1]
    try:
        if suffix == "onnx":
            import onnx

            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
            if "model" not in props and "input_size" not in props:
                return {}
            out = {}
            for key, value in props.items():
                try:
                    out[key] = json.loads(value)
                except ValueError:  # embed_metadata writes strings as they are
                    out[key] = value
            return out
        if suffix == "tflite":
            from ai_edge_litert import schema_py_generated as schema

            with open(path, "rb") as f:
                model = schema.Model.GetRootAs(f.read(), 0)
            for i in range(model.MetadataLength()):
                entry = model.Metadata(i)
                if (entry.Name() or b"").decode() == TFLITE_METADATA_NAME:
                    return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception:  # not our format or corrupt: the engine that opens it says why, in one line
        return {}
    return {}


def read_metadata(path, input_size=None, preprocessing=None, need: tuple[str, ...] = ()) -> dict:
    """The one rule for an exported file's metadata, the same in eval, bench and the demo: its
    sidecar, else the metadata inside the file, with ``input_size``/``preprocessing`` (the
    commands' flags) applied over either; a key in ``need`` that is still missing is one
    UsageError naming the flag that gives it. Every value is type- and range-checked."""
    from ..errors import UsageError
    from ..runtime.engines import EngineError, check_metadata, load_sidecar

    try:
        meta = load_sidecar(path)
        source = f"{path}.json"
        if not meta:
            meta, source = embedded_metadata(path), f"the metadata inside {path}"
        meta = dict(check_metadata(meta, source))
        if input_size is not None:
            h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
            meta["input_size"] = [int(h), int(w)]
        if preprocessing is not None:
            meta["preprocessing"] = preprocessing
        check_metadata(meta, "the flags")
    except EngineError as exc:
        raise UsageError(str(exc)) from None
    return require_metadata(path, meta, need)


def require_metadata(path, meta: dict, need: tuple[str, ...]) -> dict:
    """``meta``, or one UsageError naming what of ``need`` is missing and the flag that gives it."""
    from ..errors import UsageError

    flags = {"input_size": "--input-size H or HxW", "preprocessing": "--preprocessing digits|cifar10|imagenet|JSON"}
    missing = [k for k in need if not meta.get(k)]
    if missing:
        raise UsageError(f"{path} has no {' or '.join(k.replace('_', ' ') for k in missing)} (no sidecar {path}.json "
                         f"and none inside the file): give {' and '.join(flags.get(k, k) for k in missing)}")
    return meta


def parse_preprocessing(text) -> dict | None:
    """``--preprocessing``: a data kind's (digits, cifar10, imagenet) or a JSON object
    ``{"mean": [..], "std": [..], "pixel_scale": 255, "channel_order": "RGB"}``."""
    import json

    from ..errors import UsageError
    from ..runtime.engines import EngineError, check_metadata

    if text is None or isinstance(text, dict):
        return text
    from ..data import CIFAR10_PREPROCESSING, DIGITS_PREPROCESSING, IMAGENET_PREPROCESSING

    named = {"digits": DIGITS_PREPROCESSING, "cifar10": CIFAR10_PREPROCESSING, "imagenet": IMAGENET_PREPROCESSING}
    value = str(text).strip()
    if value.lower() in named:
        return dict(named[value.lower()])
    try:
        pre = json.loads(value)
        check_metadata({"preprocessing": pre}, "--preprocessing")
    except (ValueError, EngineError):
        raise UsageError(f"bad --preprocessing '{value[:60]}': use {', '.join(named)} or a JSON object like "
                         '{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}') from None
    if not isinstance(pre, dict):
        raise UsageError(f"bad --preprocessing '{value[:60]}': use {', '.join(named)} or a JSON object")
    return {"channel_order": "RGB", "pixel_scale": 255.0, **pre}


def parity_passed(parity: dict | None, precision: str | None) -> bool:
    """Did this parity result pass the export's gate? fp32 must match PyTorch within the
    allclose-style bound; other precisions must have run and given finite figures."""
    import math

    if not isinstance(parity, dict) or parity.get("passed") is False:
        return False

    def finite(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not finite(parity.get("max_abs_diff")) or not all(finite(parity[k]) for k in ("cosine", "top1_agreement")
                                                         if k in parity):
        return False
    if parity.get("passed") is True or precision != "fp32":
        return True
    from .parity import fp32_tolerance

    return parity["max_abs_diff"] <= fp32_tolerance(parity)


def is_verified(metadata) -> bool:
    """An artifact is verified when its metadata (sidecar, else embedded) holds a passing parity
    result; ``metadata`` is that dict, or the path of an artifact or of its sidecar."""
    if not isinstance(metadata, dict):
        from ..runtime.engines import EngineError, load_sidecar

        path = str(metadata)
        try:
            metadata = load_sidecar(path[: -len(".json")] if path.endswith(".json") else path)
        except EngineError:
            return False
    return parity_passed(metadata.get("parity"), metadata.get("precision"))