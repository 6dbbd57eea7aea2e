"""Micro-models: one kernel (or a short chain of them) as a tiny nn.Module, the way the zoo builds it.

A chain takes its feature maps as they are (``[1, C, H, W]``, or ``[1, C]`` before an fc), not
as images: the fit times it in-process (``measure.py``), where nothing needs a 3-channel input.
Convolutions carry their BatchNorm, as in the zoo: every exporter folds it into the conv, so the
file holds what the zoo's files hold. An op that takes two tensors (add, concat) gets its second
one as another graph input; a split hands its first half out as an extra output (as v2's unit
passes it on to the concat).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

from ..models.common import Add, ChannelShuffle, Concat, GlobalAvgPool
from .kernels import CLAMPED, CONV_KINDS, out_hw


class Split(nn.Module):
    """x.chunk(2, dim=1), as v2's unit splits its input."""

    def forward(self, x):
        return x.chunk(2, dim=1)


class Chain(nn.Module):
    """Ops in a row, each feeding the next (see the module docstring for two-input ops and split)."""

    def __init__(self, layers: list, kinds: list[str]):
        super().__init__()
        self.ops = nn.ModuleList(layers)
        self.kinds = list(kinds)

    def forward(self, *xs):
        y, extra, outs = xs[0], iter(xs[1:]), []
        for kind, op in zip(self.kinds, self.ops):
            if kind in ("add", "concat"):
                y = op(y, next(extra))
            elif kind == "split":
                first, y = op(y)
                outs.append(first)
            else:
                if kind == "fc" and y.dim() > 2:
                    y = y.flatten(1)
                y = op(y)
        return (y, *outs) if outs else y


def _layer(spec: dict) -> nn.Module:

    kind = spec["kind"]
    cin, cout = int(spec["cin"]), int(spec["cout"])
    if kind in CONV_KINDS:
        conv = nn.Conv2d(cin, cout, int(spec.get("k", 1)), int(spec.get("stride", 1)), int(spec.get("pad", 0)),
                         groups=int(spec.get("groups", 1)), bias=False)
        nn.init.normal_(conv.weight, std=1.0 / math.sqrt(max(1, conv.weight[0].numel())))  # unit gain: no denormals
        return nn.Sequential(conv, nn.BatchNorm2d(cout))
    if kind == "relu":
        return nn.ReLU()
    if kind == CLAMPED:
        return nn.ReLU6()
    if kind == "add":
        return Add()
    if kind == "concat":
        return Concat()
    if kind == "split":
        return Split()
    if kind == "shuffle":
        return ChannelShuffle(int(spec.get("groups", 2)))
    if kind in ("maxpool", "avgpool"):
        if "out" in spec:
            return nn.AdaptiveAvgPool2d(tuple(int(v) for v in spec["out"]))
        cls = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
        return cls(int(spec.get("k", 3)), int(spec.get("stride", 2)), int(spec.get("pad", 0)))
    if kind == "gap":
        return GlobalAvgPool()
    if kind == "fc":
        return nn.Linear(cin, cout)
    raise ValueError(f"no micro-model for kernel kind '{kind}'")


def input_shapes(specs: list[dict]) -> list[list[int]]:
    """The graph inputs of a chain: its first op's input, then each two-input op's second tensor."""
    first = specs[0]
    shapes = [[1, int(first["cin"])] if first["kind"] == "fc" else [1, int(first["cin"]), int(first["h"]), int(first["w"])]]
    for s in specs:
        if s["kind"] == "add":
            shapes.append([1, int(s["cin"]), int(s["h"]), int(s["w"])])
        elif s["kind"] == "concat":
            shapes.append([1, int(s.get("c2", s["cin"])), int(s["h"]), int(s["w"])])
    return shapes


def chain_specs(specs: list[dict]) -> list[dict]:
    """``specs`` with each op's input set to what the previous op gives (a pair measured together)."""
    out = [dict(specs[0])]
    for s in specs[1:]:
        prev = out[-1]
        oh, ow = out_hw(prev)
        c = int(prev["cout"]) if prev["kind"] != "split" else int(prev["cin"]) // 2
        if prev["kind"] == "concat":
            c = int(prev["cin"]) + int(prev.get("c2", 0))
        s = dict(s, cin=c, h=oh, w=ow) if s["kind"] != "fc" else dict(s, cin=c * oh * ow, h=1, w=1)  # fc: flattened
        if s["kind"] in ("relu", CLAMPED, "add", "shuffle", "split", "maxpool", "avgpool", "gap", "dwconv"):
            s["cout"] = c
        if s["kind"] == "dwconv":
            s["groups"] = c
        if s["kind"] == "concat":
            s["cout"] = c + int(s.get("c2", 0))
        if s["kind"] == "shuffle" and c % int(s.get("groups", 1)):
            s["groups"] = 1
        out.append(s)
    return out


def export_onnx(module, shapes: list[list[int]], path: Path) -> Path:
    """``module`` as an ONNX file for inputs of ``shapes`` (TorchScript exporter: ``measure.py`` says why)."""
    from ..export.onnx_export import OPSET

    xs = tuple(torch.randn(*s) for s in shapes)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, xs, str(path), dynamo=False, opset_version=OPSET,
                          input_names=[f"x{i}" for i in range(len(xs))])
    return path


def build(specs: list[dict]) -> tuple[nn.Module, list[list[int]]]:
    """(module, input shapes) of the chain ``specs`` (each op feeding the next), in eval mode."""
    torch.manual_seed(0)
    return Chain([_layer(s) for s in specs], [s["kind"] for s in specs]).eval(), input_shapes(specs)


# ---------------------------------------------------------------- composite networks (for the proxies)

# Composites are drawn to look like the zoo to the engine, since the calibration fitted on them is applied
# to the zoo: widths on the zoo's channel quanta (the builders' rounding: v1 whole groups of 8, v2 and
# MobileNet multiples of 4 and 8; ONNX Runtime picks NCHWc or NCHW kernels by them), maps up to the zoo's
# at 480x640 (stage 2 there is 60x80), and a share behind the zoo's stem (stride-2 conv, max pool, a
# stride-2 entry unit). The first host profile drew any width at 14-56 px and no stem: its calibration
# (compute x1.10) put v1 at 480x640 16-20% slow.
COMPOSITE_SIDES = (14, 28, 56, 112)
STEM_SIDES = (14, 28, 56)  # a stem multiplies the side by 8 (4 for MobileNet): 56 is a 448-597 px image
QUANTUM = {"v1": 8, "v2": 4, "mobilenet": 8}  # v1's is per group
MAX_COMPOSITE_MACS = 1.5e9  # ~20 ms a run on one AVX-512 core (MobileNet v1 at 480x640, 3.5 GMACs: 36-39 ms)


def composite(rng):
    """(module, input [C, H, W], description) of a random stack of the zoo's units (ShuffleNet v1 and
    v2 units, MobileNet's depthwise-separable block) at a random width on the zoo's channel quanta and
    a random map size, some behind the zoo's stem: networks the FLOPs and MACs+memory laws and the
    calibration are fitted on, none of them a zoo model."""
    from .kernels import totals, trace_ops

    family = str(rng.choice(["v1", "v2", "mobilenet"]))
    stem = bool(rng.random() < 0.4)
    side = int(rng.choice(STEM_SIDES if stem else COMPOSITE_SIDES))
    h, w = side, int(side * float(rng.choice([1.0, 4 / 3])))
    n = int(rng.integers(2, 7))
    g = {"v1": int(rng.choice([1, 2, 3, 4, 8])), "v2": 2, "mobilenet": 1}[family]
    q = QUANTUM[family] * (g if family == "v1" else 1)
    c = q * max(1, int(round(float(rng.uniform(24, 800)) / q)))
    down = family != "mobilenet" and bool(rng.random() < 0.5)
    while True:
        desc = {"family": family, "channels": c, "groups": g, "blocks": n + int(down), "h": h, "w": w,
                "downsample": down, "stem": stem}
        module, shape = composite_from(desc)
        macs = totals(trace_ops(module, shape[1:], in_channels=shape[0]))["macs"]
        if macs <= MAX_COMPOSITE_MACS or c <= q:
            return module, shape, desc
        c = max(q, int(c * (MAX_COMPOSITE_MACS / macs) ** 0.5 / q) * q)


def composite_from(desc: dict):
    """(module, input [C, H, W]) of the composite a description names (``composite``'s): a profile's
    composites can be rebuilt, and their kernel sums recomputed, when the fusion rules are read anew."""
    from ..models.common import conv_bn
    from ..models.shufflenet_v1 import ShuffleUnit
    from ..models.shufflenet_v2 import InvertedResidual

    family, c, g = desc["family"], int(desc["channels"]), int(desc["groups"])
    down = bool(desc.get("downsample", False))
    n = int(desc["blocks"]) - int(down)
    h, w = int(desc["h"]), int(desc["w"])
    torch.manual_seed(0)
    if family == "v1":
        blocks = [ShuffleUnit(c, c, g, 1, first_group=False) for _ in range(n)]
        blocks += [ShuffleUnit(c, 2 * c, g, 2, first_group=False)] if down else []
    elif family == "v2":
        blocks = [InvertedResidual(c, c, 1) for _ in range(n)]
        blocks += [InvertedResidual(c, 2 * c, 2)] if down else []
    else:
        blocks = [nn.Sequential(*conv_bn(c, c, 3, 1, groups=c), *conv_bn(c, c, 1, 1)) for _ in range(n)]
    if not desc.get("stem"):
        return nn.Sequential(*blocks).eval(), (c, h, w)
    # the zoo's stems: ShuffleNet's conv + max pool + a stride-2 entry unit, MobileNet's conv + a stride-2 block
    if family == "mobilenet":
        entry = [*conv_bn(3, 32, 3, 2), *conv_bn(32, 32, 3, 2, groups=32), *conv_bn(32, c, 1, 1)]
        factor = 4
    else:
        unit = ShuffleUnit(24, c, g, 2, first_group=True) if family == "v1" else InvertedResidual(24, c, 2)
        entry = [*conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1), unit]
        factor = 8
    return nn.Sequential(*entry, *blocks).eval(), (3, h * factor, w * factor)
