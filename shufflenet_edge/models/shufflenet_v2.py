"""ShuffleNet v2 (Ma et al., ECCV 2018), Table 5.

Module names, order and shapes follow torchvision's ``shufflenet_v2_x*`` exactly so that a
torchvision state_dict loads with strict=True; the parameterless shuffle/concat are modules so
the complexity counter sees them (they add no state_dict keys).
"""
from __future__ import annotations

from torch import nn

from .common import CIFAR, IMAGENET, ChannelShuffle, Concat, GlobalAvgPool

STAGE_CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
                  1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}
STAGE_REPEATS = (4, 8, 4)
SCALES = tuple(STAGE_CHANNELS)


def _dw(inp, oup, stride):
    return nn.Conv2d(inp, oup, 3, stride, 1, bias=False, groups=inp)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                _dw(inp, inp, stride), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            _dw(half, half, stride), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.concat = Concat()
        self.shuffle = ChannelShuffle(2)

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = self.concat(x1, self.branch2(x2))
        else:
            out = self.concat(self.branch1(x), self.branch2(x))
        return self.shuffle(out)


class ShuffleNetV2(nn.Module):
    def __init__(self, scale: float = 1.0, num_classes: int = 1000, stem: str = IMAGENET):
        super().__init__()
        channels = STAGE_CHANNELS[scale]
        self.scale = scale
        stem_ch = channels[0]
        if stem == CIFAR:
            self.conv1 = nn.Sequential(nn.Conv2d(3, stem_ch, 1, 1, 0, bias=False), nn.BatchNorm2d(stem_ch), nn.ReLU(inplace=True))
            self.maxpool = nn.Identity()
        else:
            stride = 2 if stem == IMAGENET else 1
            self.conv1 = nn.Sequential(nn.Conv2d(3, stem_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(stem_ch), nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = stem_ch
        for idx, (oup, repeats) in enumerate(zip(channels[1:4], STAGE_REPEATS), start=2):
            units = [InvertedResidual(inp, oup, 2)] + [InvertedResidual(oup, oup, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{idx}", nn.Sequential(*units))
            inp = oup
        self.conv5 = nn.Sequential(nn.Conv2d(inp, channels[4], 1, 1, 0, bias=False), nn.BatchNorm2d(channels[4]), nn.ReLU(inplace=True))
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(channels[4], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.pool(self.conv5(x)))
