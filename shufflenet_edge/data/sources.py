"""Read each data source from its on-disk format into splits of raw 8-bit RGB images.

A split holds either decoded images (digits, CIFAR-10: small enough to keep in memory), image
files decoded on access (Tiny ImageNet, image folders) or, for ``npy:``, arrays that are already
preprocessed. Nothing is downloaded: a missing or malformed file is a one-line UsageError that
names it.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..model_meta import MAX_CLASSES
from .spec import DataSpec

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class Split:
    """One split: labels plus exactly one of images / files / arrays."""

    name: str
    labels: np.ndarray | None
    classes: list[str]
    images: np.ndarray | None = None  # uint8 N x H x W x 3 (RGB)
    files: list[Path] | None = None
    arrays: np.ndarray | None = None  # npy: float32 N x C x H x W, already preprocessed
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        for v in (self.images, self.files, self.arrays):
            if v is not None:
                return len(v)
        return 0

    def raw(self, i: int) -> np.ndarray:
        """The i-th image as uint8 H x W x 3 RGB, as a camera or browser canvas would give it."""
        if self.images is not None:
            return self.images[i]
        if self.files is not None:
            return read_image(self.files[i])
        raise TypeError("npy splits hold preprocessed arrays, not raw images")

    def subset(self, idx) -> "Split":
        idx = np.asarray(idx, dtype=np.int64)
        pick = lambda v: None if v is None else (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx])  # noqa: E731
        return Split(self.name, pick(self.labels), self.classes, pick(self.images), pick(self.files), pick(self.arrays),
                     list(self.notes))


def read_image(path: Path) -> np.ndarray:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        # PIL only warns between 89 and 179 megapixels: a decompression bomb either way
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise UsageError(f"image not found: {path}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(f"image {path} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS:,} pixels: "
                         "a decompression bomb?); resize it or remove it from the data") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UsageError(f"cannot read image {path}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") from None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not a text file (not UTF-8): expected tab-separated lines") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise UsageError(f"{what} not found: {path}")
    return path


# --- digits ------------------------------------------------------------------------------------
DIGITS_SIZE = 32
DIGITS_SPLIT = (0.6, 0.2, 0.2)  # stratified, fixed seed: best checkpoint on val, accuracy on test
DIGITS_SEED = 0


@lru_cache(maxsize=1)
def _digits_all() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as 32x32 RGB uint8: gray 0..16 scaled to 0..255, bilinear upsampled, rounded."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] * (255.0 / 16.0)
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    gray = x.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1)), d.target.astype(np.int64)


def _digits_split_indices() -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, y = _digits_all()
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, train_size=DIGITS_SPLIT[0], stratify=y, random_state=DIGITS_SEED)
    val_frac = DIGITS_SPLIT[1] / (DIGITS_SPLIT[1] + DIGITS_SPLIT[2])
    val, test = train_test_split(rest, train_size=val_frac, stratify=y[rest], random_state=DIGITS_SEED)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _digits(split: str) -> Split:
    images, labels = _digits_all()
    idx = _digits_split_indices()[split]
    return Split(split, labels[idx], [str(i) for i in range(10)], images=images[idx])


# --- npy ---------------------------------------------------------------------------------------
def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"cannot read {what} {path}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") from None


def _npy(spec: DataSpec, split: str) -> Split:
    x = _load_npy(spec.path, "npy data")
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise UsageError(f"npy data {spec.path} must be float N x C x H x W, got {x.dtype} {list(x.shape)}")
    if not x.size:
        raise UsageError(f"npy data {spec.path} is empty (shape {list(x.shape)}): it needs at least one N x C x H x W sample")
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise UsageError(f"npy data {spec.path} holds {int((~finite).sum())} NaN/inf values (first in sample {bad[0]}): "
                         "clean or drop those samples")
    y = None
    if spec.labels_path is not None:
        y = _load_npy(spec.labels_path, "npy labels")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise UsageError(f"npy labels {spec.labels_path} must be {len(x)} non-negative integers, got {y.dtype} {list(y.shape)}")
        if int(y.max()) >= MAX_CLASSES:
            raise UsageError(f"npy labels {spec.labels_path} hold label {int(y.max())}: labels must be class indices "
                             f"0..K-1 with K at most {MAX_CLASSES:,}")
        y = y.astype(np.int64)
    n_classes = int(y.max()) + 1 if y is not None and len(y) else 0
    return Split(split, y, [str(i) for i in range(n_classes)], arrays=x)


# --- CIFAR-10 python batches -------------------------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow only what numpy arrays need, never arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"CIFAR-10 batch not found: {path}")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # truncated file, not a pickle, forbidden global
        raise UsageError(f"cannot read CIFAR-10 batch {path}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise UsageError(f"cannot read CIFAR-10 batch {path}: expected a dict, got {type(obj).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _read_pickle(path)
    data, labels = d.get("data"), d.get("labels")
    try:
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
        ok = data.ndim == 2 and data.shape[1] == 3072 and labels.shape == (len(data),) and labels.min() >= 0 and labels.max() < 10
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"CIFAR-10 batch {path} is malformed: expected 'data' N x 3072 uint8 and N 'labels' in 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _cifar10(spec: DataSpec, split: str) -> Split:
    root = _need_dir(spec.path, "CIFAR-10 directory")
    classes = CIFAR10_CLASSES
    meta = root / "batches.meta"
    if meta.is_file():
        names = _read_pickle(meta).get("label_names")
        if names:
            if not isinstance(names, (list, tuple)) or len(names) != len(CIFAR10_CLASSES):
                count = len(names) if isinstance(names, (list, tuple)) else type(names).__name__
                raise UsageError(f"CIFAR-10 {meta} names {count} classes, CIFAR-10 has {len(CIFAR10_CLASSES)}: "
                                 "fix or remove batches.meta (the standard names are used without it)")
            classes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
    files = [root / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [root / "test_batch"]
    parts = [_cifar_batch(f) for f in files]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    labels = np.concatenate([p[1] for p in parts])
    notes = [] if split == "train" else ["CIFAR-10 has no validation split: test_batch is used for val and test, as in the seed tutorial"]
    return Split(split, labels, classes, images=images, notes=notes)


# --- Tiny ImageNet -----------------------------------------------------------------------------
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _tiny_classes(root: Path) -> tuple[list[str], list[str]]:
    wnids_file = root / "wnids.txt"
    if wnids_file.is_file():
        wnids = [ln.strip() for ln in _read_text(wnids_file, "Tiny ImageNet wnids").splitlines() if ln.strip()]
    else:
        wnids = sorted(p.name for p in _need_dir(root / "train", "Tiny ImageNet train directory").iterdir() if p.is_dir())
    if not wnids:
        raise UsageError(f"Tiny ImageNet {root}: no classes in wnids.txt or train/")
    names = dict.fromkeys(wnids)
    words = root / "words.txt"
    if words.is_file():
        for ln in words.read_text(errors="replace").splitlines():
            wnid, _, text = ln.partition("\t")
            if wnid in names and text:
                names[wnid] = text.split(",")[0].strip()
    return wnids, [names[w] or w for w in wnids]


def _tinyimagenet(spec: DataSpec, split: str) -> Split:
    root = _need_dir(spec.path, "Tiny ImageNet directory")
    wnids, classes = _tiny_classes(root)
    index = {w: i for i, w in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for w in wnids:
            folder = _need_dir(root / "train" / w / "images", "Tiny ImageNet class folder")
            found = _images_in(folder)
            if not found:
                raise UsageError(f"Tiny ImageNet class folder {folder} has no images")
            files += found
            labels += [index[w]] * len(found)
        notes = []
    else:
        ann = root / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise UsageError(f"Tiny ImageNet annotations not found: {ann}")
        for n, ln in enumerate(_read_text(ann, "Tiny ImageNet annotations").splitlines(), start=1):
            if not ln.strip():
                continue
            cols = ln.split("\t")
            if len(cols) < 2 or cols[1] not in index:
                raise UsageError(f"Tiny ImageNet annotations {ann} line {n} is malformed: {ln[:80]!r}")
            files.append(root / "val" / "images" / cols[0])
            labels.append(index[cols[1]])
        if not files:
            raise UsageError(f"Tiny ImageNet annotations {ann} list no images")
        missing = next((f for f in files if not f.is_file()), None)
        if missing is not None:
            raise UsageError(f"image not found: {missing} (listed in {ann})")
        notes = ["Tiny ImageNet's test images are unlabelled: val is used for val and test"]
    return Split(split, np.asarray(labels, dtype=np.int64), classes, files=files, notes=notes)


# --- image folders -----------------------------------------------------------------------------
def _imagefolder(spec: DataSpec, split: str) -> Split:
    root = _need_dir(spec.path, "image folder")
    train_dir = _need_dir(root / "train", "image folder train directory")
    # a class folder without images is not a class: it would be an output no image can train
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and _images_in(p))
    if not classes:
        raise UsageError(f"image folder {train_dir} has no class subdirectories with images")
    sub = {"train": "train", "val": "val", "test": "test" if (root / "test").is_dir() else "val"}[split]
    folder = _need_dir(root / sub, f"image folder {sub} directory")
    index = {c: i for i, c in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if d.name not in index and folder == train_dir:
            continue  # a training folder without images: not a class
        if d.name not in index:
            why = f" ({train_dir / d.name} has no images)" if (train_dir / d.name).is_dir() else ""
            raise UsageError(f"class folder {d} is not among the training classes in {train_dir}{why}")
        found = _images_in(d)
        files += found
        labels += [index[d.name]] * len(found)
    if not files:
        raise UsageError(f"image folder {folder} has no images (expected {folder}/<class>/*.jpg)")
    notes = [f"{root / 'test'} not found: val is used for test"] if split == "test" and sub == "val" else []
    return Split(split, np.asarray(labels, dtype=np.int64), classes, files=files, notes=notes)


def load_split(spec: DataSpec, split: str = "train") -> Split:
    if split not in SPLITS:
        raise UsageError(f"unknown split '{split}': expected one of {', '.join(SPLITS)}")
    if spec.kind == "digits":
        return _digits(split)
    if spec.kind == "npy":
        return _npy(spec, split)
    return {"cifar10": _cifar10, "tinyimagenet": _tinyimagenet, "imagefolder": _imagefolder}[spec.kind](spec, split)
