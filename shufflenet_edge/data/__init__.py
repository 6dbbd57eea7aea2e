"""Data for train, eval and export calibration, named by one spec string.

>>> from shufflenet_edge.data import calibration_array, data_preprocessing
>>> x = calibration_array("digits", (32, 32), 64)        # float32 64 x 3 x 32 x 32, preprocessed
>>> data_preprocessing("digits")["mean"]
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import UsageError
from .sources import SPLITS, Split, load_split, read_image
from .spec import KINDS, DataSpec, parse_spec
from .transforms import Augment, ImageTransform, normalize

# Preprocessing per source, in the models' metadata convention. The digits "raw image" is the
# 0..16 gray value scaled to 0..255, replicated to RGB and upsampled to 32x32 (see sources.py);
# mean/std are those of that data.
DIGITS_PREPROCESSING = {"channel_order": "RGB", "pixel_scale": 255.0, "mean": [0.305, 0.305, 0.305], "std": [0.324, 0.324, 0.324]}
CIFAR10_PREPROCESSING = {"channel_order": "RGB", "pixel_scale": 255.0, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}
IMAGENET_PREPROCESSING = {"channel_order": "RGB", "pixel_scale": 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

_PREPROCESSING = {"digits": DIGITS_PREPROCESSING, "cifar10": CIFAR10_PREPROCESSING,
                  "tinyimagenet": IMAGENET_PREPROCESSING, "imagefolder": IMAGENET_PREPROCESSING}
_INPUT_SIZE = {"digits": (32, 32), "cifar10": (32, 32), "tinyimagenet": (56, 56), "imagefolder": (224, 224)}
AUGMENT = {
    "digits": Augment(pad=2),  # small shifts; a flipped digit is another digit
    "cifar10": Augment(pad=4, flip=True),  # the seed tutorial's pad 4 + random crop 32 + flip
    "tinyimagenet": Augment(resize_ratio=64 / 56, flip=True),  # 64 px, random crop 56 (seed report)
    "imagefolder": Augment(resize_ratio=256 / 224, flip=True, random_resized_crop=True),
}

__all__ = ["KINDS", "SPLITS", "DataSpec", "Split", "parse_spec", "load_split", "read_image", "normalize",
           "ImageTransform", "Augment", "data_preprocessing", "default_input_size", "calibration_array",
           "ImageDataset", "make_dataset", "label_map", "DIGITS_PREPROCESSING", "CIFAR10_PREPROCESSING", "IMAGENET_PREPROCESSING"]


def data_preprocessing(spec) -> dict | None:
    """The preprocessing metadata a spec implies (None for ``npy:``: its arrays are already preprocessed)."""
    s = parse_spec(spec)
    return None if s.kind == "npy" else dict(_PREPROCESSING[s.kind])


def default_input_size(spec, split: Split | None = None) -> tuple[int, int]:
    """The input size the data is made for; for ``npy:`` the arrays' own H x W."""
    s = parse_spec(spec)
    if s.kind == "npy":
        split = split or load_split(s, "train")
        return int(split.arrays.shape[2]), int(split.arrays.shape[3])
    return _INPUT_SIZE[s.kind]


class ImageDataset(torch.utils.data.Dataset):
    """(input tensor, label) pairs for one split; ``npy:`` arrays pass through untouched."""

    def __init__(self, split: Split, transform: ImageTransform | None):
        self.split = split
        self.transform = transform

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        label = int(self.split.labels[i]) if self.split.labels is not None else -1
        if self.split.arrays is not None:
            return torch.from_numpy(self.split.arrays[i]), label
        return self.transform(self.split.raw(i)), label


def _check_npy_size(spec: DataSpec, split: Split, input_size) -> None:
    shape = split.arrays.shape
    if shape[1] != 3 or tuple(shape[2:]) != tuple(input_size):
        raise UsageError(f"npy data {spec.path} is {list(shape[1:])}, the model wants [3, {input_size[0]}, {input_size[1]}]")


def make_dataset(spec, split: str = "train", input_size=None, preprocessing: dict | None = None, train: bool = False,
                 loaded: Split | None = None) -> ImageDataset:
    """A Dataset of preprocessed tensors at ``input_size`` (default: the data's own size)."""
    s = parse_spec(spec)
    data = loaded if loaded is not None else load_split(s, split)
    size = tuple(input_size) if input_size is not None else default_input_size(s, data)
    if s.kind == "npy":
        _check_npy_size(s, data, size)
        return ImageDataset(data, None)
    transform = ImageTransform(size, preprocessing or _PREPROCESSING[s.kind], AUGMENT[s.kind], train)
    return ImageDataset(data, transform)


def calibration_array(spec, input_size, n: int, preprocessing: dict | None = None, seed: int = 0,
                      split: str = "train") -> np.ndarray:
    """``n`` images of ``split`` (fewer if the split is smaller), chosen with ``seed``, preprocessed
    without augmentation: float32 N x 3 x H x W (the training split: int8 calibration)."""
    s = parse_spec(spec)
    if n < 1:
        raise UsageError(f"calibration needs at least 1 sample, got {n}")
    from ..models import parse_input_size

    size = parse_input_size(input_size)
    data = load_split(s, split)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), size=min(n, len(data)), replace=False))
    data = data.subset(idx)
    ds = make_dataset(s, split, size, preprocessing, train=False, loaded=data)
    return np.stack([ds[i][0].numpy() for i in range(len(ds))]).astype(np.float32, copy=False)


def label_map(data_classes: list[str], model_labels: list[str] | None, num_outputs: int, what: str) -> np.ndarray | None:
    """Index map data class -> model output, when both name their classes in a different order
    (eval and the accuracy-aware int8 export score a file on labelled data)."""
    if model_labels and list(model_labels) != list(data_classes):
        if set(data_classes) <= set(model_labels):
            index = {c: i for i, c in enumerate(model_labels)}
            return np.asarray([index[c] for c in data_classes], dtype=np.int64)
        if len(model_labels) == len(data_classes) and not all(c.isdigit() for c in data_classes):
            missing = sorted(set(data_classes) - set(model_labels))[:3]
            raise UsageError(f"{what} does not know the data's classes {missing}")
    if data_classes and len(data_classes) > num_outputs:
        raise UsageError(f"data has {len(data_classes)} classes but {what} has {num_outputs} outputs")
    return None
