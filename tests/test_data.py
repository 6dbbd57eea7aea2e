"""Data specs on small fixtures written in the real on-disk formats."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from shufflenet_edge.data import (DIGITS_PREPROCESSING, calibration_array, data_preprocessing, default_input_size,
                                  load_split, make_dataset, normalize, parse_spec)
from shufflenet_edge.errors import UsageError


def _cifar_dir(tmp_path, per_batch=6):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    names = ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]
    for name in names:
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(root / name, "wb") as f:  # as distributed: python pickles with bytes keys
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                            "horse", "ship", "truck"]], b"num_vis": 3072}, f, protocol=2)
    return root


def _tiny_dir(tmp_path, wnids=("n01443537", "n01629819"), per_class=3):
    root = tmp_path / "tiny-imagenet-200"
    rng = np.random.default_rng(1)
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n")
    ann = []
    for w in wnids:
        folder = root / "train" / w / "images"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{w}_{i}.JPEG")
        (root / "train" / w / f"{w}_boxes.txt").write_text("")
    for i in range(4):
        name = f"val_{i}.JPEG"
        mode = "L" if i == 0 else "RGB"  # Tiny ImageNet has grayscale images too
        shape = (64, 64) if mode == "L" else (64, 64, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / "val" / "images" / name)
        ann.append(f"{name}\t{wnids[i % 2]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    return root


def _folder_dir(tmp_path):
    root = tmp_path / "flowers"
    rng = np.random.default_rng(2)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("daisy", "rose", "tulip"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(40, 90, 2)
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_parse_spec():
    assert parse_spec("digits").kind == "digits"
    s = parse_spec("npy:a.npy,b.npy")
    assert (s.kind, s.path.name, s.labels_path.name) == ("npy", "a.npy", "b.npy")
    assert parse_spec("cifar10:/data/c").path.name == "c"
    for bad in ("mnist", "npy:", "digits:x", "npy:a,b,c", "cifar10:"):
        with pytest.raises(UsageError):
            parse_spec(bad)


def test_digits_splits_fixed_and_stratified():
    sizes = {s: len(load_split(parse_spec("digits"), s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["train"] > sizes["val"] > 300
    a, b = load_split(parse_spec("digits"), "test"), load_split(parse_spec("digits"), "test")
    assert np.array_equal(a.labels, b.labels)
    counts = np.bincount(a.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # stratified: ~36 per class
    train = load_split(parse_spec("digits"), "train")
    img = train.raw(0)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.max() > 200
    assert np.array_equal(img[..., 0], img[..., 2])


def test_digits_calibration_follows_preprocessing_metadata():
    x = calibration_array("digits", (32, 32), 16, seed=3)
    assert x.shape == (16, 3, 32, 32) and x.dtype == np.float32
    # reproducible from the raw 8-bit images with the metadata alone, as a browser would
    train = load_split(parse_spec("digits"), "train")
    idx = np.sort(np.random.default_rng(3).choice(len(train), 16, replace=False))
    raw = np.stack([train.raw(i) for i in idx])
    p = data_preprocessing("digits")
    assert p == DIGITS_PREPROCESSING
    manual = ((raw / 255.0 - np.array(p["mean"])) / np.array(p["std"])).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x, manual, atol=1e-5)
    assert not np.array_equal(x, calibration_array("digits", (32, 32), 16, seed=4))
    assert calibration_array("digits", 64, 2).shape == (2, 3, 64, 64)


def test_digits_training_augmentation_is_seeded():
    ds = make_dataset("digits", "train", train=True)
    torch.manual_seed(0)
    a = ds[5][0]
    torch.manual_seed(0)
    b = ds[5][0]
    assert torch.equal(a, b) and a.shape == (3, 32, 32)


def test_npy_spec(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 3, 32, 32)).astype(np.float32)
    y = np.arange(10) % 4
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    assert data_preprocessing(f"npy:{tmp_path}/x.npy") is None
    cal = calibration_array(f"npy:{tmp_path}/x.npy", (32, 32), 4)
    assert cal.shape == (4, 3, 32, 32) and all(any(np.array_equal(c, r) for r in x) for c in cal)
    split = load_split(parse_spec(f"npy:{tmp_path}/x.npy,{tmp_path}/y.npy"), "test")
    assert split.classes == ["0", "1", "2", "3"] and list(split.labels) == list(y)
    assert default_input_size(f"npy:{tmp_path}/x.npy") == (32, 32)
    with pytest.raises(UsageError, match="wants"):
        calibration_array(f"npy:{tmp_path}/x.npy", (64, 64), 4)
    np.save(tmp_path / "bad.npy", np.zeros((10, 32), np.float32))
    with pytest.raises(UsageError, match="bad.npy"):
        calibration_array(f"npy:{tmp_path}/bad.npy", (32, 32), 4)
    np.save(tmp_path / "short.npy", np.zeros(3, np.int64))
    with pytest.raises(UsageError, match="short.npy"):
        load_split(parse_spec(f"npy:{tmp_path}/x.npy,{tmp_path}/short.npy"), "train")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(UsageError, match="junk.npy"):
        calibration_array(f"npy:{tmp_path}/junk.npy", (32, 32), 4)
    with pytest.raises(UsageError, match="missing.npy"):
        calibration_array(f"npy:{tmp_path}/missing.npy", (32, 32), 4)


def test_cifar10_pickle_batches(tmp_path):
    root = _cifar_dir(tmp_path)
    train = load_split(parse_spec(f"cifar10:{root}"), "train")
    assert len(train) == 30 and train.classes[3] == "cat" and train.raw(0).shape == (32, 32, 3)
    with open(root / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(train.raw(0)[..., 0].ravel(), first[b"data"][0][:1024])  # R plane first
    assert len(load_split(parse_spec(f"cifar10:{root}"), "test")) == 6
    cal = calibration_array(f"cifar10:{root}", (32, 32), 8)
    assert cal.shape == (8, 3, 32, 32)
    ds = make_dataset(f"cifar10:{root}", "train", train=True)
    assert ds[0][0].shape == (3, 32, 32)
    assert data_preprocessing(f"cifar10:{root}")["mean"][0] == pytest.approx(0.4914)


def test_cifar10_errors_name_the_file(tmp_path):
    root = _cifar_dir(tmp_path)
    (root / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(UsageError, match="data_batch_3"):
        load_split(parse_spec(f"cifar10:{root}"), "train")
    (root / "data_batch_3").unlink()
    with pytest.raises(UsageError, match="data_batch_3"):
        load_split(parse_spec(f"cifar10:{root}"), "train")
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"labels": [1, 2], b"data": np.zeros((2, 100), np.uint8)}, f)
    with pytest.raises(UsageError, match="test_batch.*malformed"):
        load_split(parse_spec(f"cifar10:{root}"), "test")
    with open(root / "test_batch", "wb") as f:  # a pickle that would run code is refused, not executed
        pickle.dump({b"labels": [1], b"data": __import__("os").getcwd}, f)
    with pytest.raises(UsageError, match="forbidden"):
        load_split(parse_spec(f"cifar10:{root}"), "test")
    with pytest.raises(UsageError, match="nowhere"):
        load_split(parse_spec(f"cifar10:{tmp_path}/nowhere"), "train")


def test_tinyimagenet_layout(tmp_path):
    root = _tiny_dir(tmp_path)
    train = load_split(parse_spec(f"tinyimagenet:{root}"), "train")
    assert len(train) == 6 and train.classes == ["goldfish", "European fire salamander"]
    val = load_split(parse_spec(f"tinyimagenet:{root}"), "val")
    assert list(val.labels) == [0, 1, 0, 1]
    assert val.raw(0).shape == (64, 64, 3)  # grayscale file comes back as RGB
    assert default_input_size(f"tinyimagenet:{root}") == (56, 56)
    ds = make_dataset(f"tinyimagenet:{root}", "train", train=True)
    assert ds[0][0].shape == (3, 56, 56)
    cal = calibration_array(f"tinyimagenet:{root}", (56, 56), 100)
    assert cal.shape == (6, 3, 56, 56)
    # eval is a centre crop of the 64 px image
    ev = make_dataset(f"tinyimagenet:{root}", "val")
    raw = val.raw(1)[4:60, 4:60][None]
    np.testing.assert_allclose(ev[1][0].numpy(), normalize(raw, data_preprocessing(f"tinyimagenet:{root}"))[0], atol=1e-6)


def test_tinyimagenet_errors(tmp_path):
    root = _tiny_dir(tmp_path)
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_9.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(UsageError, match="val_annotations.txt line 5"):
        load_split(parse_spec(f"tinyimagenet:{root}"), "val")
    ann.unlink()
    with pytest.raises(UsageError, match="val_annotations.txt"):
        load_split(parse_spec(f"tinyimagenet:{root}"), "test")
    (root / "train" / "n01443537" / "images" / "n01443537_0.JPEG").write_bytes(b"not a jpeg")
    train = load_split(parse_spec(f"tinyimagenet:{root}"), "train")
    with pytest.raises(UsageError, match="n01443537_0.JPEG"):
        train.raw(0)


def test_imagefolder(tmp_path):
    root = _folder_dir(tmp_path)
    train = load_split(parse_spec(f"imagefolder:{root}"), "train")
    assert train.classes == ["daisy", "rose", "tulip"] and len(train) == 9
    test = load_split(parse_spec(f"imagefolder:{root}"), "test")
    assert len(test) == 6 and test.notes
    assert default_input_size(f"imagefolder:{root}") == (224, 224)
    cal = calibration_array(f"imagefolder:{root}", (224, 224), 5, seed=1)
    assert cal.shape == (5, 3, 224, 224) and np.isfinite(cal).all()
    ds = make_dataset(f"imagefolder:{root}", "train", input_size=(96, 128), train=True)
    assert ds[0][0].shape == (3, 96, 128)
    (root / "val" / "lily").mkdir()
    with pytest.raises(UsageError, match="lily"):
        load_split(parse_spec(f"imagefolder:{root}"), "val")
    with pytest.raises(UsageError, match="train"):
        load_split(parse_spec(f"imagefolder:{tmp_path}"), "train")
