"""Per-layer int8 error of a QDQ ONNX file against its fp32 file, and the sensitivity ranking.

For every quantized layer: SQNR in dB (10 log10 of signal power over error power; higher is
better) and cosine of its output, with the layer quantized alone (everything else float: the error
the layer itself adds) and in the fully quantized network (what has piled up by that point).
Used by ``edge quantize-report`` and by ``--keep-fp32 auto`` (``export/onnx_mixed.py``); imports
nothing from ``export``.
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64).ravel()
    err = float(((ref - got.astype(np.float64).ravel()) ** 2).sum())
    signal = float((ref ** 2).sum())
    if err == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / err)


def cosine(ref: np.ndarray, got: np.ndarray) -> float:
    a, b = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def finite_db(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None  # JSON has no inf: None means "no error at all"


def onnx_layer_errors(fp32_path, int8_path, x: np.ndarray) -> list[dict]:
    """Per quantized layer: SQNR and cosine alone and in the full int8 network (graph order)."""
    import onnx

    from . import onnx_qdq

    fp32, qdq = onnx.load(str(fp32_path)), onnx.load(str(int8_path))
    layers = onnx_qdq.quantized_layers(qdq, fp32)
    if not layers:
        raise UsageError(f"{int8_path} has no quantized layers")
    ref = onnx_qdq.run(fp32, x, [layer["output"] for layer in layers])
    full_names = [onnx_qdq.dequantized_output(qdq, layer["output"]) for layer in layers]
    full = onnx_qdq.run(qdq, x, full_names)
    rows = []
    for layer, full_name in zip(layers, full_names):
        alone = onnx_qdq.only_quantized(qdq, fp32, set(layer["nodes"]))
        name = onnx_qdq.dequantized_output(alone, layer["output"])
        got = onnx_qdq.run(alone, x, [name])
        r, a, f = ref[layer["output"]], got[name], full[full_name]
        rows.append({"name": layer["name"], "kind": layer["kind"], "ops": sorted(set(layer["ops"])),
                     "sqnr_alone_db": finite_db(sqnr_db(r, a)), "cosine_alone": round(cosine(r, a), 6),
                     "sqnr_full_db": finite_db(sqnr_db(r, f)), "cosine_full": round(cosine(r, f), 6),
                     "logits_sqnr_alone_db": finite_db(sqnr_db(ref[None], got[None]))})
    return rows


def rank(rows: list[dict]) -> list[dict]:
    """Worst first: lowest SQNR with the layer alone quantized (None = exact, last)."""
    key = (lambda r: (r["sqnr_alone_db"] is None, r["sqnr_alone_db"] if r["sqnr_alone_db"] is not None else 0.0,
                      r["sqnr_full_db"] if r["sqnr_full_db"] is not None else 1e9))
    ranked = sorted(rows, key=key)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked
