"""int8 beyond the export matrix: the ONNX int8 file gives the same answers on every x86 CPU class.

The emulated run is the expensive part (qemu runs onnxruntime some hundreds of times slower), so
it takes a fixed, evenly spaced subset of the digits test split (ISA_IMAGES of its 360 images) and
the two models run in parallel.

The shared checkpoints are one-epoch runs (near chance accuracy). Measured here on better-trained ones
(3 epochs, no warm-up, 60 images): Haswell vs native exact (cosine 1.0, top-1 100%) for both models;
vs PyTorch worst image 0.9885 (v1_g3, 93.6% top-1) and 0.954 (v2_1.0x, 2 epochs, still near chance),
so the 0.99 bound against PyTorch is not yet shown on converged models.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from conftest import TRAINED_MODELS

ISA_IMAGES = 60  # every 6th test image
COS_VS_NATIVE, TOP1_VS_NATIVE, COS_VS_TORCH = 0.999, 0.99, 0.99


def _test_images(ckpt, n=None):
    from shufflenet_edge.data import calibration_array, load_split, parse_spec
    from shufflenet_edge.models import create_model

    model = create_model(checkpoint=ckpt)
    total = len(load_split(parse_spec("digits"), "test"))
    x = calibration_array("digits", (32, 32), total, model.edge_meta["preprocessing"], split="test")
    if n:
        x = x[:: max(1, total // n)][:n]
    with torch.no_grad():
        return model, x, model(torch.from_numpy(x)).numpy()


@pytest.mark.slow
def test_onnx_int8_same_answers_on_avx2_without_vnni(exported, trained_ckpts):
    """The int8 ONNX file under ``qemu-x86_64 -cpu Haswell`` (AVX2 + FMA, no VNNI: the CPUs whose
    u8s8 kernels saturate int16) against this host's own run and against PyTorch, per image."""
    from shufflenet_edge.export.parity import per_image_cosine
    from shufflenet_edge.quant.isa import emulated_logits, qemu_path
    from shufflenet_edge.runtime import open_engine
    from shufflenet_edge.runtime.timing import int8_dot_product, isa_features

    if qemu_path() is None:
        pytest.skip("qemu-x86_64 is not installed (scripts/setup.sh --system installs qemu-user)")
    files = {name: exported(name, "onnx", "int8").path for name in TRAINED_MODELS}
    data = {name: _test_images(trained_ckpts[name], ISA_IMAGES) for name in TRAINED_MODELS}
    with ThreadPoolExecutor(len(files)) as pool:  # one qemu per core
        emulated = dict(zip(files, pool.map(lambda n: emulated_logits(files[n], data[n][1], "Haswell"), files)))
    host = "VNNI" if int8_dot_product(isa_features()) else "AVX2 without VNNI (the same class as Haswell)"
    for name, path in files.items():
        _, x, ref = data[name]
        native = open_engine(path).predict(x)
        emu = emulated[name]
        worst_native = per_image_cosine(native, emu).min()
        same_top1 = (native.argmax(1) == emu.argmax(1)).mean()
        assert worst_native >= COS_VS_NATIVE and same_top1 >= TOP1_VS_NATIVE, (name, host, worst_native, same_top1)
        for run, logits in (("native", native), ("Haswell", emu)):
            worst_torch = per_image_cosine(ref, logits).min()
            assert worst_torch >= COS_VS_TORCH, (name, run, host, worst_torch)


@pytest.mark.slow
def test_quantize_report_ranks_layers_with_edge_info_kinds(cli, trained_ckpts, tmp_path):
    import json

    out = tmp_path / "report"
    r = cli("quantize-report", "--checkpoint", trained_ckpts["v1_g3"], "--calib", "digits", "--calib-size", "8",
            "--images", "4", "--out", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "quantize_report.json").read_text())
    rows = rep["layers"]
    assert rep["model"] == "v1_g3" and len(rows) > 40 and [x["rank"] for x in rows] == list(range(1, len(rows) + 1))
    assert {"gconv1x1", "dwconv", "shuffle", "fc"} <= {x["kind"] for x in rows}
    finite = [x["sqnr_alone_db"] for x in rows if x["sqnr_alone_db"] is not None]
    assert finite == sorted(finite) and all(-1.0 <= x["cosine_full"] <= 1.0 for x in rows)
    from shufflenet_edge.complexity import complexity

    info_names = {layer.name for layer in complexity("v1_g3", 32, 10).layers}
    convs = [x for x in rows if x["kind"] in ("gconv1x1", "dwconv", "conv", "conv1x1", "fc")]
    assert convs and all(x["name"] in info_names for x in convs)  # the names `edge info` prints
    assert (out / "quantize_report.png").read_bytes()[:4] == b"\x89PNG" and "| rank |" in r.stdout
    bad = cli("quantize-report", "--checkpoint", tmp_path / "missing.pt", "--calib", "digits", "--out", tmp_path / "x")
    assert bad.returncode != 0 and "error:" in bad.stderr and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_keep_fp32_leaves_named_layers_float(tmp_path):
    import json

    import onnx

    from shufflenet_edge.errors import EdgeError
    from shufflenet_edge.export import export

    keep = ["conv1.0", "stage2.0.branch1.0"]
    r = export(model="v2_0.5x", format="onnx", precision="int8", input_size=32, num_classes=10, out=tmp_path,
               quiet=True, keep_fp32=",".join(keep))
    side = json.loads(r.path.with_name(r.path.name + ".json").read_text())
    assert side["kept_fp32"] == keep and side["quantization"]["weights"].startswith("uint8")
    convs = [n for n in onnx.load(str(r.path)).graph.node if n.op_type == "Conv"]
    weight_of = {n.input[1] for n in convs}
    assert {f"{k}.weight" for k in keep} <= weight_of  # float initializers, read directly
    assert sum(w.endswith("_DequantizeLinear_Output") for w in weight_of) == len(convs) - len(keep)
    with pytest.raises(EdgeError, match="unknown layer"):
        export(model="v2_0.5x", format="onnx", precision="int8", input_size=32, num_classes=10, out=tmp_path / "b",
               quiet=True, keep_fp32="nope.0")
    with pytest.raises(EdgeError, match="keep-fp32 applies to"):
        export(model="v2_0.5x", format="tflite", precision="int8", input_size=32, num_classes=10, out=tmp_path / "c",
               quiet=True, keep_fp32="conv1.0")
