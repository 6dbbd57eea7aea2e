"""ONNX int8: the static QDQ recipe, and which file nodes belong to which model layer.

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

import ast

import numpy as np

INPUT = "input"
# One place for the settings, so the sidecar, the README and the tests name the same recipe.
WEIGHTS = ("u8", "s8_7bit", "s8")
RECIPE = {"format": "QDQ", "activations": "uint8 (asymmetric, per tensor)", "calibration": "MinMax"}
_WEIGHT_RECIPE = {"u8": "uint8 per-channel, asymmetric (exact on every x86 ISA)",
                  "s8_7bit": "int8 per-channel, symmetric, 7-bit range [-64, 63] (exact on every x86 ISA)",
                  "s8": "int8 per-channel, symmetric, 8-bit (saturates on AVX2 CPUs without VNNI)"}
DEFAULT_WEIGHTS = "u8"
QUANTIZED_WEIGHT_OPS = ("Conv", "Gemm")
SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def calibration_reader(calib: np.ndarray, input_name: str = INPUT):
    """A CalibrationDataReader feeding one image per call (so batch-1 files work too)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def quantize(fp32_path, out_path, calib: np.ndarray, exclude_nodes=(), weights: str = DEFAULT_WEIGHTS) -> dict:
    """Static QDQ int8 of ``fp32_path`` into ``out_path``; nodes in ``exclude_nodes`` stay float.
    ``weights``: one of WEIGHTS. Returns the recipe as recorded in the sidecar."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}")
    quantize_static(str(fp32_path), str(out_path), calibration_reader(calib), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=weights == "s8_7bit", activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8,
                    nodes_to_exclude=list(exclude_nodes) or None)
    return {**RECIPE, "weights": _WEIGHT_RECIPE[weights]}


# ------------------------------------------------------------------ layers of the ONNX file

def keep_scopes(raw, simplified) -> None:
    """onnxsim drops the exporter's per-node module paths; copy them back by node name so the
    int8 tools can name layers as ``edge info`` does."""
    scopes = {n.name: p.value for n in raw.graph.node for p in n.metadata_props if p.key == SCOPES_KEY}
    for node in simplified.graph.node:
        if node.name in scopes and not any(p.key == SCOPES_KEY for p in node.metadata_props):
            entry = node.metadata_props.add()
            entry.key, entry.value = SCOPES_KEY, scopes[node.name]


def _module_of(node, weight_names: set) -> str | None:
    """The model's module path for ``node``: the weight's owner for convs and the fc (BN is
    folded into the conv, so its scope would name the BN), else the exporter's innermost scope."""
    for name in node.input[1:2]:
        if name in weight_names and name.endswith(".weight"):
            return name[: -len(".weight")]
    for p in node.metadata_props:
        if p.key == SCOPES_KEY:
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return None
            # the last entry is the op itself (relu_3, view_2); the one before is its module
            return scopes[-2] if len(scopes) >= 2 and scopes[-2] else None
    return None


def _conv_kind(weight: np.ndarray, group: int) -> str:
    """complexity.conv_kind's names, from the ONNX weight (O x I/g x kh x kw) and group."""
    out_c, in_per_group, kh, kw = weight.shape
    if group > 1 and in_per_group == 1:
        return "dwconv"
    if (kh, kw) == (1, 1):
        return "gconv1x1" if group > 1 else "conv1x1"
    return "conv"


_KIND_BY_OP = {"Gemm": "fc", "MatMul": "fc", "Add": "add", "Concat": "concat", "Split": "split", "Slice": "split",
               "Reshape": "shuffle", "Transpose": "shuffle", "AveragePool": "pool", "MaxPool": "pool",
               "GlobalAveragePool": "pool", "ReduceMean": "pool", "Relu": "relu", "Clip": "relu"}


def layers(proto) -> list[dict]:
    """The file's layers in graph order: {name, kind, nodes: [node names], output: tensor name}.
    A layer is one model module (a conv with its folded BN, a channel shuffle's reshape/transpose/
    reshape); its output is the last of its nodes' outputs."""
    from onnx import numpy_helper

    weights = {t.name: t for t in proto.graph.initializer}
    out: dict[str, dict] = {}
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant"):
            continue
        module = _module_of(node, set(weights)) or node.name
        kind = _KIND_BY_OP.get(node.op_type, node.op_type.lower())
        if node.op_type == "Conv" and node.input[1] in weights:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            kind = _conv_kind(numpy_helper.to_array(weights[node.input[1]]), group)
        layer = out.setdefault(module, {"name": module, "kind": kind, "nodes": [], "ops": []})
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            layer["kind"] = kind  # a module holding a conv is that conv (ReLU fused in it)
        layer["nodes"].append(node.name)
        layer["ops"].append(node.op_type)
        layer["output"] = node.output[0]
    return list(out.values())


def nodes_of_kinds(proto, kinds) -> list[str]:
    """Node names of every layer whose kind is in ``kinds`` (for quantize_static's nodes_to_exclude)."""
    return [n for layer in layers(proto) if layer["kind"] in set(kinds) for n in layer["nodes"]]


def nodes_of_layers(proto, names) -> list[str]:
    """Node names of the named layers; an unknown name is a usage error listing the known ones."""
    from ..errors import UsageError

    by_name = {layer["name"]: layer for layer in layers(proto)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise UsageError(f"unknown layer(s) {', '.join(missing)}: the file's layers are "
                         f"{', '.join(list(by_name)[:8])}{' ...' if len(by_name) > 8 else ''} (see edge quantize-report)")
    return [n for name in names for n in by_name[name]["nodes"]]
