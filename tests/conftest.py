import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EDGE = str(Path(sys.executable).with_name("edge"))


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (conversion, emulation, browser)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("EDGE_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def run_tmp(tmp_path_factory) -> Path:
    """The temporary folder of this whole run: under pytest-xdist (the README's `-n 2 --dist loadfile`)
    each worker's own sits inside it, so what is kept here serves both workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build) -> Path:
    """run_tmp()/name, filled by ``build(folder)`` in the first process of the run that asks; an
    xdist worker asking meanwhile waits for it (a training or a conversion is done once per run,
    whichever worker's test file needs it first). A build that failed is started again."""
    import fcntl
    import shutil

    root = run_tmp(tmp_path_factory)
    folder = root / name
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").write_text("")
    return folder


@pytest.fixture
def edge_cli():
    """Run the installed `edge` console script in a subprocess, as a user would."""
    import subprocess

    def run(*args, cwd=None, timeout=600, env=None):
        return subprocess.run([EDGE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              env={**os.environ, **(env or {})})

    return run


class CliResult:
    def __init__(self, code, stdout, stderr):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture
def cli():
    """The `edge` command in this process (Click's runner, stderr apart): the same code path as
    the console script without a fresh torch import per call (the suite runs on a busy machine).
    Tests that need a real process (signals, exit codes of the script) use ``edge_cli``."""
    from click.testing import CliRunner

    from shufflenet_edge.cli import main

    def run(*args, cwd=None):
        old = os.getcwd()
        os.chdir(cwd or old)
        try:
            r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        finally:
            os.chdir(old)
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return run


# Models trained on digits (32 px) that the export, int8 and quantize-report tests share: each is
# trained once per session and exported once per (model, format, precision).
TRAINED_MODELS = ("v1_g3", "v2_1.0x")
# Some exports use the other options, so they are covered without extra conversions.
# ONNX int8 with --int8-policy all: the tests check int8 arithmetic, and on a CPU where int8 is slower
# than fp32 the default policy (fast) writes an all-float file (export/onnx_latency_guard.py)
EXPORT_VARIANT = {("v2_1.0x", "onnx", "fp32"): {"layout": "nhwc", "batch": "dynamic"},
                  ("v2_1.0x", "tflite", "int8"): {"layout": "nhwc"},
                  ("v2_1.0x", "onnx", "int8"): {"int8_policy": "all"},
                  ("v1_g3", "onnx", "int8"): {"int8_policy": "all"}}


@pytest.fixture(scope="session")
def trained_ckpts(tmp_path_factory):
    """v1_g3 and v2_1.0x trained one epoch on digits (32 px): real weights and activation statistics.
    Shared by the export, engine and int8 tests (one training per run, see build_once). Note: with the recipe's
    one warm-up epoch this leaves both near chance accuracy (measured: 10% on the test split; v2_1.0x
    answers class 1 for all 360 test images). Tried for a better fixture at the same cost: 1 epoch
    without warm-up, 9.7% / 11.4%; 2 epochs without warm-up, v2_1.0x 13.9% (6 classes answered) at
    twice the time: not worth it, so tests that need image-dependent answers refit the fc head
    (test_int8.py's outlier case)."""
    from shufflenet_edge.train import train

    def build(root):
        for name in TRAINED_MODELS:  # one thread: see digits_model
            train(name, "digits", epochs=1, out=root / name, quiet=True, threads=1)

    root = build_once(tmp_path_factory, "trained_ckpts", build)
    return {name: root / name / "best.pt" for name in TRAINED_MODELS}


DIGITS_MODEL = "v2_0.5x"


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """(best.pt, run summary) of DIGITS_MODEL trained on digits long enough to converge: 10 epochs,
    deterministic, one thread. Shared by eval and the demo's browser tests, which need a model that
    classifies (a half-trained net, 65% after 4 epochs, made eval's int8 check flaky: its int8 accuracy
    swung by 20 points between runs; an untrained net's near-tied logits make top-1 a coin toss)."""
    import json

    from shufflenet_edge.train import train

    # one thread: two spinning intra-op threads on a busy 2-core machine ran 10x slower (165 s vs 15 s an epoch)
    run = build_once(tmp_path_factory, "digits_model", lambda root: train(
        DIGITS_MODEL, "digits", epochs=10, out=root / "run", quiet=True, deterministic=True, threads=1)) / "run"
    return run / "best.pt", json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="session")
def exported(trained_ckpts, tmp_path_factory):
    """Export on first request, share afterwards: (model, format, precision) -> ExportResult."""
    from shufflenet_edge.export import export

    cache = {}

    def get(name, fmt, precision):
        key = (name, fmt, precision)
        if key not in cache:
            def convert(out):
                cache[key] = export(checkpoint=trained_ckpts[name], format=fmt, precision=precision, calib="digits",
                                    calib_size=32, out=out, quiet=True, **EXPORT_VARIANT.get(key, {}))

            folder = build_once(tmp_path_factory, f"export_{name}_{fmt}_{precision}", convert)
            if key not in cache:  # converted by the other xdist worker: export() finds the file up to date
                convert(folder)
        return cache[key]

    return get
