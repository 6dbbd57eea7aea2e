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

import torch
from torch import nn

from ..models.common import Add, ChannelShuffle, Concat, GlobalAvgPool
from .kernels import CONV_KINDS, out_hw


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
        if s["kind"] in ("relu", "add", "shuffle", "split", "maxpool", "avgpool", "gap", "dwconv"):
            s["cout"] = c
        if s["kind"] == "dwconv":
            s["groups"] = c
        if s["kind"] == "concat":
            s["cout"] = c + int(s.get("c2", 0))
        if s["kind"] == "shuffle" and c % int(s.get("groups", 1)):
            s["groups"] = 1
        out.append(s)
    return out


def build(specs: list[dict]) -> tuple[nn.Module, list[list[int]]]:
    """(module, input shapes) of the chain ``specs`` (each op feeding the next), in eval mode."""
    torch.manual_seed(0)
    return Chain([_layer(s) for s in specs], [s["kind"] for s in specs]).eval(), input_shapes(specs)


# ---------------------------------------------------------------- composite networks (for the proxies)

def composite(rng):
    """(module, input [C, H, W], description) of a random stack of the zoo's units (ShuffleNet v1 and
    v2 units, MobileNet's depthwise-separable block) at a random width and map size: networks the
    FLOPs and MACs+memory laws are fitted on, none of them a zoo model."""
    family = str(rng.choice(["v1", "v2", "mobilenet"]))
    side = int(rng.choice([14, 28, 56]))  # small enough that many fit in the budget, large enough to span the zoo
    h, w = side, int(side * float(rng.choice([1.0, 4 / 3])))
    n = int(rng.integers(2, 7))
    if family == "v1":
        g = int(rng.choice([1, 2, 3, 4, 8]))
        c = 4 * g * int(rng.integers(max(1, 24 // g), max(2, 200 // g)))
    elif family == "v2":
        g, c = 2, 2 * int(rng.integers(12, 300))
    else:
        g, c = 1, int(rng.integers(16, 600))
    down = family != "mobilenet" and bool(rng.random() < 0.5)
    desc = {"family": family, "channels": c, "groups": g, "blocks": n + int(down), "h": h, "w": w, "downsample": down}
    module, shape = composite_from(desc)
    return module, shape, desc


def composite_from(desc: dict):
    """(module, input [C, H, W]) of the composite a description names (``composite``'s): a profile's
    composites can be rebuilt, and their kernel sums recomputed, when the fusion rules are read anew."""
    from ..models.common import conv_bn
    from ..models.shufflenet_v1 import ShuffleUnit
    from ..models.shufflenet_v2 import InvertedResidual

    family, c, g = desc["family"], int(desc["channels"]), int(desc["groups"])
    down = bool(desc.get("downsample", False))
    n = int(desc["blocks"]) - int(down)
    torch.manual_seed(0)
    if family == "v1":
        blocks = [ShuffleUnit(c, c, g, 1, first_group=False) for _ in range(n)]
        blocks += [ShuffleUnit(c, 2 * c, g, 2, first_group=False)] if down else []
    elif family == "v2":
        blocks = [InvertedResidual(c, c, 1) for _ in range(n)]
        blocks += [InvertedResidual(c, 2 * c, 2)] if down else []
    else:
        blocks = [nn.Sequential(*conv_bn(c, c, 3, 1, groups=c), *conv_bn(c, c, 1, 1)) for _ in range(n)]
    return nn.Sequential(*blocks).eval(), (c, int(desc["h"]), int(desc["w"]))
