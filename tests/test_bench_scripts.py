"""Every script under bench/ runs end to end with tiny arguments, through the toolkit only.

The scripts are part of the product (they make the committed results), so each one is run
here as a user would (`python bench/X.py ...`), into a temporary results folder. Those that
convert files are slow tests.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


def _script(name, *args, tmp_path, timeout=900):
    env = {**os.environ, "EDGE_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / name), *map(str, args)], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=timeout)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r


def test_every_script_has_a_smoke_test():
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    missing = [p.name for p in SCRIPTS if f'"{p.name}"' not in tests and f'"{p.stem}"' not in tests]
    assert SCRIPTS and not missing, f"no smoke test runs {missing}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_use_the_toolkit_only(path):
    """No private helpers of the toolkit, no second exporter, no module that does not exist."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shufflenet_edge"):
            for alias in node.names:
                assert not alias.name.startswith("_"), f"{path.name} imports private {node.module}.{alias.name}"
                __import__(node.module, fromlist=[alias.name])  # it exists
                assert hasattr(sys.modules[node.module], alias.name) or \
                    (Path(sys.modules[node.module].__file__).parent / f"{alias.name}.py").is_file(), alias.name
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in ("onnxruntime", "litert_torch", "ai_edge_quantizer") or \
                    path.name in CONVERTS_ITSELF, f"{path.name} converts on its own ({alias.name})"
    text = path.read_text()
    assert "fallback" not in text and "run_bench" not in text
    assert "quantize_static" not in text or path.name in CONVERTS_ITSELF


# peers.py times the paths people glue by hand, and int8_layers.py times the ONNX int8 forms the toolkit
# does not write (QOperator, s8 weights), so both call the converters themselves
CONVERTS_ITSELF = ("peers.py", "int8_layers.py")


def test_host_suite_torch_only(tmp_path):
    _script("host_suite.py", "--models", "v2_0.5x", "--variants", "torch:fp32", "--threads", "1", "--runs", "3",
            "--out", tmp_path, tmp_path=tmp_path)
    (md,) = tmp_path.glob("host_*.md")
    recs = json.loads(md.with_suffix(".json").read_text())
    assert [(r["model"], r["format"], r["threads"]) for r in recs] == [("v2_0.5x", "torch", 1)]
    assert "python" in md.read_text() and "torch" in md.read_text()


@pytest.mark.slow
def test_export_matrix_one_file(tmp_path):
    _script("export_matrix.py", "--models", "v2_0.5x", "--formats", "onnx", "--precisions", "fp32",
            "--input-size", "32", "--out", tmp_path, tmp_path=tmp_path)
    doc = json.loads((tmp_path / "export_matrix.json").read_text())
    (row,) = doc["rows"]
    assert row["model"] == "v2_0.5x" and row["parity"]["max_abs_diff"] < 1e-3 and "error" not in row
    assert doc["environment"]["versions"]["onnxruntime"] and doc["environment"]["cpu"]


@pytest.mark.slow
def test_quant_accuracy_one_file(tmp_path):
    """One file of the main table and one stress row (8 calibration images, per-tensor weights)."""
    _script("quant_accuracy.py", "--models", "v2_0.5x", "--formats", "onnx", "--precisions", "fp32", "--epochs", "1",
            "--subset", "64", "--stress-models", "v2_0.5x", "--stress-formats", "onnx", "--stress-calib-sizes", "8",
            "--stress-granularities", "tensor", "--work", tmp_path / "w", "--results", tmp_path / "r", tmp_path=tmp_path)
    doc = json.loads((tmp_path / "r" / "quant_accuracy.json").read_text())
    torch_row, onnx_row = doc["rows"]
    assert onnx_row["format"] == "onnx" and onnx_row["exporter"] and "fallback" not in json.dumps(doc)
    assert onnx_row["top1"] == pytest.approx(torch_row["top1"], abs=0.01) and "latency" not in onnx_row
    ref, stressed = doc["stress"]["rows"]
    assert ref["format"] == "torch" and doc["complete"]
    assert (stressed["calib_size"], stressed["granularity"], stressed["precision"]) == (8, "tensor", "int8")
    assert stressed["int8_policy"] == "all" and not stressed.get("all_float")  # stress measures int8, every layer
    assert "error" not in stressed and stressed["delta_pts"] == pytest.approx((stressed["top1"] - ref["top1"]) * 100,
                                                                              abs=0.01)
    md = (tmp_path / "r" / "quant_accuracy.md").read_text()
    assert "not measured" in md and "| v2_0.5x | onnx |" in md and "calib 8, per-tensor" in md


@pytest.mark.slow
def test_ncnn_options_small_input(tmp_path):
    r = _script("ncnn_options.py", "--model", "v2_0.5x", "--size", "32", "--runs", "3", tmp_path=tmp_path)
    assert "ms" in r.stdout and len(r.stdout.strip().splitlines()) >= 4


@pytest.mark.slow
def test_int8_layers_small_input(tmp_path):
    _script("int8_layers.py", "--models", "v2_0.5x", "--input-size", "32", "--runs", "3", "--out", tmp_path / "r",
            tmp_path=tmp_path)
    doc = json.loads((tmp_path / "r" / "int8_layers.json").read_text())
    forms = {r["form"] for r in doc["rows"]}
    assert "fp32" in forms and len(forms) >= 4 and doc["machine"]["isa"]
    assert all(r["ratio_to_fp32"] > 0 for r in doc["rows"])


@pytest.mark.slow
def test_tflite_int8_rewrite_small_input(tmp_path):
    """64 px keeps the max-pool stem: the rewrite's before/after files are made and timed (no qemu here)."""
    _script("tflite_int8_rewrite.py", "--models", "v2_0.5x", "--input-size", "64", "--runs", "3", "--out",
            tmp_path / "r", tmp_path=tmp_path)
    doc = json.loads((tmp_path / "r" / "tflite_int8_rewrite.json").read_text())
    (row,) = doc["rows"]
    assert row["model"] == "v2_0.5x" and set(row["p50_ms"]) == {"fp32", "int8 before", "int8 after"}
    assert row["after_over_before"] > 0 and doc["machine"]["isa"] and "arm_instructions" not in row
