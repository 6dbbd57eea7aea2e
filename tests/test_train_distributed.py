"""Data-parallel training under torchrun (2 CPU processes, gloo) on digits (issue 19).

One uninterrupted deterministic 2-process run is shared: it is checked for its files, for the
accuracy it reports against `edge eval` of its best.pt, for loading in `edge export`, and as the
reference a SIGKILLed-then-resumed 2-process run must end identical to.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from conftest import EDGE

pytestmark = pytest.mark.slow
TINY = "v1_g3_0.25x"
RUN_FILES = {"best.pt", "last.pt", "log.jsonl", "summary.json", "config.json", "curves.png"}


def _argv(out, *extra):
    # 192 images, global batch 32 = 2 x 16: 6 steps per epoch on each rank; 1 thread per rank
    return [EDGE, "train", "--nproc", "2", "--model", TINY, "--data", "digits", "--subset", "192", "--epochs", "2",
            "--batch-size", "32", "--threads", "1", "--deterministic", "--seed", "3", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "ref"
    r = subprocess.run(_argv(out), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def _plain(history):
    return [{k: v for k, v in rec.items() if k not in ("seconds", "elapsed")} for rec in history]


def test_two_process_run_writes_one_set_of_files_and_reports_whole_split_accuracy(ref, cli, tmp_path):
    out, r = ref
    assert "distributed: 2 processes (gloo), global batch 32 = 2 x 16 per process" in r.stderr
    assert {p.name for p in out.iterdir()} == RUN_FILES  # rank 1 wrote nothing, no temporary file left
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["test_n"] == 360 and summary["epochs"] == 2
    assert f"test top-1 {summary['test_acc']:.2%} (n=360)" in r.stdout
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in log] == [1, 2]
    best = out / "best.pt"
    for split, reported in (("test", summary["test_acc"]), ("val", summary["best_val_acc"])):
        ev = cli("eval", "--checkpoint", best, "--data", "digits", "--split", split, "--json")
        assert ev.returncode == 0, ev.stderr
        j = json.loads(ev.stdout)
        assert j["n"] == (360 if split == "test" else 359)  # every image exactly once, no sampler padding
        assert j["top1"] == pytest.approx(reported, abs=1e-12), split
    exp = cli("export", "--checkpoint", best, "--format", "onnx", "--out", tmp_path / "exp")
    assert exp.returncode == 0, exp.stderr
    assert list((tmp_path / "exp").glob("*.onnx"))


def _rank_pid(parent: int, rank: int) -> int | None:
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in env:
            return int(d.name)
    return None


def test_sigkill_of_one_rank_then_resume_matches_uninterrupted(ref, tmp_path):
    ref_out, _ = ref
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_argv(cut), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    seen = bytearray()
    epoch1_saved = threading.Event()

    def watch():  # rank 0 prints "epoch 1: ..." once epoch 1 is saved; epoch 2 starts right after
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)
            if b"epoch 1: loss" in seen:
                epoch1_saved.set()

    threading.Thread(target=watch, daemon=True).start()
    assert epoch1_saved.wait(300), seen.decode(errors="replace")[-3000:]
    pid = _rank_pid(proc.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    proc.wait(120)
    text = seen.decode(errors="replace")
    assert proc.returncode == 1, text[-3000:]
    errors = [ln for ln in text.replace("\r", "\n").splitlines() if ln.startswith("error:")]
    assert errors == [errors[0]] and "rank 1 was killed by SIGKILL" in errors[0] and "Traceback" not in text
    assert torch.load(cut / "last.pt", weights_only=True)["epoch"] == 0  # epoch 1 saved, epoch 2 not
    assert not list(cut.glob(".*.tmp"))

    # a distributed checkpoint resumes in one process too (a copy; the result differs: other sharding)
    shutil.copytree(cut, tmp_path / "single")
    from shufflenet_edge.train import train

    s = train(TINY, "digits", subset=192, epochs=2, batch_size=32, deterministic=True, seed=3, threads=1,
              out=tmp_path / "single", resume=True, quiet=True)
    assert s["best_epoch"] >= 1 and "world_size" not in s

    res = subprocess.run(_argv(cut, "--resume"), capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming at epoch 2" in res.stderr
    a = torch.load(ref_out / "last.pt", weights_only=True)
    b = torch.load(cut / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert _plain(a["history"]) == _plain(b["history"])
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (ref_out, cut))
    assert (sa["test_acc"], sa["best_val_acc"], sa["best_epoch"]) == (sb["test_acc"], sb["best_val_acc"], sb["best_epoch"])
