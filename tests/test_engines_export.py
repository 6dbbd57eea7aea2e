"""ncnn and ExecuTorch exports end to end on a digits-trained checkpoint (32 px): parity-checked
files, the .pte delegation record, bench --artifact, and eval accuracy against the ONNX fp32
file of the same checkpoint (OpenVINO on that file too). Slow: pnnx and ExecuTorch conversions."""
import json

import pytest

from shufflenet_edge.evaluate import evaluate
from shufflenet_edge.export import export

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(trained_ckpts, tmp_path_factory):
    """Export on first request, share afterwards: (model, format, precision) -> ExportResult."""
    root = tmp_path_factory.mktemp("engine_exports")
    cache = {}

    def get(name, fmt, precision="fp32"):
        key = (name, fmt, precision)
        if key not in cache:
            cache[key] = export(checkpoint=trained_ckpts[name], format=fmt, precision=precision, calib="digits",
                                calib_size=32, out=root, quiet=True)
        return cache[key]

    return get


def test_ncnn_export_bench_eval(files, edge_cli):
    r = files("v1_g3", "ncnn")
    param, weights = r.path, r.path.with_suffix(".bin")
    assert param.name == "v1_g3_32_fp32.param" and weights.is_file()
    assert sorted(p.name for p in param.parent.iterdir() if p.name.startswith("v1_g3_32_fp32.")) == [
        "v1_g3_32_fp32.bin", "v1_g3_32_fp32.param", "v1_g3_32_fp32.param.json"]  # pnnx's side files are gone
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

    b = edge_cli("bench", "--artifact", v2.path, "--runs", "5", "--json")
    assert b.returncode == 0, b.stderr
    rec = json.loads(b.stdout)[0]
    assert rec["engine"] == "executorch" and rec["precision"] == "int8" and rec["latency_ms"]["p50"] > 0

    assert evaluate(artifact=v1.path, data="digits")["top1"] == evaluate(artifact=files("v1_g3", "onnx").path,
                                                                         data="digits")["top1"]
    want = evaluate(artifact=files("v2_1.0x", "onnx").path, data="digits")["top1"]
    got = evaluate(artifact=v2.path, data="digits")
    assert got["engine"] == "executorch" and abs(got["top1"] - want) <= 0.01
