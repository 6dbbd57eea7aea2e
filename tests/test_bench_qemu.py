"""--target qemu: the instruction-counting plugin (built with gcc, checked against a hand-assembled
aarch64 program whose instruction count is known exactly), the target's error paths, and (slow)
real emulated runs of ONNX and TFLite files in the cached arm64 userland."""
import os
import shutil
import stat

import pytest

from shufflenet_edge.bench.targets import RunSpec, TargetError, resolve_target
from shufflenet_edge.bench.targets import qemu as qemu_target
from shufflenet_edge.errors import UsageError

HAVE_QEMU = shutil.which("qemu-aarch64") is not None and shutil.which("gcc") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="needs Debian's qemu-user and gcc (scripts/setup.sh --system)")
LATENCY_KEYS = {"min", "mean", "p50", "p90", "p99", "std", "cv"}


@needs_qemu
def test_plugin_counts_a_known_program_exactly(tmp_path):
    plugin = qemu_target.compile_plugin(tmp_path / "insn_count.so")
    for loops in (1, 1000, 65535):
        counted, expected = qemu_target.count_probe(qemu_target.find_qemu(), plugin, loops)
        assert counted == expected, loops
    marks, total = counted
    assert marks == [6, 6 + 2 * 65535 + 3] and total == 2 * 65535 + 12


@needs_qemu
def test_plugin_build_failure_is_one_line(tmp_path):
    bad = tmp_path / "broken.c"
    bad.write_text("int qemu_plugin_version = ;\n")
    with pytest.raises(TargetError) as exc:
        qemu_target.compile_plugin(tmp_path / "broken.so", source=bad)
    msg = str(exc.value)
    assert "broken.c failed" in msg and "\n" not in msg
    assert not (tmp_path / "broken.so").exists()


@needs_qemu
def test_plugin_that_cannot_load_is_reported(tmp_path):
    not_a_plugin = tmp_path / "empty.so"
    not_a_plugin.write_bytes(b"")
    with pytest.raises(TargetError, match="cannot load the instruction-counting plugin"):
        qemu_target.count_probe(qemu_target.find_qemu(), not_a_plugin)


def _fake_path(tmp_path, monkeypatch, *tools):
    """A PATH holding only executables with these names (what shutil.which finds)."""
    for name in tools:
        exe = tmp_path / name
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_qemu_names_the_package(tmp_path, monkeypatch):
    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    _fake_path(tmp_path, monkeypatch)
    with pytest.raises(TargetError) as exc:
        resolve_target("arm", "qemu").run(RunSpec(artifact=art))
    assert "install Debian's qemu-user package" in str(exc.value) and "\n" not in str(exc.value)
    _fake_path(tmp_path, monkeypatch, "qemu-aarch64-static")
    with pytest.raises(TargetError, match="qemu-aarch64-static cannot load the instruction-counting plugin"):
        qemu_target.find_qemu()


def test_missing_gcc_names_the_package(tmp_path, monkeypatch):
    _fake_path(tmp_path, monkeypatch)
    with pytest.raises(TargetError, match="install Debian's gcc package"):
        qemu_target.compile_plugin(tmp_path / "x.so")


def test_usage_errors(tmp_path):
    art = tmp_path / "m.tflite"
    art.write_bytes(b"x")
    target = resolve_target("arm", "qemu")
    assert target.name == "qemu" and target.emulated is True and set(target.formats) == {"onnx", "tflite", "ncnn"}
    with pytest.raises(UsageError, match="1 thread only"):
        target.run(RunSpec(artifact=art, threads=[1, 2]))
    with pytest.raises(UsageError, match="not --format torch"):
        target.run(RunSpec(artifact=None))
    with pytest.raises(UsageError, match="--remote-python is for ssh targets, not qemu"):
        resolve_target("arm", "qemu", remote_python="/usr/bin/python3")
    with pytest.raises(UsageError, match="--benchmark-binary is for adb targets, not qemu"):
        resolve_target("arm", "qemu", benchmark_binary="bm")


# ---------------------------------------------------------------------------------- emulated runs
@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from shufflenet_edge.export import export

    out = tmp_path_factory.mktemp("qemu-exports")
    return {fmt: export(model="v2_0.5x", format=fmt, input_size=64, out=out, quiet=True)
            for fmt in ("onnx", "tflite", "ncnn")}


@pytest.mark.slow
@needs_qemu
@pytest.mark.parametrize("fmt, engine", [("onnx", "onnxruntime"), ("tflite", "litert"), ("ncnn", "ncnn")])
def test_emulated_run_and_instruction_count(artifacts, fmt, engine):
    exported = artifacts[fmt]
    target = resolve_target("arm", "qemu")
    spec = RunSpec(artifact=exported.path, runs=5, warmup=1, rounds=5)
    (rec,) = target.run(spec)
    assert rec["engine"] == engine and rec["threads"] == 1 and rec["runs"] == 5 and rec["warmup"] == 1
    assert LATENCY_KEYS <= set(rec["latency_ms"])
    lat = rec["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"]
    dev = rec["device"]
    assert dev["emulated"] is True and dev["target"] == "qemu" and dev["machine"] == "aarch64"
    assert dev["qemu_cpu"] == "cortex-a76" and "emulated" in dev["cpu"]
    ipi = rec["instructions_per_inference"]
    assert isinstance(ipi, int) and ipi > 0
    # one inference, not the whole process (start-up alone is ~7e8): between 1/16 and 10 instructions
    # per multiply-accumulate (a 4-lane NEON fma does 4)
    macs = exported.metadata["macs"]
    assert macs / 16 < ipi < 10 * macs, (ipi, macs)
    again = target.count_instructions(spec)
    assert abs(again - ipi) / ipi < 0.01, (ipi, again)


@pytest.mark.slow
@needs_qemu
def test_corrupt_artifact_is_one_line(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(os.urandom(2048))
    with pytest.raises(TargetError) as exc:
        resolve_target("arm", "qemu").run(RunSpec(artifact=bad, runs=1, warmup=0))
    msg = str(exc.value)
    assert msg.startswith("qemu: onnxruntime cannot load") and "\n" not in msg
