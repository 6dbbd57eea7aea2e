"""Faults (issue 18) and no silent loss (issue 16): a read-only folder or a full disk (real
read-only and 1 MB tmpfs mounts: the tests run as root, where chmod stops nothing) is one
`error:` line naming the path before long work, with nothing half-written and nothing existing
changed; SIGTERM cleans up like Ctrl-C and exits 143; a later run removes what a killed run left,
never a live run's temporaries; an export never silently replaces an earlier one."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from artifact_files import GOOD_SIDE, image_model, one_error_line, snapshot
from shufflenet_edge.io_utils import is_temp_name, make_temp, remove_stale_temps, temp_owner


def _mount(*args) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def mounts_allowed(tmp_path_factory):
    probe = tmp_path_factory.mktemp("mount_probe")
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)):
        pytest.skip("mount is not permitted here (needs root in a sandbox that allows tmpfs mounts)")
    subprocess.run(["umount", str(probe)], check=True)
    return True


@contextlib.contextmanager
def tmpfs(path: Path, size="1m", readonly=False, fill=False, files: dict | None = None):
    """A real filesystem at ``path``: 1 MB, optionally pre-filled to the brim or remounted read-only."""
    path.mkdir(parents=True, exist_ok=True)
    assert _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        for name, data in (files or {}).items():
            (path / name).write_bytes(data)
        if fill:
            with open(path / "filler", "wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        if readonly:
            assert _mount("-o", "remount,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


EXISTING = {"keep.json": b"[]\n", "old.onnx": b"earlier export"}


@pytest.mark.parametrize("kind", ["readonly", "full"])
def test_export_to_readonly_or_full_folder(kind, cli, mounts_allowed, tmp_path):
    with tmpfs(tmp_path / "m", readonly=kind == "readonly", fill=kind == "full", files=EXISTING) as m:
        before = snapshot(m)
        r = cli("export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10", "--format", "onnx",
                "--out", m)
        one_error_line(r, 1, str(m), "read-only" if kind == "readonly" else "no space")
        assert snapshot(m) == before and not [n for n in os.listdir(m) if is_temp_name(n)]


@pytest.mark.parametrize("kind", ["readonly", "full"])
def test_train_out_on_readonly_or_full_folder(kind, cli, mounts_allowed, tmp_path):
    with tmpfs(tmp_path / "m", readonly=kind == "readonly", fill=kind == "full", files=EXISTING) as m:
        before = snapshot(m)
        r = cli("train", "--model", "v2_0.5x", "--epochs", "1", "--subset", "64", "--out", m / "run")
        one_error_line(r, 1, str(m / "run"), "read-only" if kind == "readonly" else "no space")
        assert snapshot(m) == before


@pytest.mark.parametrize("kind", ["readonly", "full"])
def test_eval_plot_on_readonly_or_full_folder(kind, cli, mounts_allowed, tmp_path):
    path = image_model(tmp_path / "tiny.onnx")
    (tmp_path / "tiny.onnx.json").write_text(json.dumps(GOOD_SIDE))
    with tmpfs(tmp_path / "m", readonly=kind == "readonly", fill=kind == "full", files=EXISTING) as m:
        before = snapshot(m)
        r = cli("eval", "--artifact", path, "--plot", m / "cm.png")
        one_error_line(r, 1, "cm.png", "read-only" if kind == "readonly" else "no space")
        assert snapshot(m) == before


@pytest.mark.parametrize("kind", ["readonly", "full"])
def test_bench_out_checked_before_timing(kind, cli, mounts_allowed, tmp_path):
    """bench --out used to lose its records: the write failed after the run. Now it fails first."""
    path = image_model(tmp_path / "tiny.onnx")
    (tmp_path / "tiny.onnx.json").write_text(json.dumps(GOOD_SIDE))
    with tmpfs(tmp_path / "m", size="64k", readonly=kind == "readonly", fill=kind == "full", files=EXISTING) as m:
        before = snapshot(m)
        r = cli("bench", "--artifact", path, "--runs", "2", "--warmup", "0", "--rounds", "1", "--out", m / "keep.json")
        one_error_line(r, 1, "keep.json", "read-only" if kind == "readonly" else "no space")
        assert "latency" not in r.stdout.lower() and snapshot(m) == before


def test_bench_out_corrupt_file_refused_before_timing(cli, tmp_path):
    path = image_model(tmp_path / "tiny.onnx")
    (tmp_path / "tiny.onnx.json").write_text(json.dumps(GOOD_SIDE))
    out = tmp_path / "records.json"
    out.write_text('{"not": "a list"}')
    r = cli("bench", "--artifact", path, "--runs", "2", "--warmup", "0", "--rounds", "1", "--out", out)
    one_error_line(r, 2, "records.json", "not overwriting")
    assert out.read_text() == '{"not": "a list"}' and r.stdout == ""


def test_write_failure_mid_write_leaves_no_partial_file(mounts_allowed, tmp_path):
    """The disk fills while writing: one WriteFailure naming the file, no temporary left behind,
    the earlier file intact."""
    from shufflenet_edge.io_utils import WriteFailure, write_text

    with tmpfs(tmp_path / "m", size="64k", files={"r.json": b"old"}) as m:
        with pytest.raises(WriteFailure, match="r.json.*no space") as info:
            write_text(m / "r.json", "x" * 200_000)
        assert "\n" not in str(info.value)
        assert os.listdir(m) == ["r.json"] and (m / "r.json").read_bytes() == b"old"


def test_checkpoint_save_on_full_disk_is_one_line(mounts_allowed, tmp_path):
    """Training's checkpoint writes: a full disk is a WriteFailure naming the file, not torch's
    RuntimeError from inside its zip writer, and the earlier last.pt stays."""
    import torch

    from shufflenet_edge.checkpoint import save_checkpoint
    from shufflenet_edge.io_utils import WriteFailure

    meta = {"name": "v2_0.5x", "input_size": [32, 32], "num_classes": 10}
    with tmpfs(tmp_path / "m", size="256k", files={"last.pt": b"earlier"}) as m:
        with pytest.raises(WriteFailure, match="last.pt.*no space"):
            save_checkpoint(m / "last.pt", meta, {"w": torch.zeros(200_000)})
        assert os.listdir(m) == ["last.pt"] and (m / "last.pt").read_bytes() == b"earlier"


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_temporaries_removed_live_ones_kept(tmp_path):
    from shufflenet_edge.io_utils import write_json

    dead = _dead_pid()
    stale_dir = tmp_path / f".a.onnx.{dead}.tmp"
    stale_dir.mkdir()
    (stale_dir / "a.onnx").write_bytes(b"partial")
    stale_file = tmp_path / f".last.pt.{dead}-2.tmp"
    stale_file.write_bytes(b"partial")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_dir = tmp_path / f".b.onnx.{live.pid}.tmp"
        live_dir.mkdir()
        other = tmp_path / ".hidden.tmp"  # not one of ours: never touched
        other.write_text("x")
        assert temp_owner(stale_file) == dead and is_temp_name(live_dir.name) and not is_temp_name(other.name)
        write_json(tmp_path / "new.json", {"a": 1})  # any later write in the folder cleans up
        assert not stale_dir.exists() and not stale_file.exists()
        assert live_dir.is_dir() and other.exists() and (tmp_path / "new.json").exists()
        assert remove_stale_temps(tmp_path) == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(tmp_path) == [live_dir]
    mine = make_temp(tmp_path / "c.onnx", directory=True)
    assert temp_owner(mine) == os.getpid() and remove_stale_temps(tmp_path) == []


# ---------------------------------------------------------------- slow: real conversions


def _wait_for_temp(folder: Path, timeout=600) -> Path:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = [p for p in (folder.iterdir() if folder.is_dir() else []) if is_temp_name(p.name)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no temporary appeared in {folder}")


@pytest.mark.slow
def test_sigterm_during_export_cleans_up_and_exits_143(tmp_path):
    from conftest import EDGE

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.onnx").write_bytes(b"earlier")
    p = subprocess.Popen([EDGE, "export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10",
                          "--format", "tflite", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    tmp = _wait_for_temp(out)
    assert temp_owner(tmp) == p.pid
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "error: terminated"
    assert sorted(os.listdir(out)) == ["keep.onnx"] and (out / "keep.onnx").read_bytes() == b"earlier"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_sigterm_swallowed_in_a_finalizer_still_unwinds():
    """A handler that fires inside __del__ (or a gc callback: jax's import chain runs one) has its
    exception dropped by Python; the signal is repeated until the block unwinds (CI once saw an
    export finish with exit 0 after SIGTERM)."""
    from shufflenet_edge.io_utils import Terminated, sigterm_unwinds

    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, and Python drops its Terminated

    t0 = time.monotonic()
    with pytest.raises(Terminated), sigterm_unwinds():
        Finalizer()
        for _ in range(100):
            time.sleep(0.02)
    assert time.monotonic() - t0 < 1.5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_that_a_library_turns_into_its_own_error_still_ends_as_terminated():
    """A library that catches everything may re-raise the Terminated as its own error (a TFLite export
    under load once ended "conversion failed: Encountered an error while initializing the extension",
    exit 1): the block reports the signal, the library's error chained under it. An error with no
    signal behind it passes through as it was."""
    from shufflenet_edge.io_utils import Terminated, sigterm_unwinds

    def catching_library():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.02)
        except BaseException as exc:
            raise RuntimeError("Encountered an error while initializing the extension") from exc

    with pytest.raises(Terminated) as info, sigterm_unwinds():
        catching_library()
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ValueError), sigterm_unwinds():
        raise ValueError("not a signal")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_repeats_neither_print_tracebacks_nor_cut_cleanup_short():
    """The repeats must not show up to a user: a Terminated dropped in a __del__ prints no
    "Exception ignored ... Traceback" (CI saw one from tqdm's __del__ above a torchrun rank's
    one-line error), and a repeat that lands in a finally the first Terminated is already
    unwinding through does not cut that cleanup short."""
    code = textwrap.dedent("""
        import os, signal, time
        from shufflenet_edge.io_utils import Terminated, sigterm_unwinds
        class Finalizer:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
        try:
            with sigterm_unwinds():
                Finalizer()
                try:
                    for _ in range(100):
                        time.sleep(0.02)
                finally:
                    time.sleep(0.8)  # several repeat periods
                    print("cleanup finished", flush=True)
        except Terminated:
            print("unwound", flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["cleanup", "finished", "unwound"], r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    """A 'trained' checkpoint (weights that are not the random init, saved in the project's
    format) and its ONNX export: the file a user must not lose."""
    import torch

    from shufflenet_edge.checkpoint import save_checkpoint, sha256_file
    from shufflenet_edge.export import export
    from shufflenet_edge.models import create_model

    d = tmp_path_factory.mktemp("trained_export")
    torch.manual_seed(1)
    net = create_model("v2_0.5x", num_classes=10, input_size=32)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ckpt = save_checkpoint(d / "best.pt", net.edge_meta, net.state_dict())
    r = export(checkpoint=ckpt, format="onnx", out=d / "exports", quiet=True)
    return ckpt, r.path, sha256_file(ckpt)


@pytest.mark.slow
def test_untrained_export_never_replaces_trained_file(trained_export, cli, edge_cli, tmp_path):
    from shufflenet_edge.checkpoint import sha256_file

    ckpt, path, ckpt_sha = trained_export
    side = json.loads(Path(str(path) + ".json").read_text())
    assert side["checkpoint_sha256"] == ckpt_sha and side["trained"] is True
    before = {p.name: sha256_file(p) for p in path.parent.iterdir()}
    # the command: same model and settings, no checkpoint, same folder
    r = cli("export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10", "--format", "onnx",
            "--out", path.parent)
    line = one_error_line(r, 2, path.name, ckpt_sha[:12], "--overwrite", "--out", "--name")
    assert "untrained" in line
    assert {p.name: sha256_file(p) for p in path.parent.iterdir()} == before  # trained file intact
    # the same export again is up to date (nothing rewritten); --name writes a distinct file
    r = cli("export", "--checkpoint", ckpt, "--format", "onnx", "--out", path.parent)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stderr
    assert {p.name: sha256_file(p) for p in path.parent.iterdir()} == before
    # a real process for the conversion: stdout must hold the JSON alone (converters write to file descriptor 1)
    r = edge_cli("export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10", "--format", "onnx",
                 "--out", path.parent, "--name", "random_v2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"].endswith("random_v2.onnx")
    assert sha256_file(path) == before[path.name]


@pytest.mark.slow
def test_exported_files_carry_their_metadata_without_a_sidecar(trained_export, tmp_path):
    """The sidecar rule's second source: an ONNX file's metadata_props (a TFLite file's metadata
    entry is covered by the same reader) stand in for a lost sidecar."""
    import shutil

    from shufflenet_edge.evaluate import evaluate
    from shufflenet_edge.export.metadata import read_metadata

    _, path, sha = trained_export
    lone = tmp_path / path.name
    shutil.copyfile(path, lone)
    meta = read_metadata(lone)
    assert meta["checkpoint_sha256"] == sha and meta["input_size"] == [32, 32] and meta["preprocessing"]
    r = evaluate(artifact=lone, data="digits")
    assert r["n"] == 360 and np.isfinite(r["top1"])
