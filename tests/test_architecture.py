"""The extension points: the format table and what derives from it, multi-file artifacts, the
engine and target registries, the bench record's schema (every producer validates)."""
import importlib
import json
import os
from pathlib import Path

import pytest

from shufflenet_edge import record
from shufflenet_edge.errors import UsageError
from shufflenet_edge.export.artifact import Artifact, commit, is_verified, unverified_note
from shufflenet_edge.export.formats import FORMATS, SUFFIXES, Format, Recipe


# ------------------------------------------------------------------ the format table


def test_runtime_suffix_map_agrees_with_the_format_table():
    from shufflenet_edge.runtime.engines import ENGINES, suffix_formats

    assert suffix_formats() == SUFFIXES  # runtime/ keeps its own copy (self-contained for boards)
    for fmt in FORMATS.values():
        assert fmt.engines, f"no engine runs {fmt.name}"
        for name in fmt.engines:
            assert ENGINES[name].formats[fmt.name] == fmt.suffix
        converter = importlib.import_module(f"shufflenet_edge.export.{fmt.converter}")
        assert callable(converter.convert)
        assert fmt.post_write is None or callable(getattr(converter, fmt.post_write))
        assert all(isinstance(r, Recipe) and r.how and r.version >= 1 for r in fmt.recipes.values())
        assert set(fmt.notes) <= set(fmt.precisions)


def test_cli_choices_and_targets_derive_from_the_table():
    import click

    from shufflenet_edge.bench import bench_formats
    from shufflenet_edge.bench.targets import resolve_target
    from shufflenet_edge.cli import main

    def choices(cmd, opt):
        [p] = [p for p in main.commands[cmd].params if p.name == opt]
        return tuple(p.type.choices) if isinstance(p.type, click.Choice) else None

    assert choices("export", "fmt") == tuple(FORMATS)
    assert choices("bench", "fmt") == bench_formats() == ("torch", *FORMATS)
    assert choices("bench", "precision") == choices("export", "precision")
    assert set(resolve_target("arm", "qemu").formats) == {"onnx", "tflite", "ncnn"}  # engines in the arm64 userland
    assert resolve_target("host").formats == (*FORMATS, "torch")
    assert resolve_target("browser").formats == tuple(f.name for f in FORMATS.values() if f.browser_engine)


def test_target_registry_and_options():
    from shufflenet_edge.bench.targets import TARGETS, resolve_target
    from shufflenet_edge.bench.targets.ssh import SshTarget

    assert {"host", "local", "ssh", "adb", "qemu", "browser"} <= set(TARGETS)
    t = resolve_target("arm", "ssh://pi@board", remote_python="/opt/py/bin/python3")
    assert isinstance(t, SshTarget) and t.remote_python == "/opt/py/bin/python3"
    with pytest.raises(UsageError, match="--wait is for browser targets, not ssh"):
        resolve_target("arm", "ssh://pi@board", wait=3)
    with pytest.raises(UsageError, match="unknown target 'host'"):
        resolve_target("arm", "host")


# ------------------------------------------------------------------ multi-file artifacts

TWO_FILES = Format("twofile", (".param", ".bin"), "none", {"fp32": Recipe("test")}, "test", ())


def test_a_two_file_artifact_moves_and_copies_as_a_unit(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    staged = Artifact(work / "m_32_fp32.param", TWO_FILES)
    assert [f.name for f in staged.all_files()] == ["m_32_fp32.param", "m_32_fp32.bin", "m_32_fp32.param.json"]
    dest = Artifact(out / "m_32_fp32.param", TWO_FILES)
    for f in dest.all_files():  # an earlier export of that name
        f.write_text("old")
    assert staged.missing() == staged.files
    for f in staged.files:
        f.write_text("new " + f.suffix)
    staged.sidecar.write_text(json.dumps({"precision": "fp32", "parity": {"max_abs_diff": 0.0, "passed": True}}))
    commit(staged, dest)
    assert [f.read_text() for f in dest.files] == ["new .param", "new .bin"] and is_verified(dest.path)
    assert not list(work.iterdir()) and dest.size_bytes == len("new .param") + len("new .bin")
    board = dest.renamed(tmp_path / "board", "model")
    (tmp_path / "board").mkdir()
    assert [p.name for p in dest.copy_to(board)] == ["model.param", "model.bin", "model.param.json"]


def test_verified_means_a_passing_parity_result(tmp_path):
    assert is_verified({"precision": "fp32", "parity": {"max_abs_diff": 1e-6, "cosine": 1.0, "top1_agreement": 1.0}})
    assert not is_verified({"precision": "fp32", "parity": {"max_abs_diff": 0.5, "cosine": 1.0, "top1_agreement": 1.0}})
    assert is_verified({"precision": "int8", "parity": {"max_abs_diff": 0.5, "cosine": 0.99, "top1_agreement": 1.0}})
    assert not is_verified({"precision": "int8", "parity": {"passed": False}})
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(b"x")
    assert not is_verified(bare) and "bare.onnx is not verified" in unverified_note(bare)
    (tmp_path / "bare.onnx.json").write_text("{not json")
    assert not is_verified(bare)
    with pytest.raises(UsageError, match="unknown artifact type '.pt'"):
        Artifact.at(tmp_path / "m.pt")


# ------------------------------------------------------------------ the bench record


def test_schema_file_is_generated_from_the_type():
    assert record.SCHEMA_FILE.read_text() == record.schema_text(), \
        "run: python -m shufflenet_edge.record --write"
    spec = json.loads(record.SCHEMA_FILE.read_text())
    assert set(spec["items"]["properties"]) == set(record.BenchRecord.__annotations__)


def _complete(rec, fmt="tflite"):
    subject = record.Subject("v2_1.0x", fmt, "int8", [224, 224], "m.tflite", 144_907_992, True)
    return record.complete_record(rec, subject, target="adb://X", emulated=False)


def test_adb_record_validates():
    from test_bench_adb import ANDROID_PERCENTILES

    from shufflenet_edge.bench.targets.adb import parse_benchmark_output, record_from_output

    rec = _complete(record_from_output(parse_benchmark_output(ANDROID_PERCENTILES), 4, "benchmark_model sha256:ab",
                                       1234, {"machine": "aarch64", "cpu": "x", "cores": 8, "governor": None,
                                              "model": "Pixel", "target": "adb://X", "emulated": False}))
    assert record.validate([rec]) == []
    assert rec["record_version"] == record.RECORD_VERSION and rec["gmacs_per_s"] > 0


def test_browser_record_validates(tmp_path):
    from shufflenet_edge.demo.reports import build_record

    (tmp_path / "net.onnx").write_bytes(b"x")
    (tmp_path / "net.onnx.json").write_text(json.dumps({"model": "v2_0.5x", "precision": "fp32", "macs": 40_000_000,
                                                        "input_size": [64, 64], "parity": {"max_abs_diff": 1e-6}}))
    rec = build_record({"artifact": "net.onnx", "engine": "onnxruntime-web", "runtime_version": "1.30.0",
                        "threads": 1, "warmup": 1, "rounds_ms": [[2.0, 2.5]], "user_agent": "T"}, tmp_path)
    assert record.validate([rec]) == [] and rec["verified"] is True  # the demo accepts verified files only


def test_validator_finds_drift():
    from test_bench_adb import ANDROID_PERCENTILES

    from shufflenet_edge.bench.targets.adb import parse_benchmark_output, record_from_output

    rec = _complete(record_from_output(parse_benchmark_output(ANDROID_PERCENTILES), 1))
    rec["device"].update(machine="m", cpu="c", cores=1, governor=None)
    assert record.validate([rec]) == []
    assert record.validate([{**rec, "surprise": 1}]) == ["$[0]: unknown key 'surprise' (declare it in "
                                                         "shufflenet_edge/record.py)"]
    bad = {k: v for k, v in rec.items() if k != "model"}
    assert record.validate([dict(bad, threads="1")]) == ["$[0]: missing 'model'", "$[0].threads: str '1' is not integer"]
    assert record.validate([{**rec, "device": {**rec["device"], "board_revision": "b"}}]) == []  # device is open


def test_record_concept_sits_below_bench_and_demo():
    """demo and bench share the record through shufflenet_edge/record.py; neither imports the other's
    package at module level for it (bench -> demo only for the browser target)."""
    src = (Path(record.__file__).parent / "demo" / "reports.py").read_text()
    assert "from ..bench" not in src and "import shufflenet_edge.bench" not in src
    rsrc = Path(record.__file__).read_text()
    assert "from .bench" not in rsrc and "from .demo" not in rsrc
