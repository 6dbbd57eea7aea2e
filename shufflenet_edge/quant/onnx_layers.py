"""The layers of an exported ONNX file, named and typed as ``edge info`` names them.

The exporter records each node's module path (``pkg.torch.onnx.name_scopes``); a layer is one
model module (a conv with its folded BN, a channel shuffle's reshape/transpose/reshape). The int8
recipe (``export/onnx_int8.py``: which nodes stay float), quantize-report and the accuracy-aware
mixed precision all name layers through this module. It imports nothing from ``export`` so the
export path can use the int8 analysis tools without an import cycle.
"""
from __future__ import annotations

import ast

import numpy as np

SCOPES_KEY = "pkg.torch.onnx.name_scopes"


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
