"""Pieces shared by every architecture: channel shuffle, the stem rule, small op modules.

Parameterless ops (shuffle, concat, add) are modules rather than functional calls so that the
complexity counter's forward hooks see them and can charge their memory traffic.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UsageError

# The input size picks the stem regime, as the seed projects did. ("layout" means nchw/nhwc only.)
CIFAR, TINY, IMAGENET = "cifar", "tinyimagenet", "imagenet"
STEMS = (CIFAR, TINY, IMAGENET)


def stem_for(input_size: tuple[int, int]) -> str:
    """32 px (up to 40) -> CIFAR stem, up to 96 px -> Tiny ImageNet stem, larger -> ImageNet."""
    side = max(input_size)
    if side <= 40:
        return CIFAR
    if side <= 96:
        return TINY
    return IMAGENET


def parse_input_size(value) -> tuple[int, int]:
    """Accept 224, "224", "480x640", (480, 640); return (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UsageError(f"bad input size {value!r}: expected H or HxW")
        h, w = value
    elif isinstance(value, int):
        h = w = value
    else:
        text = str(value).strip().lower()
        parts = text.split("x")
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise UsageError(f"bad input size {value!r}: expected H or HxW, e.g. 224 or 480x640")
        h = int(parts[0])
        w = int(parts[-1])
    h, w = int(h), int(w)
    if not (8 <= h <= 4096 and 8 <= w <= 4096):
        raise UsageError(f"bad input size {h}x{w}: each side must be between 8 and 4096 px")
    return h, w


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """The paper's Figure 1(c): reshape to (g, C/g), transpose, flatten."""
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return channel_shuffle(x, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class Add(nn.Module):
    def forward(self, a, b):
        return a + b


class GlobalAvgPool(nn.Module):
    """Mean over H and W; works for any final map size (small-input stems end on 4x4)."""

    def forward(self, x):
        return x.mean((2, 3))


def conv_bn(inp: int, oup: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


def init_weights(model: nn.Module) -> None:
    """He init for convs, unit BN, small fc: random models must give sane activations for export tests."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
