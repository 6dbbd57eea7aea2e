"""Hostile or broken input to training and data loading: one `error:` line, the right exit code,
no traceback, no NaN checkpoint and nothing half-written (issue 18, training/data items).

The CLI runs in-process through Click's runner (the real `edge` command object and its error
handling) so the many cases stay fast; the SIGKILL/resume case runs the real console script.
"""
import os
import pickle
import re
import signal
import struct
import subprocess
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import EDGE
from shufflenet_edge.cli import main

TINY = "v1_g3_0.25x"


def edge(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stderr, r.stdout


def assert_one_line(code, err, expected_code, *needles):
    """Exactly one `error:` line and no traceback (progress lines of a started run may precede it)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", err).replace("\r", "\n")
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower() or "Traceback" in ln]
    assert code == expected_code, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def no_files_left(folder):
    """Nothing but a (complete) config.json: no checkpoint, no log, no temporary file."""
    if not folder.exists():
        return True
    return {p.name for p in folder.iterdir()} <= {"config.json"}


def _npy(tmp_path, x, y, name="d"):
    xp, yp = tmp_path / f"{name}_x.npy", tmp_path / f"{name}_y.npy"
    np.save(xp, x)
    np.save(yp, y)
    return f"npy:{xp},{yp}"


def _good(n=16, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 32, 32)).astype(np.float32), np.arange(n) % classes


def _train(spec, out, *extra):
    return edge("train", "--model", TINY, "--data", spec, "--epochs", "1", "--batch-size", "8", "--threads", "1",
                "--out", out, *extra)


# --- data ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_npy_data_is_refused(tmp_path, value):
    x, y = _good()
    x[3, 1, 2, 2] = value
    code, err, _ = _train(_npy(tmp_path, x, y), tmp_path / "run")
    assert_one_line(code, err, 2, "NaN/inf", "sample 3")
    assert no_files_left(tmp_path / "run")


def test_huge_npy_label_is_refused_quickly(tmp_path):
    x, y = _good()
    y[0] = 10**9
    t0 = time.perf_counter()
    code, err, _ = _train(_npy(tmp_path, x, y), tmp_path / "run")
    assert_one_line(code, err, 2, "1000000000", "0..K-1")
    assert time.perf_counter() - t0 < 20  # no 10^9-class label list (that took 36 s, then MemoryError)
    assert no_files_left(tmp_path / "run")


def test_empty_npy_arrays_say_what_is_wrong(tmp_path):
    spec = _npy(tmp_path, np.zeros((0, 3, 32, 32), np.float32), np.zeros(0, np.int64))
    code, err, _ = _train(spec, tmp_path / "run")
    assert_one_line(code, err, 2, "empty")
    assert "num-classes" not in err
    code, err, _ = edge("eval", "--checkpoint", _tiny_checkpoint(tmp_path), "--data", spec)
    assert_one_line(code, err, 2, "empty")


def test_npy_training_says_val_and_test_are_the_training_arrays(tmp_path):
    code, err, out = _train(_npy(tmp_path, *_good()), tmp_path / "run")
    assert code == 0, err
    assert "val and test accuracy are measured on the training arrays" in err + out


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height (a decompression bomb needs no more to be refused)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) +
                     chunk(b"IEND", b""))


def _folder(tmp_path):
    from test_data import _folder_dir

    return _folder_dir(tmp_path)


@pytest.mark.parametrize("side", [10_000, 40_000])  # PIL warns at 89 Mpx and refuses at 179 Mpx: both refused
def test_decompression_bomb_png_in_imagefolder(tmp_path, side):
    root = _folder(tmp_path)
    _png_header_only(root / "train" / "rose" / "bomb.png", side, side)
    code, err, _ = edge("train", "--model", TINY, "--data", f"imagefolder:{root}", "--input-size", "32", "--epochs", "1",
                        "--batch-size", "9", "--threads", "1", "--out", tmp_path / "run")
    assert_one_line(code, err, 2, "bomb.png", "too large")
    assert no_files_left(tmp_path / "run")


def test_empty_class_folder_is_not_a_class(tmp_path):
    from shufflenet_edge.data import load_split, parse_spec

    root = _folder(tmp_path)
    (root / "train" / "empty").mkdir()
    split = load_split(parse_spec(f"imagefolder:{root}"), "train")
    assert split.classes == ["daisy", "rose", "tulip"]
    assert load_split(parse_spec(f"imagefolder:{root}"), "val").classes == ["daisy", "rose", "tulip"]
    (root / "val" / "empty").mkdir()
    code, err, _ = edge("eval", "--checkpoint", _tiny_checkpoint(tmp_path), "--data", f"imagefolder:{root}", "--split", "val")
    assert_one_line(code, err, 2, "val/empty", "has no images")


def test_cifar_meta_naming_two_classes(tmp_path):
    from test_data import _cifar_dir

    root = _cifar_dir(tmp_path)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"cat", b"dog"]}, f, protocol=2)
    code, err, _ = _train(f"cifar10:{root}", tmp_path / "run")
    assert_one_line(code, err, 2, "batches.meta", "names 2 classes")
    assert no_files_left(tmp_path / "run")


def test_binary_tinyimagenet_annotations(tmp_path):
    from test_data import _tiny_dir

    root = _tiny_dir(tmp_path)
    (root / "val" / "val_annotations.txt").write_bytes(bytes(range(256)) * 8)
    code, err, _ = _train(f"tinyimagenet:{root}", tmp_path / "run")
    assert_one_line(code, err, 2, "val_annotations.txt", "not a text file")
    assert no_files_left(tmp_path / "run")


# --- hyper-parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--lr", "nan"), ("--lr", "inf"), ("--momentum", "nan"), ("--momentum", "-1"),
                                        ("--weight-decay", "nan"), ("--weight-decay", "-0.1"), ("--seed", "-1"),
                                        ("--label-smoothing", "nan")])
def test_bad_hyper_parameters_are_refused(tmp_path, flag, value):
    code, err, _ = edge("train", "--model", TINY, "--data", "digits", flag, value, "--out", tmp_path / "run")
    assert_one_line(code, err, 2, flag)
    assert not (tmp_path / "run").exists()


def test_non_finite_loss_stops_with_no_checkpoint(tmp_path):
    """Finite inputs that overflow float32 in the first conv (3.3e38): the first loss is NaN; nothing is saved."""
    x, y = _good()
    x[:] = 3.3e38
    code, err, _ = _train(_npy(tmp_path, x, y), tmp_path / "run")
    assert_one_line(code, err, 1, "loss became", "epoch 1, step 1", "no checkpoint was written")
    assert no_files_left(tmp_path / "run")


@pytest.mark.slow
def test_non_finite_loss_mid_run_keeps_last_checkpoint(tmp_path):
    """A run whose data starts to overflow after epoch 1 stops at its first NaN loss, exit 1, and
    keeps epoch 1's last.pt and best.pt byte for byte."""
    x, y = _good(n=64, classes=4)
    spec = _npy(tmp_path, x, y)
    out = tmp_path / "run"
    argv = [EDGE, "train", "--model", TINY, "--data", spec, "--epochs", "3", "--batch-size", "8", "--threads", "1",
            "--out", str(out)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    _kill_after_line(proc, b"epoch 1: loss")
    before = {name: (out / name).read_bytes() for name in ("last.pt", "best.pt")}
    np.save(tmp_path / "d_x.npy", np.full_like(x, 3.3e38))  # same spec, now overflowing data
    r = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=300)
    assert_one_line(r.returncode, r.stderr, 1, "epoch 2, step 1", "from epoch 1 is kept")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list(out.glob(".*.tmp"))


def _kill_after_line(proc, marker: bytes, timeout: float = 240):
    seen = bytearray()
    hit = threading.Event()

    def watch():
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)
            if marker in seen:
                hit.set()

    threading.Thread(target=watch, daemon=True).start()
    assert hit.wait(timeout), seen.decode(errors="replace")[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


# --- checkpoint metadata -------------------------------------------------------------------------
def _tiny_checkpoint(tmp_path, **override):
    from shufflenet_edge.checkpoint import save_checkpoint
    from shufflenet_edge.data import DIGITS_PREPROCESSING
    from shufflenet_edge.models import create_model

    net = create_model(TINY, num_classes=10, input_size=(32, 32), preprocessing=dict(DIGITS_PREPROCESSING))
    path = tmp_path / "ck.pt"
    save_checkpoint(path, net.edge_meta, net.state_dict())
    if override:
        obj = torch.load(path, weights_only=True)
        obj.update(override)
        path = tmp_path / "bad.pt"
        torch.save(obj, path)
    return path


@pytest.mark.parametrize("field,value", [("input_size", "abc"), ("model", 123), ("num_classes", "ten"),
                                         ("preprocessing", "rgb"), ("preprocessing", {"std": [0, 0, 0]}),
                                         ("labels", ["a"])])
def test_bad_checkpoint_metadata_is_one_line(tmp_path, field, value):
    ck = _tiny_checkpoint(tmp_path, **{field: value})
    code, err, _ = edge("eval", "--checkpoint", ck, "--data", "digits")
    assert_one_line(code, err, 2, "bad.pt", f"'{field}'")
    code, err, _ = edge("export", "--checkpoint", ck, "--format", "onnx", "--out", tmp_path / "exp")
    assert_one_line(code, err, 2, "bad.pt", f"'{field}'")
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())
