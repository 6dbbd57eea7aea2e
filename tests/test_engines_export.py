"""ncnn and ExecuTorch exports end to end on a digits-trained checkpoint (32 px): parity-checked
files, the .pte delegation record, bench --artifact, and eval accuracy against the ONNX fp32
file of the same checkpoint (OpenVINO on that file too). Slow: pnnx and ExecuTorch conversions."""
import json

import pytest

from shufflenet_edge.evaluate import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture
def files(exported):
    """The session's shared exports of the digits-trained checkpoints (conftest ``exported``)."""
    return lambda name, fmt, precision="fp32": exported(name, fmt, precision)


def test_ncnn_export_bench_eval(files, edge_cli):
    r = files("v1_g3", "ncnn")
    param, weights = r.path, r.path.with_suffix(".bin")
    assert param.name == "v1_g3_32_fp32.param" and weights.is_file()
    names = {p.name for p in param.parent.iterdir()}  # the session's export folder, shared with other formats
    assert {"v1_g3_32_fp32.bin", "v1_g3_32_fp32.param", "v1_g3_32_fp32.param.json"} <= names
    assert not [n for n in names if "pnnx" in n or n.endswith((".pt", ".py", ".ncnn.param", ".ncnn.bin"))]  # pnnx's side files are gone
    assert r.size_bytes == param.stat().st_size + weights.stat().st_size
    assert r.parity["engine"] == "ncnn" and r.parity["max_abs_diff"] <= 1e-4
    assert "ShuffleChannel" in param.read_text()  # the channel shuffle is one ncnn layer

    b = edge_cli("bench", "--artifact", param, "--threads", "1,2", "--runs", "5", "--json")
    assert b.returncode == 0, b.stderr
    recs = json.loads(b.stdout)
    assert [x["engine"] for x in recs] == ["ncnn", "ncnn"] and [x["threads"] for x in recs] == [1, 2]
    assert recs[0]["format"] == "ncnn" and recs[0]["size_bytes"] == r.size_bytes and recs[0]["latency_ms"]["p50"] > 0

    onnx = files("v1_g3", "onnx")
    want = evaluate(artifact=onnx.path, data="digits")
    got = evaluate(artifact=param, data="digits")
    assert got["engine"] == "ncnn" and got["n"] == want["n"] and got["top1"] == want["top1"]
    ov = evaluate(artifact=onnx.path, data="digits", engine="openvino")
    assert ov["engine"] == "openvino" and ov["inference_precision"] == "f32" and ov["top1"] == want["top1"]


def test_pte_fp32_and_int8_fully_delegated(files, edge_cli):
    """No ShuffleNet op stays outside XNNPACK: v1's padded average pool and v2's split and mean
    are rewritten at export (checked here on v1_g3 fp32 and v2_1.0x int8)."""
    v1 = files("v1_g3", "pte")
    d = v1.metadata["delegation"]
    assert d["undelegated_ops"] == {} and d["delegated_nodes"] > 100 and d["rewrites"] == {"avg_pool2d": 3, "mean": 1}
    assert v1.parity["engine"] == "executorch" and v1.parity["max_abs_diff"] <= 1e-4
    side = json.loads(v1.path.with_name(v1.path.name + ".json").read_text())
    assert side["delegation"] == d

    v2 = files("v2_1.0x", "pte", "int8")
    d2 = v2.metadata["delegation"]
    assert d2["undelegated_ops"] == {} and d2["rewrites"] == {"split": 13, "mean": 1}
    assert v2.parity["cosine"] >= 0.99

    b = edge_cli("bench", "--artifact", v2.path, "--threads", "1,2", "--runs", "5", "--json")
    assert b.returncode == 0, b.stderr
    recs = json.loads(b.stdout)
    assert [r["threads"] for r in recs] == [1, 2]  # one process, the thread counts timed in turn
    assert recs[0]["engine"] == "executorch" and recs[0]["precision"] == "int8" and recs[0]["latency_ms"]["p50"] > 0

    assert evaluate(artifact=v1.path, data="digits")["top1"] == evaluate(artifact=files("v1_g3", "onnx").path,
                                                                         data="digits")["top1"]
    want = evaluate(artifact=files("v2_1.0x", "onnx").path, data="digits")["top1"]
    got = evaluate(artifact=v2.path, data="digits")
    assert got["engine"] == "executorch" and abs(got["top1"] - want) <= 0.01


def test_pte_threads_honoured(files):
    """XNNPACK's threadpool is one per process and sized before a program loads: --threads N is N
    threads, and another count while a program holds the pool is a one-line error, not an abort."""
    import numpy as np
    from executorch.extension.pybindings import portable_lib

    from shufflenet_edge.runtime import open_engine
    from shufflenet_edge.runtime.engines import EngineError

    path = files("v1_g3", "pte").path
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    two = open_engine(path, threads=2)
    assert two.pool_threads == 2 == portable_lib._threadpool_get_thread_count()
    with pytest.raises(EngineError, match="one threadpool") as info:
        open_engine(path, threads=1)
    assert "\n" not in str(info.value)
    want = two.predict(x)
    two.close()
    one = open_engine(path, threads=1)
    assert one.pool_threads == 1 == portable_lib._threadpool_get_thread_count()
    assert np.abs(one.predict(x) - want).max() <= 1e-4
    one.close()
