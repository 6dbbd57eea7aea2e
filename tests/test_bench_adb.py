"""--target adb://: benchmark_model's log parsed into records (real logs), and adb's own errors (real adb)."""
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from shufflenet_edge.bench.targets import RunSpec, TargetError, resolve_target
from shufflenet_edge.bench.targets.adb import (AdbTarget, adb_failure, cpu_mask, parse_benchmark_output,
                                               record_from_output)
from shufflenet_edge.errors import UsageError

# Logs as benchmark_model printed them (trimmed to the lines the parser reads, plus neighbours).
# Android phone, `adb shell /data/local/tmp/benchmark_model --graph=... --num_threads=4`; a build
# whose stats carry p5/median/p95 (tsl::StatWithPercentiles).
ANDROID_PERCENTILES = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/mask_estimator_phy.tflite]
INFO: Signature to run: []
INFO: #threads used for CPU inference: [4]
INFO: Loaded model /data/local/tmp/mask_estimator_phy.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
VERBOSE: Replacing 49 out of 49 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions for subgraph 0.
INFO: The input model file size (MB): 16.1527
INFO: Initialized session in 102.32ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=670083 p5=670083 median=670083 p95=670083

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=591245 curr=917186 min=502355 max=2270688 avg=699438 std=325425 p5=502674 median=576856 p95=1373207

INFO: Inference timings in us: Init: 102320, First inference: 670083, Warmup (avg): 670083, Inference (avg): 699438
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual \
memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=98.0977 overall=99.2031
"""

# TI AM62x board docs (4 threads, XNNPACK off): averages past 1e6 us print in scientific notation.
TI_SCIENTIFIC = """\
   INFO: Initialized session in 5.579ms.
   INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
   INFO: count=1 curr=1357602 p5=1357602 median=1357602 p95=1357602

   INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
   INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 \
median=1239807 p95=1247415

   INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): \
1.24027e+06
   INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832
"""

# ChromeOS mlbenchmark test (CPU, XNNPACK, --report_peak_memory_footprint=true): an older build without
# percentiles; the tool's own "Running benchmark ..." headers were not quoted there.
CHROMEOS_PEAK = """\
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
VERBOSE: Replacing 58 out of 58 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions for the \
whole graph.
INFO: Initialized session in 3.337ms.
INFO: count=9 first=81913 curr=55502 min=55502 max=81913 avg=58984.7 std=8115
INFO: count=1061 first=56576 curr=56299 min=54669 max=60236 avg=56265.8 std=982
INFO: Inference timings in us: Init: 3337, First inference: 81913, Warmup (avg): 58984.7, Inference (avg): 56265.8
INFO: Overall peak memory footprint (MB) via periodic monitoring: 93.2383
"""

# benchmark_model_plus_flex on a phone, 2022: no 'INFO: ' prefixes yet.
ANDROID_2022 = """\
STARTING!
Log parameter values verbosely: [0]
Min num runs: [1000]
Num threads: [1]
Min warmup runs: [1]
Graph: [/data/local/tmp/model.tflite]
#threads used for CPU inference: [1]
Loaded model /data/local/tmp/model.tflite
The input model file size (MB): 1.41812
Initialized session in 17.851ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=478 first=2104 curr=1017 min=1012 max=2104 avg=1041.15 std=63

Running benchmark for at least 1000 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=1000 first=1040 curr=1018 min=1012 max=1190 avg=1039.66 std=22

Inference timings in us: Init: 17851, First inference: 2104, Warmup (avg): 1041.15, Inference (avg): 1039.66
"""

# With --enable_op_profiling=true the profiler's summary adds its own "Timings (microseconds)" lines
# (sums of per-op times, here from an Arm learning path run): they must not replace the run timings.
OP_PROFILE_TAIL = """\
Timings (microseconds): count=3166 first=947 curr=406 min=390 max=947 avg=411.071 std=14
Memory (bytes): count=0
5 nodes observed
"""

# A failed start, in the lines the tool's source prints (LiteRT tools/benchmark: "Failed to mmap model",
# then BenchmarkModel's exit message).
FAILED = """\
INFO: STARTING!
INFO: Graph: [/data/local/tmp/edge-bench-1/model.tflite]
ERROR: Failed to mmap model /data/local/tmp/edge-bench-1/model.tflite
ERROR: Benchmarking failed.
"""


def test_parse_android_percentiles():
    p = parse_benchmark_output(ANDROID_PERCENTILES)
    assert p["warmup"] == {"count": 1, "first": 670083.0, "curr": 670083.0, "min": 670083.0, "max": 670083.0,
                           "avg": 670083.0, "std": 0.0, "p5": 670083.0, "median": 670083.0, "p95": 670083.0}
    assert p["inference"]["count"] == 50 and p["inference"]["median"] == 576856
    assert (p["init_us"], p["first_inference_us"], p["warmup_avg_us"], p["inference_avg_us"]) == (
        102320, 670083, 670083, 699438)
    assert (p["memory_init_mb"], p["memory_overall_mb"], p["peak_memory_mb"], p["model_mb"]) == (
        98.0977, 99.2031, None, 16.1527)
    rec = record_from_output(p, threads=4)
    lat = rec["latency_ms"]
    assert lat["min"] == pytest.approx(502.355) and lat["mean"] == pytest.approx(699.438)
    assert lat["p50"] == pytest.approx(576.856) and lat["std"] == pytest.approx(325.425)
    assert lat["p90"] is None and lat["p99"] is None and "p90/p99 are not reported" in rec["latency_note"]
    assert lat["cv"] == pytest.approx(325425 / 699438)
    assert rec["runs"] == 50 and rec["warmup"] == 1 and rec["threads"] == 4 and rec["batch"] == 1
    assert rec["rounds"] == {"n": 1, "p50_ms": [576.856], "spread": 0.0}
    bm = rec["benchmark_model"]
    assert bm["init_ms"] == pytest.approx(102.32) and bm["first_inference_ms"] == pytest.approx(670.083)
    assert bm["p5_ms"] == pytest.approx(502.674) and bm["p95_ms"] == pytest.approx(1373.207)
    assert bm["memory_delta_overall_mb"] == 99.2031 and rec["peak_rss_mb"] is None


def test_parse_scientific_notation_and_peak_memory():
    p = parse_benchmark_output(TI_SCIENTIFIC)
    assert p["inference"]["avg"] == 1.24027e+06 and p["warmup_avg_us"] == 1.3576e+06
    assert record_from_output(p, 4)["latency_ms"]["mean"] == pytest.approx(1240.27)
    p = parse_benchmark_output(CHROMEOS_PEAK)
    assert p["warmup"]["count"] == 9 and p["inference"]["count"] == 1061
    rec = record_from_output(p, 1)
    # no median in this build: p50 stays unknown rather than being made up from the mean
    assert rec["latency_ms"]["p50"] is None and rec["rounds"]["p50_ms"] == []
    assert rec["latency_ms"]["mean"] == pytest.approx(56.2658) and rec["latency_ms"]["min"] == pytest.approx(54.669)
    assert rec["peak_rss_mb"] == 93.2383 and rec["benchmark_model"]["peak_memory_mb"] == 93.2383


def test_parse_unprefixed_2022_log_and_profiler_lines():
    p = parse_benchmark_output(ANDROID_2022 + OP_PROFILE_TAIL)
    assert p["warmup"]["count"] == 478 and p["inference"]["count"] == 1000
    assert p["inference"]["avg"] == 1039.66 and p["inference"]["max"] == 1190
    assert p["init_us"] == 17851 and p["memory_init_mb"] is None
    warmup_only = "\n".join(ANDROID_2022.splitlines()[:12])  # the timed block never came
    with pytest.raises(TargetError, match="printed no timings"):
        parse_benchmark_output(warmup_only + "\n" + OP_PROFILE_TAIL)


def test_failed_run_is_one_line():
    with pytest.raises(TargetError, match=r"^benchmark_model printed no timings: Failed to mmap model /data"):
        parse_benchmark_output(FAILED)
    with pytest.raises(TargetError, match="printed no timings: /system/bin/sh: ./bm: not executable"):
        parse_benchmark_output("/system/bin/sh: ./bm: not executable: 32-bit ELF file\n")
    with pytest.raises(TargetError, match="printed no timings: no output"):
        parse_benchmark_output("")


def test_command_and_mask():
    assert cpu_mask("4-7") == "f0" and cpu_mask("0,2") == "5" and cpu_mask("0") == "1"
    t = AdbTarget("adb://emulator-5554")
    spec = RunSpec(artifact=Path("m.tflite"), runs=30, warmup=3, cpus="4-7")
    assert t.benchmark_command("/data/local/tmp/x/benchmark_model", "/data/local/tmp/x/model.tflite", 2, spec) == [
        "taskset", "f0", "/data/local/tmp/x/benchmark_model", "--graph=/data/local/tmp/x/model.tflite",
        "--num_threads=2", "--num_runs=30", "--warmup_runs=3", "--min_secs=0", "--warmup_min_secs=0",
        "--use_xnnpack=true", "--report_peak_memory_footprint=true"]


def test_adb_messages():
    assert "unauthorized" in adb_failure("error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set",
                                         "X")
    assert "is offline" in adb_failure("error: device offline", "X")
    assert "no device X is connected" in adb_failure("error: device 'X' not found", "X")
    assert "dropped off" in adb_failure("error: closed", "X")
    assert adb_failure("some other text", "X") is None


def test_usage_errors(tmp_path):
    t = resolve_target("arm", "adb://R58M123ABC")
    assert isinstance(t, AdbTarget) and t.name == "adb://R58M123ABC" and t.formats == ("tflite",)
    for bad in ("adb://", "adb://-s", "adb://a;b", "adb://a b"):
        with pytest.raises(UsageError, match="bad adb target"):
            AdbTarget(bad)
    f = tmp_path / "m.tflite"
    f.write_bytes(b"TFL3")
    with pytest.raises(UsageError, match="adb targets run .tflite files"):
        t.run(RunSpec(artifact=tmp_path / "m.onnx"))
    with pytest.raises(UsageError, match="android_aarch64 benchmark_model .* bazel build -c opt "
                                         "--config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model"):
        t.run(RunSpec(artifact=f))
    with pytest.raises(UsageError, match="--benchmark-binary .*nope does not exist"):
        AdbTarget("adb://R58M123ABC", benchmark_binary=str(tmp_path / "nope")).run(RunSpec(artifact=f))
    t = resolve_target("arm", "adb://R58M123ABC", benchmark_binary=str(f))
    with pytest.raises(UsageError, match="--engine onnxruntime does not run on Android"):
        t.run(RunSpec(artifact=f, engine="onnxruntime"))
    with pytest.raises(UsageError, match="bad --cpus"):
        t.run(RunSpec(artifact=f, cpus="x"))


def test_adb_not_installed(tmp_path, monkeypatch):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"TFL3")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TargetError, match="adb is not installed"):
        AdbTarget("adb://X", benchmark_binary=str(f)).run(RunSpec(artifact=f))


@pytest.fixture
def adb_server(monkeypatch):
    """Real adb, on a private server port (no interference with a developer's own adb server)."""
    if not shutil.which("adb"):
        pytest.skip("adb is not installed (scripts/setup.sh --system installs Debian's adb)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    yield port
    subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30, env=os.environ)


def test_real_adb_device_not_connected(adb_server, tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"TFL3")
    with pytest.raises(TargetError) as e:
        resolve_target("arm", "adb://NOTCONNECTED42", benchmark_binary=str(f)).run(RunSpec(artifact=f))
    msg = str(e.value)
    assert msg.startswith("adb://NOTCONNECTED42: no device NOTCONNECTED42 is connected") and "\n" not in msg


def test_real_adb_cli(adb_server, tmp_path, edge_cli):
    if not (Path(__file__).resolve().parents[1] / "shufflenet_edge" / "cli" / "bench_cmd.py").is_file():
        pytest.skip("edge bench is not there yet")
    import litert_torch
    import torch

    # a real (tiny) .tflite: bench opens a file here before it sets up any device
    f = tmp_path / "m.tflite"
    tiny = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 10)).eval()
    litert_torch.convert(tiny, (torch.zeros(1, 3, 16, 16),)).export(str(f))
    r = edge_cli("bench", "--artifact", f, "--device", "arm", "--target", "adb://NOTCONNECTED42",
                 "--benchmark-binary", f, env={"ANDROID_ADB_SERVER_PORT": str(adb_server)})
    assert r.returncode == 1, r.stderr
    # (the local open check lets litert's own "INFO: Created ... delegate" line through: not ours to judge here)
    assert [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("INFO: ")] == [
        "error: adb://NOTCONNECTED42: no device NOTCONNECTED42 is connected ('adb devices' lists them; "
        "adb connect HOST:PORT for Wi-Fi)"]
    r = edge_cli("bench", "--artifact", f, "--device", "arm", "--target", "adb://NOTCONNECTED42")
    assert r.returncode == 2 and "android_aarch64 benchmark_model" in r.stderr
    assert len([ln for ln in r.stderr.strip().splitlines() if not ln.startswith("INFO: ")]) == 1
