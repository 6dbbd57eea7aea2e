"""Training: recipes, checkpoints that load with weights_only, exact resume after SIGKILL."""
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import torch

from conftest import EDGE
from shufflenet_edge.errors import UsageError
from shufflenet_edge.train import RECIPES, lr_factor, rng_state, set_rng_state, train

TINY = "v2_0.5x"


def test_lr_schedules():
    assert lr_factor("cosine", 0, 100) == pytest.approx(1.0)
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("linear", 75, 100) == pytest.approx(0.25)
    assert [lr_factor("step", s, 100) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor("cosine", 0, 100, warmup=10) == pytest.approx(0.1)
    assert lr_factor("cosine", 10, 100, warmup=10) == pytest.approx(1.0)
    assert RECIPES["cifar10"]["lr"] == 0.01 and RECIPES["cifar10"]["batch_size"] == 128 and RECIPES["cifar10"]["epochs"] == 60
    assert RECIPES["imagefolder"]["no_bn_decay"] and RECIPES["imagefolder"]["label_smoothing"] == 0.1


def test_rng_state_roundtrip_is_weights_only(tmp_path):
    torch.manual_seed(1)
    np.random.seed(1)
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    a = (torch.rand(3), np.random.rand(3), __import__("random").random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    b = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_train_writes_loadable_checkpoints_and_log(tmp_path):
    out = tmp_path / "run"
    s = train(TINY, "digits", epochs=2, subset=96, batch_size=32, out=out, quiet=True)
    assert s["epochs"] == 2 and 0 <= s["test_acc"] <= 1 and s["test_n"] == 360
    last = torch.load(out / "last.pt", weights_only=True)
    for key in ("state_dict", "optimizer", "scheduler", "epoch", "rng", "config", "labels", "preprocessing"):
        assert key in last, key
    assert last["epoch"] == 1 and last["labels"] == [str(i) for i in range(10)] and last["input_size"] == [32, 32]
    assert last["config"]["lr"] == RECIPES["digits"]["lr"] and last["config"]["subset"] == 96
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["best_epoch"] >= 1 and "optimizer" not in best
    lines = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and all("val_acc" in r and "train_loss" in r for r in lines)
    from shufflenet_edge.models import create_model

    m = create_model(checkpoint=out / "best.pt")
    assert m.edge_meta["num_classes"] == 10 and m.edge_meta["preprocessing"]["mean"][0] == pytest.approx(0.305)
    # an existing run is never overwritten by accident; --resume must match the config
    with pytest.raises(UsageError, match="already holds a run"):
        train(TINY, "digits", epochs=2, subset=96, out=out, quiet=True)
    with pytest.raises(UsageError, match="lr"):
        train(TINY, "digits", epochs=2, subset=96, batch_size=32, lr=0.5, out=out, resume=True, quiet=True)
    before = (out / "last.pt").read_bytes()
    s2 = train(TINY, "digits", epochs=2, subset=96, batch_size=32, out=out, resume=True, quiet=True)
    assert s2["best_epoch"] == s["best_epoch"] and (out / "last.pt").read_bytes() == before  # finished: nothing to do


def test_train_on_npy_and_bad_args(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 3, 32, 32)).astype(np.float32)
    y = np.arange(24) % 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    before = torch.get_num_threads()
    s = train("v1_g3_0.25x", f"npy:{tmp_path}/x.npy,{tmp_path}/y.npy", epochs=1, batch_size=8, out=tmp_path / "r",
              threads=1, quiet=True)
    assert torch.load(tmp_path / "r" / "best.pt", weights_only=True)["num_classes"] == 3 and s["test_n"] == 24
    assert torch.get_num_threads() == before  # --threads is scoped to the run
    with pytest.raises(UsageError, match="threads"):
        train(TINY, "digits", threads=0, out=tmp_path / "r5", quiet=True)
    with pytest.raises(UsageError, match="no labels"):
        train(TINY, f"npy:{tmp_path}/x.npy", epochs=1, out=tmp_path / "r2", quiet=True)
    with pytest.raises(UsageError, match="schedule"):
        train(TINY, "digits", schedule="exp", out=tmp_path / "r3", quiet=True)
    with pytest.raises(UsageError, match="unknown model"):
        train("v9", "digits", out=tmp_path / "r4", quiet=True)
    assert not (tmp_path / "r3").exists() and not (tmp_path / "r4").exists()


def test_cli_train_errors_are_one_line(cli, tmp_path):
    r = cli("train", "--model", TINY, "--data", f"cifar10:{tmp_path}/none", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "none" in r.stderr and "Traceback" not in r.stderr


def _train_argv(out, extra=()):
    return [EDGE, "train", "--model", TINY, "--data", "digits", "--subset", "384", "--epochs", "3", "--batch-size", "32",
            "--deterministic", "--seed", "7", "--out", str(out), *extra]


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_matches_uninterrupted(tmp_path):
    ref = subprocess.run(_train_argv(tmp_path / "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr

    proc = subprocess.Popen(_train_argv(tmp_path / "cut"), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    seen = bytearray()
    started = threading.Event()

    def watch():  # the stable per-epoch line: epoch 1 is checkpointed and epoch 2 begins
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)
            if b"epoch 1: loss" in seen:
                started.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    assert started.wait(240), seen.decode(errors="replace")[-2000:]
    time.sleep(0.3)  # a few of the epoch's 12 steps in
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert cut["epoch"] == 0  # killed inside the second epoch, with only the first one saved
    assert not list((tmp_path / "cut").glob(".*.tmp"))  # no half-written file left behind

    res = subprocess.run(_train_argv(tmp_path / "cut", ["--resume"]), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resuming at epoch 2" in res.stderr
    a = torch.load(tmp_path / "ref" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    ha = [{k: v for k, v in r.items() if k not in ("seconds", "elapsed")} for r in a["history"]]
    hb = [{k: v for k, v in r.items() if k not in ("seconds", "elapsed")} for r in b["history"]]
    assert ha == hb
    log = [json.loads(ln) for ln in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_train_on_fixture_formats(tmp_path):
    """CIFAR pickle batches and the Tiny ImageNet layout train end to end (labels carried into best.pt)."""
    from test_data import _cifar_dir, _tiny_dir

    s = train(TINY, f"cifar10:{_cifar_dir(tmp_path)}", epochs=1, batch_size=8, out=tmp_path / "c", quiet=True)
    ck = torch.load(tmp_path / "c" / "best.pt", weights_only=True)
    assert ck["labels"][3] == "cat" and ck["input_size"] == [32, 32] and s["test_n"] == 6
    assert ck["config"]["momentum"] == 0.9 and ck["config"]["weight_decay"] == 5e-4
    s = train(TINY, f"tinyimagenet:{_tiny_dir(tmp_path)}", epochs=1, batch_size=3, workers=1, out=tmp_path / "t", quiet=True)
    ck = torch.load(tmp_path / "t" / "best.pt", weights_only=True)
    assert ck["input_size"] == [56, 56] and ck["labels"] == ["goldfish", "European fire salamander"]
    assert ck["config"]["label_smoothing"] == 0.1 and s["test_n"] == 4


def test_corrupt_image_in_worker_is_one_line(tmp_path):
    from test_data import _tiny_dir

    root = _tiny_dir(tmp_path)
    (root / "train" / "n01629819" / "images" / "n01629819_1.JPEG").write_bytes(b"truncated")
    with pytest.raises(UsageError) as info:
        train(TINY, f"tinyimagenet:{root}", epochs=1, batch_size=2, workers=1, out=tmp_path / "t", quiet=True)
    assert "n01629819_1.JPEG" in str(info.value) and "\n" not in str(info.value)
