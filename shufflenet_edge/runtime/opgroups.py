"""Group per-op profiles into the parts the ShuffleNet v2 paper's Figure 2 argues about.

Self-contained (standard library only): it also runs on boards inside ``runner.py``.
"""
from __future__ import annotations

GROUPS = ("pointwise conv", "depthwise conv", "other conv", "channel shuffle", "split/concat", "element-wise",
          "pooling", "fc", "layout reorder", "quantize/dequantize", "other")

_BY_OP = {
    "Reshape": "channel shuffle", "Transpose": "channel shuffle", "view": "channel shuffle",
    "transpose": "channel shuffle", "reshape": "channel shuffle", "permute": "channel shuffle",
    "contiguous": "channel shuffle", "clone": "channel shuffle", "channel_shuffle": "channel shuffle",
    "Split": "split/concat", "Concat": "split/concat", "Slice": "split/concat", "Gather": "split/concat",
    "chunk": "split/concat", "split": "split/concat", "cat": "split/concat", "slice": "split/concat",
    "narrow": "split/concat",
    "Add": "element-wise", "Relu": "element-wise", "Mul": "element-wise", "Sum": "element-wise",
    "Clip": "element-wise", "Sub": "element-wise", "Div": "element-wise", "Sigmoid": "element-wise",
    "BatchNormalization": "element-wise", "add": "element-wise", "relu": "element-wise", "relu_": "element-wise",
    "add_": "element-wise", "batch_norm": "element-wise", "hardtanh": "element-wise", "hardtanh_": "element-wise",
    "QLinearAdd": "element-wise", "dropout": "element-wise",
    "MaxPool": "pooling", "AveragePool": "pooling", "GlobalAveragePool": "pooling", "ReduceMean": "pooling",
    "QLinearAveragePool": "pooling", "QLinearGlobalAveragePool": "pooling", "max_pool2d": "pooling",
    "avg_pool2d": "pooling", "adaptive_avg_pool2d": "pooling", "mean": "pooling", "max_pool2d_with_indices": "pooling",
    "Gemm": "fc", "FusedGemm": "fc", "MatMul": "fc", "MatMulInteger": "fc", "QGemm": "fc", "linear": "fc", "addmm": "fc",
    "ReorderInput": "layout reorder", "ReorderOutput": "layout reorder",
    "QuantizeLinear": "quantize/dequantize", "DequantizeLinear": "quantize/dequantize",
    "DynamicQuantizeLinear": "quantize/dequantize",
}
_CONV_OPS = {"Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv", "conv2d", "convolution",
             "_convolution", "mkldnn_convolution", "_slow_conv2d_forward", "thnn_conv2d"}


def classify_conv(weight_shape, in_channels: int | None = None) -> str:
    """pointwise (1x1, grouped or not), depthwise (one input channel per group, k > 1) or other."""
    dims = [int(d) for d in weight_shape or [] if isinstance(d, (int, float))]
    if len(dims) < 4:
        return "other conv"
    kh, kw = dims[2], dims[3]
    if kh == 1 and kw == 1:
        return "pointwise conv"
    if dims[1] == 1 and (in_channels is None or in_channels > 1):
        return "depthwise conv"
    return "other conv"


def group_of(op: str, weight_shape=None) -> str:
    if op in _CONV_OPS:
        return classify_conv(weight_shape)
    return _BY_OP.get(op, "other")


def _weight_shape(args: dict):
    # ORT lists inputs as [{"float": [dims]}, ...]; the conv weight is the second input
    # (QLinearConv: x, x_scale, x_zp, w, ...).
    shapes = [next(iter(d.values())) for d in args.get("input_type_shape", []) if isinstance(d, dict) and d]
    if args.get("op_name") == "QLinearConv" and len(shapes) > 3:
        return shapes[3]
    return shapes[1] if len(shapes) > 1 else None


def summarize(totals_us: dict, runs: int, source: str, by_op: dict | None = None) -> dict:
    total = sum(totals_us.values()) or 1.0
    groups = {g: {"ms": round(us / runs / 1e3, 4), "share": round(us / total, 4)}
              for g, us in sorted(totals_us.items(), key=lambda kv: -kv[1])}
    out = {"source": source, "runs": runs, "total_ms": round(total / runs / 1e3, 4), "groups": groups}
    if by_op:
        out["ops"] = {k: round(v / runs / 1e3, 4) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])}
    return out


def group_ort_events(events: list, runs: int) -> dict:
    """ONNX Runtime profile (chrome-trace JSON) -> ms per inference and share per group."""
    totals: dict[str, float] = {}
    by_op: dict[str, float] = {}
    for ev in events:
        if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
            continue
        args = ev.get("args", {})
        op = args.get("op_name", "?")
        g = group_of(op, _weight_shape(args))
        totals[g] = totals.get(g, 0.0) + float(ev.get("dur", 0))
        by_op[op] = by_op.get(op, 0.0) + float(ev.get("dur", 0))
    return summarize(totals, runs, "onnxruntime profiler", by_op)
