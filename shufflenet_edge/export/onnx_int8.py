"""ONNX int8: the static QDQ recipe, and the layers kept float (by name, by --int8-policy, or chosen
for accuracy: ``onnx_mixed.py``); which file nodes belong to which layer is ``quant/onnx_layers.py``.

The recipe must give the same answers on every x86 CPU. onnxruntime runs uint8 x int8 convolutions
on AVX2 CPUs without VNNI with VPMADDUBSW, which adds two u8*s8 products into a saturating int16
(255 * 127 * 2 = 64770 > 32767), so a u8s8 file gives other logits there than on a VNNI CPU. Measured
on this project's AVX2-only host (digits-trained v1_g3, 360 test images, worst / mean per-image
cosine vs PyTorch): u8s8 8-bit 0.37 / 0.88 (top-1 93.6% -> 80.6%); u8s8 with 7-bit weights
(``reduce_range``, no overflow) 0.968 / 0.996; s8s8 0.947 / 0.989 (onnxruntime runs it as u8s8);
u8u8 0.988 / 0.998. uint8 weights go through kernels that widen to int16 before multiplying
(VPMADDWD), which cannot overflow, so the integer arithmetic is exact on every ISA, and they keep
a full 8-bit step (7-bit weights have half the resolution). Latency on the same host at 224 px
(v2_1.0x / v1_g3, ratio to fp32): u8u8 0.83 / 1.53, u8s8 7-bit 0.82 / 1.44. bench/int8_layers.py
times the forms on a given host.
"""
from __future__ import annotations

import numpy as np

from ..quant.onnx_layers import SCOPES_KEY, keep_scopes, layers, nodes_of_kinds, nodes_of_layers  # noqa: F401

INPUT = "input"
# One place for the settings, so the sidecar, the README and the tests name the same recipe.
WEIGHTS = ("u8", "s8_7bit", "s8")
RECIPE = {"format": "QDQ", "activations": "uint8 (asymmetric, per tensor)", "calibration": "MinMax"}
_WEIGHT_RECIPE = {"u8": "uint8 per-{}, asymmetric (exact on every x86 ISA)",
                  "s8_7bit": "int8 per-{}, symmetric, 7-bit range [-64, 63] (exact on every x86 ISA)",
                  "s8": "int8 per-{}, symmetric, 8-bit (saturates on AVX2 CPUs without VNNI)"}
DEFAULT_WEIGHTS = "u8"
QUANTIZED_WEIGHT_OPS = ("Conv", "Gemm")


def calibration_reader(calib: np.ndarray, input_name: str = INPUT):
    """A CalibrationDataReader feeding one image per call (so batch-1 files work too)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def quantize(fp32_path, out_path, calib: np.ndarray, exclude_nodes=(), weights: str = DEFAULT_WEIGHTS,
             granularity: str = "channel") -> dict:
    """Static QDQ int8 of ``fp32_path`` into ``out_path``; nodes in ``exclude_nodes`` stay float.
    ``weights``: one of WEIGHTS; ``granularity``: weight scales per output ``channel`` or per ``tensor``.
    Returns the recipe as recorded in the sidecar."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}")
    quantize_static(str(fp32_path), str(out_path), calibration_reader(calib), quant_format=QuantFormat.QDQ,
                    per_channel=granularity == "channel", reduce_range=weights == "s8_7bit", activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8,
                    nodes_to_exclude=list(exclude_nodes) or None)
    return {**RECIPE, "weights": _WEIGHT_RECIPE[weights].format(granularity)}
