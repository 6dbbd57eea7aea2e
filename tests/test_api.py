"""The package-level API works as the README shows, whatever was imported before it.

Importing a submodule sets the package attribute of the same name to the module (that is how
``se.complexity`` once became a module and recursed): so these tests import every submodule
the README names *first*, then call every ``se.*`` name the README uses.
"""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
# `se.NAME` and `shufflenet_edge.NAME(` are package-level names; dotted paths name submodules
SE_NAMES = sorted(set(re.findall(r"\bse\.([A-Za-z_]\w*)", README))
                  | set(re.findall(r"\bshufflenet_edge\.([A-Za-z_]\w*)\(", README)))
DOTTED = sorted(set(re.findall(r"\bshufflenet_edge(?:\.[A-Za-z_]\w*)+", README)))
FUNCTIONS = {"list_models", "create_model", "get_spec", "complexity", "measure", "export", "bench", "train", "evaluate",
             "predict"}
CLASSES = {"EdgeError", "UsageError", "RuntimeFailure", "ExportResult", "Complexity"}


def _import_readme_submodules() -> list[str]:
    """Import the longest module prefix of every dotted name the README mentions."""
    done = []
    for dotted in DOTTED:
        parts = dotted.split(".")
        for n in range(len(parts), 1, -1):
            name = ".".join(parts[:n])
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            done.append(name)
            break
    return done


def test_readme_names_every_api_function():
    assert {"complexity", "measure", "export", "bench", "train", "evaluate"} <= set(SE_NAMES)
    assert set(SE_NAMES) <= FUNCTIONS | CLASSES, f"README uses se.{set(SE_NAMES) - FUNCTIONS - CLASSES}: test it here"


def test_api_names_stay_functions_after_submodule_imports():
    imported = _import_readme_submodules()
    for name in ("shufflenet_edge.train", "shufflenet_edge.evaluate", "shufflenet_edge.complexity",
                 "shufflenet_edge.bench", "shufflenet_edge.export"):
        importlib.import_module(name)  # also the ones the README names only as `from X import`
    assert "shufflenet_edge.train" in imported and "shufflenet_edge.runtime" in imported
    import shufflenet_edge as se

    for name in SE_NAMES:
        obj = getattr(se, name)
        if name in FUNCTIONS:
            assert isinstance(obj, types.FunctionType), f"se.{name} is {obj!r}, not a function"
        else:
            assert isinstance(obj, type), f"se.{name} is {obj!r}, not a class"
    assert issubclass(se.UsageError, se.EdgeError) and se.UsageError.exit_code == 2
    assert issubclass(se.RuntimeFailure, se.EdgeError) and se.RuntimeFailure.exit_code == 1


def test_complexity_from_a_fresh_interpreter_in_any_import_order():
    """The issue's one-liner, and the same after importing the same-named submodules first."""
    for pre in ("", "import shufflenet_edge.complexity, shufflenet_edge.train, shufflenet_edge.bench; "):
        code = f"{pre}import shufflenet_edge as se; print(se.complexity('v2_1.0x').macs)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "144907992"


def test_readme_calls_work(tmp_path, monkeypatch):
    """Every se.* call of the README with tiny arguments (export, which converts, is the slow test below)."""
    _import_readme_submodules()
    import torch
    import torchvision

    import shufflenet_edge as se

    assert "v2_1.0x" in se.list_models() and se.get_spec("v2").name == "v2_1.0x"
    model = se.create_model("v1_g3", num_classes=10, input_size=32)
    assert model.edge_meta["input_size"] == [32, 32] and not model.training
    tv = tmp_path / "shufflenet_v2_x1.pth"
    torch.save(torchvision.models.shufflenet_v2_x1_0().state_dict(), tv)
    assert se.create_model("v2", checkpoint=tv).edge_meta["num_classes"] == 1000
    c = se.complexity("v2_1.0x")
    assert c.macs == 144907992 and c.params > 0 and c.memory_access > 0 and c.layers
    assert isinstance(c, se.Complexity) and se.measure(se.create_model("v2_1.0x")).macs == c.macs

    recs = se.bench(model="v2_0.5x", format="torch", input_size=32, num_classes=10, runs=2, warmup=0, rounds=1)
    assert recs[0]["model"] == "v2_0.5x" and recs[0]["latency_ms"]["p50"] > 0

    s = se.train("v2_0.5x", "digits", epochs=1, subset=64, batch_size=32, out=tmp_path / "run", quiet=True)
    assert Path(s["best"]).is_file()
    m = se.evaluate(checkpoint=s["best"], data="digits", split="val")
    assert 0 <= m["top1"] <= 1 and m["n"] > 0 and "confusion" in m

    with pytest.raises(se.UsageError, match="unknown model"):
        se.export(model="no_such_model", format="onnx", out=tmp_path / "x")

    # se.predict needs a device profile: the committed one if this checkout has it, else a one-line pointer
    # to `edge predict fit` (tests/test_predict.py covers predictions from a given profile)
    from shufflenet_edge.predict.profile import find

    monkeypatch.setenv("EDGE_CACHE_DIR", str(tmp_path / "cache"))
    if find() is not None:
        assert se.predict("v1_g8_1.5x", 224)["predicted"] > 0
    else:
        with pytest.raises(se.UsageError, match="edge predict fit"):
            se.predict("v1_g8_1.5x", 224)


@pytest.mark.slow
def test_readme_export_then_bench(tmp_path):
    _import_readme_submodules()
    import shufflenet_edge as se

    r = se.export(model="v2_0.5x", format="onnx", input_size=32, num_classes=10, out=tmp_path, quiet=True)
    assert isinstance(r, se.ExportResult) and r.path.is_file() and r.parity["max_abs_diff"] < 1e-3
    recs = se.bench(artifact=r.path, threads=(1,), runs=3, warmup=1, rounds=1)
    assert recs[0]["format"] == "onnx" and recs[0]["latency_ms"]["p50"] > 0
