"""The ShuffleNet v2 paper's four guideline micro-benchmarks (Tables 1-4) as exportable modules.

Each network is a stack of 10 blocks on a 56x56 feature map, FLOPs held fixed within a table
(the settings are in ``paper.GUIDELINES``). Convolutions have no bias and no BatchNorm: every
exporter folds BN into the conv, so the files would be the same.

The export pipeline feeds 3-channel images, so a module takes a (1, 3, 56, W) tensor (or
(1, 3, 56a, 56b) once W would pass the 4096 px input limit, from c = 220 up) and views its first c*56*56 values as the (1, c, 56, 56) feature map (flatten, slice, reshape). That
adapter is the same kind of copy in every row and costs about one feature-map read; the report
says so rather than hiding it.

Interpretations where the paper's text leaves a choice (its appendix draws the blocks):
- G3 "k-fragment-series": k 1x1 convs in a row at width round(c / sqrt(k)), so the block keeps
  the 1-fragment block's FLOPs (c^2 hw); "k-fragment-parallel": k 1x1 convs c -> c/k on the same
  input, concatenated (again c^2 hw).
- G4: the ResNet bottleneck c -> c/4 (1x1) -> c/4 (3x3) -> c (1x1), ReLU after each conv and
  after the shortcut add, as in ResNet; "no ReLU" drops all of them, "no shortcut" the add.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..models.common import Add, Concat
from .paper import GUIDELINES

HW = 56
BLOCKS = 10


@dataclass(frozen=True)
class Micro:
    """One row of one guideline table at one channel multiplier."""

    guideline: str  # "G1".."G4"
    variant: str  # the paper's row label, e.g. "1:2", "g=4", "2-series", "no ReLU"
    multiplier: int  # 1, 2, 4
    channels: tuple  # G1 (c1, c2); otherwise (c,)
    groups: int = 1  # G2
    fragments: int = 1  # G3
    parallel: bool = False  # G3
    relu: bool = True  # G4
    shortcut: bool = True  # G4

    @property
    def name(self) -> str:
        slug = self.variant.replace(":", "-").replace("=", "").replace(" ", "-").lower()
        return f"{self.guideline.lower()}_{slug}_x{self.multiplier}"

    @property
    def in_channels(self) -> int:
        if self.guideline == "G3" and not self.parallel:
            return series_width(self.channels[0], self.fragments)
        return self.channels[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["name"] = self.name
        return d


def series_width(c: int, k: int) -> int:
    return int(round(c / math.sqrt(k)))


def configs(multipliers=(1, 2, 4), guidelines=("G1", "G2", "G3", "G4")) -> list[Micro]:
    """Every row of the requested tables, in the paper's order."""
    out = []
    for m in multipliers:
        for g in guidelines:
            for row in GUIDELINES[g]["rows"]:
                opts = row.get("options", {})
                ch = tuple(int(c) * int(m) for c in row["channels"])
                groups = int(opts.get("groups", 1))
                if ch[0] % groups:  # the paper's c=180 at g=8 does not split into 8 groups: nearest multiple
                    ch = (int(math.floor(ch[0] / groups + 0.5)) * groups,)
                out.append(Micro(g, row["variant"], int(m), ch, **opts))
    return out


def _conv(cin: int, cout: int, k: int = 1, groups: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False)
    # unit-gain init: 40 stacked convs neither explode nor sink into denormals (which x86 runs slowly)
    nn.init.normal_(conv.weight, std=1.0 / math.sqrt(cin // groups * k * k))
    return conv


class _Parallel(nn.Module):
    def __init__(self, c: int, k: int):
        super().__init__()
        self.branches = nn.ModuleList(_conv(c, c // k) for _ in range(k))
        self.cat = Concat()  # a module, so complexity.measure counts its memory access

    def forward(self, x):
        return self.cat(*(b(x) for b in self.branches))


class _Bottleneck(nn.Module):
    def __init__(self, c: int, relu: bool, shortcut: bool):
        super().__init__()
        mid = max(1, c // 4)
        self.convs = nn.ModuleList([_conv(c, mid), _conv(mid, mid, 3), _conv(mid, c)])
        self.relu, self.shortcut = relu, shortcut
        self.act = nn.ReLU()
        self.add = Add()  # a module, so complexity.measure counts its memory access

    def forward(self, x):
        y = x
        for i, conv in enumerate(self.convs):
            y = conv(y)
            if self.relu and i < 2:
                y = self.act(y)
        if self.shortcut:
            y = self.add(y, x)
        return self.act(y) if self.relu else y


def _blocks(cfg: Micro) -> list[nn.Module]:
    if cfg.guideline == "G1":
        c1, c2 = cfg.channels
        return [nn.Sequential(_conv(c1, c2), _conv(c2, c1)) for _ in range(BLOCKS)]
    c = cfg.channels[0]
    if cfg.guideline == "G2":
        return [_conv(c, c, groups=cfg.groups) for _ in range(BLOCKS)]
    if cfg.guideline == "G3":
        if cfg.parallel:
            return [_Parallel(c, cfg.fragments) for _ in range(BLOCKS)]
        w = series_width(c, cfg.fragments)
        return [nn.Sequential(*(_conv(w, w) for _ in range(cfg.fragments))) for _ in range(BLOCKS)]
    if cfg.guideline == "G4":
        return [_Bottleneck(c, cfg.relu, cfg.shortcut) for _ in range(BLOCKS)]
    raise ValueError(f"unknown guideline {cfg.guideline}")


def input_width(channels: int) -> int:
    """W of the (1, 3, 56, W) input that holds a channels x 56 x 56 feature map."""
    return -(-channels * HW // 3)


MAX_SIDE = 4096  # parse_input_size's limit on an input side


def input_hw(channels: int) -> tuple[int, int]:
    """(H, W) of a 3-channel input holding a channels x 56 x 56 map: one 56-row strip while W fits
    (the shape every cached file of narrower rows has), else a near-square grid of 56x56 tiles."""
    if input_width(channels) <= MAX_SIDE:
        return HW, input_width(channels)
    rows = math.ceil(math.sqrt(channels / 3))
    return HW * rows, HW * math.ceil(channels / (3 * rows))


class MicroNet(nn.Module):
    """The stack, behind the 3-channel input adapter described in the module docstring."""

    def __init__(self, cfg: Micro):
        super().__init__()
        torch.manual_seed(0)
        self.cfg = cfg
        self.c = cfg.in_channels
        self.body = nn.Sequential(*_blocks(cfg))
        # no classifier: num_classes None (metadata checks want a class count >= 1 when one is given)
        self.edge_meta = {"name": cfg.name, "input_size": list(input_hw(self.c)), "num_classes": None,
                          "micro": cfg.to_dict()}

    def extra_repr(self) -> str:  # in the export cache's structure hash: the options repr() would not show
        return ", ".join(f"{k}={v}" for k, v in self.cfg.to_dict().items())

    def forward(self, x):
        x = x.flatten(1)[:, : self.c * HW * HW].reshape(x.shape[0], self.c, HW, HW)
        return self.body(x)


def build(cfg: Micro) -> MicroNet:
    return MicroNet(cfg).eval()


def body_complexity(cfg: Micro):
    """complexity.measure of the stack alone on its c x 56 x 56 map (the adapter excluded)."""
    from ..complexity import measure

    net = build(cfg)
    body = net.body
    body.edge_meta = {"name": cfg.name, "input_size": [HW, HW], "num_classes": None}
    return measure(body, (HW, HW), in_channels=net.c)


CALIB_SIZE = 64  # random calibration inputs for int8: scales do not change speed


def export_fields(cfg: Micro, fmt: str, precision: str, meta: bool = False) -> dict:
    """export()'s arguments for one micro-module file (the export cache keys it by the module's
    structure, so every row and multiplier is its own file). ``meta``: the module on the meta
    device, enough for the cache key and free to build."""
    if meta:
        with torch.device("meta"):
            return export_fields(cfg, fmt, precision)
    return dict(model=build(cfg), format=fmt, precision=precision, calib_size=CALIB_SIZE)
