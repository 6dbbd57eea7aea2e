"""Raw 8-bit RGB image -> model input, in the steps a browser or phone can repeat.

Evaluation: resize so the image covers ``input_size * resize_ratio`` (aspect kept), centre
crop to ``input_size``, then ``pixel / pixel_scale``, ``(x - mean) / std`` per channel in
``channel_order``: exactly the ``preprocessing`` dict stored with every model. Training adds
the spec's augmentation. Random draws use torch's global RNG, which DataLoader seeds per worker
from the loader's generator, so a run with a given seed and epoch replays exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def normalize(images_nhwc_uint8: np.ndarray, preprocessing: dict) -> np.ndarray:
    """uint8 N x H x W x 3 RGB -> float32 N x 3 x H x W following the preprocessing metadata."""
    x = np.asarray(images_nhwc_uint8, dtype=np.float32) / np.float32(preprocessing.get("pixel_scale", 255.0))
    if str(preprocessing.get("channel_order", "RGB")).upper() == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(preprocessing.get("mean", [0.0, 0.0, 0.0]), dtype=np.float32)
    std = np.asarray(preprocessing.get("std", [1.0, 1.0, 1.0]), dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[0] == h and img.shape[1] == w:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR), dtype=np.uint8)


def _randint(high: int) -> int:
    """Uniform in [0, high]."""
    return int(torch.randint(0, high + 1, (1,)).item()) if high > 0 else 0


@dataclass(frozen=True)
class Augment:
    resize_ratio: float = 1.0  # evaluation resizes to input*ratio before the centre crop (256/224, 64/56)
    pad: int = 0  # zero padding before a random crop (CIFAR: 4)
    flip: bool = False
    random_resized_crop: bool = False  # ImageNet-style scale (0.08, 1), aspect (3/4, 4/3)


class ImageTransform:
    def __init__(self, input_size: tuple[int, int], preprocessing: dict, augment: Augment, train: bool):
        self.size = (int(input_size[0]), int(input_size[1]))
        self.preprocessing = preprocessing
        self.augment = augment
        self.train = train

    def _cover(self, img: np.ndarray) -> np.ndarray:
        th, tw = (round(s * self.augment.resize_ratio) for s in self.size)
        h, w = img.shape[:2]
        scale = max(th / h, tw / w)
        return _resize(img, max(th, round(h * scale)), max(tw, round(w * scale)))

    def geometry(self, img: np.ndarray) -> np.ndarray:
        """uint8 H x W x 3 -> uint8 input_size x 3 (random only when training)."""
        th, tw = self.size
        a = self.augment
        if self.train and a.random_resized_crop:
            img = self._random_resized_crop(img)
        else:
            img = self._cover(img)
            if self.train and a.pad:
                img = np.pad(img, ((a.pad, a.pad), (a.pad, a.pad), (0, 0)))
            h, w = img.shape[:2]
            if self.train:
                top, left = _randint(h - th), _randint(w - tw)
            else:
                top, left = (h - th) // 2, (w - tw) // 2
            img = img[top:top + th, left:left + tw]
        if self.train and a.flip and _randint(1):
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def _random_resized_crop(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        area = h * w
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(0.08, 1.0))
            log_r = float(torch.empty(1).uniform_(math.log(3 / 4), math.log(4 / 3)))
            cw = round(math.sqrt(target * math.exp(log_r)))
            ch = round(math.sqrt(target / math.exp(log_r)))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = _randint(h - ch), _randint(w - cw)
                return _resize(img[top:top + ch, left:left + cw], *self.size)
        side = min(h, w)  # fallback: centre square
        top, left = (h - side) // 2, (w - side) // 2
        return _resize(img[top:top + side, left:left + side], *self.size)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(normalize(self.geometry(img)[None], self.preprocessing)[0])
