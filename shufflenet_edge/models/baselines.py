"""Baselines the speedup study compares against: MobileNet v1, AlexNet, MobileNet v2.

AlexNet is the one-tower variant of Krizhevsky's "One weird trick" paper (64/192/384/256/256
channels, no grouped convs), the one torchvision ships; its module names match torchvision's so
its weights load. The v1 paper's Table 8 counts the original two-tower net at 720 MFLOPs; the
one-tower net is 714 M MACs.
"""
from __future__ import annotations

from torch import nn

from .common import CIFAR, IMAGENET, TINY, GlobalAvgPool, conv_bn, init_weights

# (output channels, stride) of MobileNet v1's 13 depthwise-separable blocks.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
MOBILENET_V1_WIDTHS = (0.25, 0.5, 0.75, 1.0)


class MobileNetV1(nn.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 1000, stem: str = IMAGENET):
        super().__init__()
        self.width = width
        c = lambda ch: int(ch * width)  # noqa: E731 - the paper's width multiplier, truncated
        # Small inputs drop the stem stride (and for 32 px one block stride) to end on a 4x4 map.
        stem_stride = 2 if stem == IMAGENET else 1
        layers: list[nn.Module] = [nn.Sequential(*conv_bn(3, c(32), 3, stem_stride))]
        inp = c(32)
        for i, (oup, stride) in enumerate(MOBILENET_V1_BLOCKS):
            if stem == CIFAR and i == 1:
                stride = 1
            layers.append(nn.Sequential(*conv_bn(inp, inp, 3, stride, groups=inp), *conv_bn(inp, c(oup), 1, 1)))
            inp = c(oup)
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(inp, num_classes)
        init_weights(self)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)))


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, stem: str = IMAGENET, dropout: float = 0.5):
        super().__init__()
        # Small inputs replace the 11x11/4 stem so three max-pools still leave a spatial map.
        first = {IMAGENET: nn.Conv2d(3, 64, 11, 4, 2), TINY: nn.Conv2d(3, 64, 5, 2, 2), CIFAR: nn.Conv2d(3, 64, 3, 1, 1)}[stem]
        self.features = nn.Sequential(
            first, nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def mobilenet_v2(num_classes: int = 1000, stem: str = IMAGENET) -> nn.Module:
    """torchvision's MobileNet v2; small inputs drop the stem stride (and for 32 px block 2's)."""
    from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

    model = tv_mobilenet_v2(weights=None, num_classes=num_classes)
    if stem != IMAGENET:
        model.features[0][0].stride = (1, 1)
    if stem == CIFAR:
        model.features[2].conv[1][0].stride = (1, 1)
    return model
