"""Export-time rewrites that let ExecuTorch's XNNPACK partitioner take every op of ShuffleNet.

XNNPACK (ExecuTorch 1.5.1) declines three ops our models write the PyTorch way, and each then
runs in ExecuTorch's generic portable kernels, 2-11 ms per call at 224 px:

- ``avg_pool2d`` with padding and ``count_include_pad=True`` (the v1 stride-2 shortcut): the
  same sum over the same zero-padded 3x3 windows divided by 9 is a depthwise convolution with
  fixed 1/9 weights and the same padding (fp32 and int8: XNNPACK's pad op is fp32 only);
- ``chunk`` / ``split`` (v2's channel split): each piece is a ``slice``;
- ``mean`` over H, W without ``keepdim`` (the global pool): ``mean(keepdim=True)`` then a
  reshape to N x C.

They rewrite the ATen graph of ``torch.export`` (the model itself is untouched: ONNX, TFLite and
ncnn take the original ops well); outputs are equal up to float32 summation order, which the
export's parity check bounds like any other fp32 file.
"""
from __future__ import annotations

import torch

aten = torch.ops.aten


def _shape(node) -> list[int]:
    return list(node.meta["val"].shape)


def _avg_pool_as_dwconv(gm, node, index: int) -> bool:
    args = list(node.args) + [None] * (7 - len(node.args))
    x, kernel, stride, padding, ceil_mode, count_include_pad, divisor = args
    padding = list(padding or [0, 0])
    count_include_pad = True if count_include_pad is None else bool(count_include_pad)
    if len(_shape(x)) != 4 or not any(padding) or not count_include_pad or ceil_mode or divisor is not None:
        return False  # XNNPACK takes it as it is, or our form would not be equal
    kernel = list(kernel) * (2 if len(kernel) == 1 else 1)
    stride = list(stride or kernel) * (2 if len(stride or kernel) == 1 else 1)
    padding = padding * (2 if len(padding) == 1 else 1)
    channels = _shape(x)[1]
    weight = torch.full((channels, 1, *kernel), 1.0 / (kernel[0] * kernel[1]), dtype=node.meta["val"].dtype)
    name = f"_xnnpack_avgpool_weight_{index}"
    gm.register_buffer(name, weight)
    with gm.graph.inserting_before(node):
        w = gm.graph.get_attr(name)
        conv = gm.graph.call_function(aten.conv2d.default, (x, w, None, stride, padding, [1, 1], channels))
    # PT2E's quantizer reads every conv weight's shape from meta["val"] (v1's int8 .pte failed without it)
    w.meta["val"] = weight
    conv.meta = dict(node.meta)
    node.replace_all_uses_with(conv)
    return True


def _split_as_slices(gm, node) -> bool:
    import operator

    x = node.args[0]
    dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    size = _shape(x)[dim]
    if node.target == aten.chunk.default:
        chunks = node.args[1]
        step = -(-size // chunks)
        sizes = [min(step, size - i) for i in range(0, size, step)]
    elif node.target == aten.split.Tensor:
        step = node.args[1]
        sizes = [min(step, size - i) for i in range(0, size, step)]
    else:
        sizes = list(node.args[1])
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    users = list(node.users)
    if not all(u.target is operator.getitem for u in users):
        return False
    for user in users:
        i = user.args[1]
        with gm.graph.inserting_before(user):
            piece = gm.graph.call_function(aten.slice.Tensor, (x, dim, starts[i], starts[i] + sizes[i]))
        piece.meta = dict(user.meta)
        user.replace_all_uses_with(piece)
        gm.graph.erase_node(user)
    return True


def _mean_keepdim(gm, node) -> bool:
    x = node.args[0]
    dims = node.args[1] if len(node.args) > 1 else None
    keepdim = bool(node.args[2]) if len(node.args) > 2 else bool(node.kwargs.get("keepdim", False))
    rank = len(_shape(x))
    if rank != 4 or keepdim or node.kwargs.get("dtype") is not None or dims is None:
        return False
    if sorted(d % rank for d in dims) != [2, 3]:
        return False
    with gm.graph.inserting_before(node):
        pooled = gm.graph.call_function(aten.mean.dim, (x, [2, 3], True))
        flat = gm.graph.call_function(aten.view.default, (pooled, _shape(node)))
    flat.meta = dict(node.meta)
    node.replace_all_uses_with(flat)
    return True


def _max_pool_zero_padded(gm, node) -> bool:
    """A padded max-pool whose input comes straight from a ReLU, as a zero pad then an unpadded max-pool.

    Exact: every window holds at least one real (non-negative) element, so a zero border never
    wins where the -inf border PyTorch means would not. Why: litert-torch writes the -inf border
    as PADV2, which XNNPACK does not take in int8; it then runs in TFLite's reference kernel and
    splits the delegated graph (measured, v1_g3 at 224 through the max-pool, int8: 7.59 M aarch64
    instructions under qemu with PADV2, 5.63 M with the zero pad; fp32 needs 7.34 M in all)."""
    args = list(node.args) + [None] * (6 - len(node.args))
    x, kernel, stride, padding, dilation, ceil_mode = args
    padding = list(padding or [0, 0])
    producer = x.target if getattr(x, "op", None) == "call_function" else None
    if not any(padding) or ceil_mode or any(d != 1 for d in (dilation or [1])) or len(_shape(x)) != 4 \
            or producer not in (aten.relu.default, aten.relu_.default):
        return False
    ph, pw = padding * (2 if len(padding) == 1 else 1)
    stride = list(stride or kernel)
    with gm.graph.inserting_before(node):
        # aten.pad, as F.pad writes it: the int8 quantizer gives it its input's scale (constant_pad_nd got a
        # scale of its own, and a requantize op after it)
        padded = gm.graph.call_function(aten.pad.default, (x, [pw, pw, ph, ph], "constant", 0.0))
        pooled = gm.graph.call_function(aten.max_pool2d.default, (padded, list(kernel), stride, [0, 0]))
    n, c, h, w = _shape(x)
    padded.meta = {**node.meta, "val": x.meta["val"].new_empty((n, c, h + 2 * ph, w + 2 * pw))}
    pooled.meta = dict(node.meta)
    node.replace_all_uses_with(pooled)
    return True


def _rewrite(gm, rules: dict) -> dict:
    """Apply ``rules`` ({name: (targets, rewrite(gm, node, index) -> bool)}) to every call in ``gm`` in
    place, the first rule that takes a node; returns how many nodes each rule rewrote (those above 0)."""
    done = dict.fromkeys(rules, 0)
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        for name, (targets, rewrite) in rules.items():
            if node.target in targets and rewrite(gm, node, done[name]):
                done[name] += 1
                if not node.users:
                    gm.graph.erase_node(node)
                break
    if any(done.values()):
        gm.graph.lint()
        gm.recompile()
    return {k: v for k, v in done.items() if v}


def zero_pad_max_pools(gm) -> int:
    """Rewrite every padded max-pool after a ReLU in ``gm`` (``_max_pool_zero_padded``); returns how many."""
    rules = {"max_pool": ((aten.max_pool2d.default,), lambda g, n, _: _max_pool_zero_padded(g, n))}
    return _rewrite(gm, rules).get("max_pool", 0)


def rewrite_for_xnnpack(gm) -> dict:
    """Rewrite ``gm`` (``torch.export.export(...).module()``) in place; returns what was rewritten."""
    return _rewrite(gm, {
        "avg_pool2d": ((aten.avg_pool2d.default,), _avg_pool_as_dwconv),
        "split": ((aten.chunk.default, aten.split.Tensor, aten.split_with_sizes.default),
                  lambda g, n, _: _split_as_slices(g, n)),
        "mean": ((aten.mean.dim,), lambda g, n, _: _mean_keepdim(g, n)),
    })
