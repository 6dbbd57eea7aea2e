"""ShuffleNet v1 (Zhang et al., CVPR 2018), the architecture of the paper's Table 1.

Channel rule (one rule for every groups/scale pair, and it reproduces megvii's official g=3
table exactly): stage channels = Table 1's 1x channels for g, times the scale, rounded to a
multiple of 4*g (so the bottleneck, 1/4 of the output, splits into g groups); stem channels =
the largest 12 * 2^n not above 24 * scale, at least 12, rounded up to a multiple of g (so the
first unit's residual branch, out - stem, splits into g groups). That is megvii's 12 / 24 / 24 /
48 for 0.5x / 1x / 1.5x / 2x, and 12 for 0.25x: the stem never shrinks below the 0.5x model's.
Halving it to 6 at 0.25x would give 11.0 M MACs for g = 3; Table 2's ~13 MFLOPs needs 12
(13.3 M), so the paper's 0.25x keeps the 0.5x stem.
"""
from __future__ import annotations

import math

from torch import nn

from ..errors import UsageError
from .common import CIFAR, IMAGENET, TINY, Add, ChannelShuffle, Concat, GlobalAvgPool, init_weights

# Table 1: stage2/3/4 output channels at 1x.
TABLE1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}
STAGE_REPEATS = (4, 8, 4)
GROUPS = tuple(TABLE1_CHANNELS)
SCALES = (0.25, 0.5, 1.0, 1.5, 2.0)


def stem_channels(scale: float) -> int:
    """12 * 2^floor(log2(2 * scale)), at least 12: 0.25x/0.5x 12, 1x/1.5x 24, 2x 48 (before rounding to g)."""
    return 12 * 2 ** max(0, math.floor(math.log2(2 * scale)))


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def channel_plan(groups: int, scale: float) -> list[int]:
    """[stem, stage2, stage3, stage4] output channels for (groups, scale)."""
    if groups not in TABLE1_CHANNELS:
        raise UsageError(f"ShuffleNet v1 has no groups={groups} (the paper uses {', '.join(map(str, GROUPS))})")
    if scale not in SCALES:
        raise UsageError(f"ShuffleNet v1 has no scale {scale}x (known: {', '.join(map(str, SCALES))})")
    stem = int(math.ceil(stem_channels(scale) / groups)) * groups
    stages = [_round_to(c * scale, 4 * groups) for c in TABLE1_CHANNELS[groups]]
    return [stem, *stages]


def check_plan(plan: list[int], groups: int) -> None:
    """Raise a one-line error if any grouped conv of this plan would not divide into groups."""
    inp = plan[0]
    for stage, oup in enumerate(plan[1:], start=2):
        mid = oup // 4
        if oup % 4:
            raise UsageError(f"stage{stage}: {oup} output channels are not divisible by 4 (bottleneck = out/4)")
        branch = oup - inp
        first = stage == 2
        if not first and inp % groups:
            raise UsageError(f"stage{stage}: {inp} input channels not divisible by groups={groups}")
        if mid % groups or branch % groups or oup % groups:
            raise UsageError(
                f"stage{stage}: bottleneck {mid} / branch {branch} / output {oup} channels not divisible by groups={groups}"
            )
        inp = oup


class ShuffleUnit(nn.Module):
    """Figure 2(b) (stride 1, add) and 2(c) (stride 2, avg-pool shortcut, concat)."""

    def __init__(self, inp: int, oup: int, groups: int, stride: int, first_group: bool):
        super().__init__()
        self.stride = stride
        mid = oup // 4
        branch_out = oup - inp if stride == 2 else oup
        g1 = 1 if first_group else groups  # stage2's first pointwise conv sees only the stem's channels
        self.gconv1 = nn.Sequential(nn.Conv2d(inp, mid, 1, bias=False, groups=g1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.dwconv = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.gconv2 = nn.Sequential(nn.Conv2d(mid, branch_out, 1, bias=False, groups=groups), nn.BatchNorm2d(branch_out))
        self.relu = nn.ReLU(inplace=True)
        if stride == 2:
            self.shortcut = nn.AvgPool2d(3, 2, 1)
            self.merge = Concat()
        else:
            self.merge = Add()

    def forward(self, x):
        y = self.gconv2(self.dwconv(self.shuffle(self.gconv1(x))))
        if self.stride == 2:
            return self.merge(self.shortcut(x), self.relu(y))
        return self.relu(self.merge(x, y))


class ShuffleNetV1(nn.Module):
    def __init__(self, groups: int = 3, scale: float = 1.0, num_classes: int = 1000, stem: str = IMAGENET,
                 channels: list[int] | None = None):
        super().__init__()
        plan = list(channels) if channels is not None else channel_plan(groups, scale)
        check_plan(plan, groups)
        self.groups, self.scale, self.channels = groups, scale, plan
        stem_ch = plan[0]
        if stem == CIFAR:  # seed tutorial: 1x1 stem, no max-pool, 32 -> 16 -> 8 -> 4
            self.conv1 = nn.Sequential(nn.Conv2d(3, stem_ch, 1, 1, 0, bias=False), nn.BatchNorm2d(stem_ch), nn.ReLU(inplace=True))
            self.maxpool = nn.Identity()
        else:  # Tiny ImageNet keeps the max-pool but not the stem stride: 56 -> 28 -> 14 -> 7 -> 4
            stride = 2 if stem == IMAGENET else 1
            self.conv1 = nn.Sequential(nn.Conv2d(3, stem_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(stem_ch), nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = stem_ch
        for idx, (oup, repeats) in enumerate(zip(plan[1:], STAGE_REPEATS), start=2):
            units = [ShuffleUnit(inp if i == 0 else oup, oup, groups, 2 if i == 0 else 1, first_group=(idx == 2 and i == 0))
                     for i in range(repeats)]
            setattr(self, f"stage{idx}", nn.Sequential(*units))
            inp = oup
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(inp, num_classes)
        init_weights(self)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.pool(x))
