"""What `edge train` shows and leaves (issue 16 item 6): help from the recipe table, the recipe in
force first, curves.png, the next commands at the end, and no silent reuse of another run's folder.
Progress is followed by the stable per-epoch line, never by the progress bar's text."""
import json
import re
import shlex

import pytest
from click.testing import CliRunner

from shufflenet_edge.cli import main
from shufflenet_edge.train import RECIPES
from shufflenet_edge.train.recipes import LR_PER_1024

TINY = "v1_g3_0.25x"


def edge(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_help_states_every_recipe_as_the_table_has_it():
    code, out, _ = edge("train", "--help")
    assert code == 0
    for kind, rec in RECIPES.items():
        line = next((ln.strip() for ln in out.splitlines() if ln.strip().startswith(f"{kind}: ")), None)
        assert line is not None, kind
        assert float(re.search(r"SGD lr ([0-9.e-]+)", line).group(1)) == pytest.approx(rec["lr"], rel=1e-5)
        assert int(re.search(r"batch (\d+)", line).group(1)) == rec["batch_size"]
        assert int(re.search(r"(\d+) epochs", line).group(1)) == rec["epochs"]
        assert f"{rec['schedule']} schedule" in line
        assert float(re.search(r"momentum ([0-9.e-]+)", line).group(1)) == rec["momentum"]
        assert float(re.search(r"weight decay ([0-9.e-]+)", line).group(1)) == rec["weight_decay"]
        assert ("lr = 0.5 x batch/1024" in line) == (kind in LR_PER_1024)
    assert "SGD 0.1 cosine" not in out  # the old hand-written summary that disagreed with the table


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trainout") / "run"
    code, stdout, stderr = edge("train", "--model", TINY, "--data", "digits", "--subset", "64", "--epochs", "2",
                                "--batch-size", "32", "--lr", "0.04", "--threads", "1", "--out", out)
    assert code == 0, stderr
    return out, stdout, stderr


def test_first_lines_give_the_recipe_in_force(run):
    _, _, stderr = run
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    assert lines[0].startswith(f"{TINY} on digits (64 train / 359 val, 32x32, ") and lines[0].endswith("starting")
    assert lines[1] == ("recipe (digits): SGD lr 0.04, momentum 0.9, weight decay 0.0005, batch 32, 2 epochs, cosine "
                        "schedule, 1 warm-up epoch, grad-norm clip 2 (set here: --epochs, --batch-size, --lr)")
    # the stable progress lines: one per finished epoch
    assert len([ln for ln in lines if re.match(r"epoch \d+: loss ", ln)]) == 2


def test_curves_and_next_commands(run, edge_cli):
    out, stdout, _ = run
    png = out / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["curves"] == str(png)
    tail = stdout.strip().splitlines()
    assert tail[-3] == "next:"
    ev, ex = (shlex.split(ln.strip()) for ln in tail[-2:])
    assert ev[:2] == ["edge", "eval"] and ex[:2] == ["edge", "export"]
    assert str(out / "best.pt") in ev and str(out / "best.pt") in ex
    r = edge_cli(*ev[1:], "--json")  # the printed command runs as printed
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["top1"] == pytest.approx(json.loads((out / "summary.json").read_text())["test_acc"])


def test_out_folder_with_another_run_needs_resume_or_overwrite(run):
    out, _, _ = run
    before = (out / "best.pt").read_bytes()
    code, _, stderr = edge("train", "--model", TINY, "--data", "digits", "--epochs", "1", "--out", out)
    assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "already holds a run" in stderr and "--resume" in stderr and "--overwrite" in stderr
    code, _, stderr = edge("train", "--model", TINY, "--data", "digits", "--out", out, "--resume", "--overwrite")
    assert code == 2 and "not both" in stderr
    assert (out / "best.pt").read_bytes() == before
    code, _, stderr = edge("train", "--model", TINY, "--data", "digits", "--subset", "32", "--epochs", "1",
                           "--batch-size", "16", "--threads", "1", "--out", out, "--overwrite")
    assert code == 0, stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
    assert [json.loads(ln)["epoch"] for ln in (out / "log.jsonl").read_text().splitlines()] == [1]


def test_amp_and_channels_last_on_cpu_save_plain_checkpoints(tmp_path):
    import torch

    from shufflenet_edge.models import create_model
    from shufflenet_edge.train import train

    s = train(TINY, "digits", subset=32, epochs=1, batch_size=16, threads=1, amp=True, channels_last=True,
              out=tmp_path / "r", quiet=True)
    ck = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    assert ck["config"]["amp"] == "bf16" and ck["config"]["channels_last"]
    assert all(v.is_contiguous() for v in ck["state_dict"].values())  # NCHW as any other checkpoint
    net = create_model(checkpoint=tmp_path / "r" / "best.pt")
    assert 0 <= s["test_acc"] <= 1 and net.edge_meta["input_size"] == [32, 32]
    code, _, err = edge("train", "--model", TINY, "--amp", "--amp-dtype", "fp16", "--out", tmp_path / "f")
    assert code == 2 and err.startswith("error: ") and "fp16 needs CUDA" in err and err.count("\n") == 1
