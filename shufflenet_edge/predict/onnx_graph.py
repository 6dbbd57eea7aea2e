"""Kernels of an ONNX file, read from its graph (shapes by ONNX's own shape inference).

The same ``Op`` list a registered model gives (``kernels.py``), so the same predictor runs on
it. Ops that move no data of their own (Reshape, Flatten, Identity, Shape ...) pass their input
through; a Transpose is the channel shuffle (its 5-D input gives the groups); an op this reader
does not know becomes kind ``other`` and is listed with no cost.
"""
from __future__ import annotations

from ..errors import UsageError, one_line
from .kernels import CLAMPED, Op

_ALIAS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Shape", "Gather", "Cast", "Dropout",
          "Constant", "ConstantOfShape", "Expand"}
_ELEMENTWISE = {"Relu": "relu", "Clip": CLAMPED, "LeakyRelu": "relu", "BatchNormalization": "relu"}
_FLOATS = {1, 10, 11, 16}  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
_QUANT = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}


def _attr(node, name, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_input_size(inp, input_size) -> None:
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise UsageError(f"the ONNX file's input '{inp.name}' has {len(dims)} dimensions; an image batch has 4")
    dims[0].ClearField("dim_param")
    dims[0].dim_value = 1
    nhwc = dims[3].dim_value == 3 and dims[1].dim_value != 3
    hw = (dims[1], dims[2]) if nhwc else (dims[2], dims[3])
    if input_size is not None:
        for d, v in zip(hw, input_size):
            d.ClearField("dim_param")
            d.dim_value = int(v)
    if not all(d.dim_value > 0 for d in hw):
        raise UsageError(f"the ONNX file's input '{inp.name}' has no fixed height and width: give --input-size H or HxW")


def onnx_ops(path, input_size=None) -> tuple[list[Op], tuple[int, int]]:
    """(ops, (H, W)) of the ONNX file at ``path``."""
    import onnx
    from onnx import shape_inference

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise UsageError(f"cannot read ONNX file {path}: {one_line(exc)[:200]}") from None
    g = model.graph
    inits = {t.name: list(t.dims) for t in g.initializer}
    consts = {o for n in g.node if n.op_type == "Constant" for o in n.output}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise UsageError(f"{path} has {len(inputs)} inputs; edge predict reads image classifiers with one input")
    if any(n.op_type in _QUANT for n in g.node):
        raise UsageError(f"{path} is quantized; edge predict reads fp32 ONNX files so far")
    _set_input_size(inputs[0], input_size)
    model = _simplified(model)
    try:
        model = shape_inference.infer_shapes(model, data_prop=True)  # data_prop: shapes computed in the graph
    except Exception as exc:
        raise UsageError(f"ONNX shape inference failed on {path}: {one_line(exc)[:200]}") from None
    g = model.graph
    values = [*g.value_info, *g.input, *g.output]
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in values}
    # a shape computation (Shape -> Gather -> Concat -> Reshape, int64) moves no feature map: not a kernel
    maps = {vi.name for vi in values if vi.type.tensor_type.elem_type in _FLOATS}
    in_shape = shapes[inputs[0].name]
    size = (in_shape[1], in_shape[2]) if in_shape[3] == 3 and in_shape[1] != 3 else (in_shape[2], in_shape[3])
    producer = {inputs[0].name: -1}
    ops: list[Op] = []
    slices: dict[str, int] = {}  # input -> its split op: the Slices of one tensor are one split kernel
    for i, node in enumerate(g.node):
        data = [x for x in node.input if x and x not in inits and x not in consts]
        if node.op_type == "Slice" and data and data[0] in slices:
            for o in node.output:
                producer[o] = slices[data[0]]
            continue
        op = _op(node, i, data, shapes, inits) if node.output and node.output[0] in maps else None
        if op is not None and node.op_type == "Slice":
            slices[data[0]] = len(ops)
        if op is None:
            for o in node.output:
                producer[o] = producer.get(data[0], -1) if data else -1
            continue
        op.inputs = [producer.get(x, -1) for x in data]
        for o in node.output:
            producer[o] = len(ops)
        ops.append(op)
    return ops, (int(size[0]), int(size[1]))


def _simplified(model):
    """The graph with constants and shape computations folded (onnxsim, as ``edge export`` leaves its
    files), so every map has a static shape; the graph as it is where onnxsim cannot."""
    try:
        import onnxsim

        from ..export.quiet import silenced

        with silenced():
            simple, ok = onnxsim.simplify(model)
        return simple if ok else model
    except Exception:  # noqa: BLE001 - simplification is an aid: shape inference still runs on the original
        return model


def _chw(shape) -> tuple[int, int, int]:
    if shape and len(shape) >= 4:
        return int(shape[1]), int(shape[2]), int(shape[3])
    return (int(shape[-1]) if shape else 1), 1, 1


def _numel(shape) -> int:
    n = 1
    for d in shape or [0]:
        n *= max(0, int(d))
    return n


def _op(node, i: int, data: list[str], shapes: dict, inits: dict) -> Op | None:
    t = node.op_type
    if t in _ALIAS or not data:
        return None
    x, y = shapes.get(data[0]), shapes.get(node.output[0])
    name = node.name or f"{t}_{i}"
    c, h, w = _chw(x)
    co, oh, ow = _chw(y)
    in_elems = sum(_numel(shapes.get(d)) for d in data)
    base = dict(name=name, cin=c, cout=co, h=h, w=w, oh=oh, ow=ow, in_elems=in_elems, out_elems=_numel(y))
    if t in ("Conv", "FusedConv"):
        wd = inits.get(node.input[1]) or [co, c, 1, 1]
        groups = int(_attr(node, "group", 1))
        k = int(wd[2]) if len(wd) > 2 else 1
        if groups == c and groups > 1 and wd[1] == 1:
            kind = "dwconv"
        elif k == 1 and (len(wd) < 4 or wd[3] == 1):
            kind = "gconv1x1" if groups > 1 else "conv1x1"
        else:
            kind = "conv"
        strides = _attr(node, "strides", [1, 1])
        pads = _attr(node, "pads", [0, 0, 0, 0])
        weights = _numel(wd)
        return Op(kind=kind, k=k, stride=int(strides[0]), groups=groups, pad=int(pads[0]),
                  macs=co * oh * ow * (c // groups) * k * k, weights=weights, **base)
    if t in _ELEMENTWISE:
        return Op(kind=_ELEMENTWISE[t], **base)
    if t in ("Add", "Sum"):
        return Op(kind="add", **base) if len(data) >= 2 else None
    if t == "Concat":
        return Op(kind="concat", c2=sum(_chw(shapes.get(d))[0] for d in data[1:]), **base)
    if t in ("Split", "Slice"):
        return Op(kind="split", **{**base, "cout": c})
    if t == "Transpose":
        if x and len(x) == 5:  # the channel shuffle: [N, g, C/g, H, W] -> [N, C/g, g, H, W]
            return Op(kind="shuffle", groups=int(x[1]), **{**base, "cin": x[1] * x[2], "cout": x[1] * x[2],
                                                             "h": x[3], "w": x[4], "oh": x[3], "ow": x[4]})
        return Op(kind="shuffle", groups=1, **{**base, "cout": c, "oh": h, "ow": w})
    if t in ("MaxPool", "AveragePool"):
        k = _attr(node, "kernel_shape", [1, 1])
        s = _attr(node, "strides", [1, 1])
        p = _attr(node, "pads", [0, 0, 0, 0])
        return Op(kind="maxpool" if t == "MaxPool" else "avgpool", k=int(k[0]), stride=int(s[0]), pad=int(p[0]), **base)
    if t in ("GlobalAveragePool", "ReduceMean"):
        return Op(kind="gap", **{**base, "oh": 1, "ow": 1})
    if t in ("Gemm", "MatMul"):
        wd = inits.get(node.input[1]) if len(node.input) > 1 else None
        cin = int(x[-1]) if x else 1
        cout = int(y[-1]) if y else 1
        return Op(kind="fc", macs=cin * cout, weights=_numel(wd) if wd else cin * cout,
                  **{**base, "cin": cin, "cout": cout, "h": 1, "w": 1, "oh": 1, "ow": 1})
    return Op(kind="other", **base)
