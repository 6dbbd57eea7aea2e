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
               quiet=True, keep_fp32=",".join(keep), int8_policy="all")
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


# ---------------------------------------------------------------- int8 policy and --keep-fp32 auto


def test_int8_policy_is_part_of_the_cache_key(tmp_path):
    """A cached --int8-policy all file is never served for fast (their float layers differ), and the
    policy does not touch the keys of files it does not change."""
    from shufflenet_edge.bench.cache import ExportCache

    cache = ExportCache(tmp_path / "c")
    int8 = dict(model="v1_g3", format="onnx", precision="int8", input_size=[32, 32], num_classes=10)
    assert cache.key(int8) == cache.key({**int8, "int8_policy": "fast"})  # fast is the default
    assert cache.key({**int8, "int8_policy": "all"}) != cache.key(int8)
    assert cache.key({**int8, "keep_fp32": "conv1.0"}) != cache.key(int8)
    auto = {**int8, "keep_fp32": "auto", "data": "digits"}
    assert len({cache.key(auto), cache.key({**auto, "max_drop": 0.5}), cache.key(int8)}) == 3
    fp32 = {**int8, "precision": "fp32"}
    assert cache.key(fp32) == cache.key({**fp32, "int8_policy": "all"})


def test_weight_granularity_is_part_of_the_cache_key(tmp_path):
    """A per-tensor int8 file is never served for per-channel, and per-channel files keep the keys they had
    before the option existed."""
    from shufflenet_edge.bench.cache import ExportCache

    cache = ExportCache(tmp_path / "c")
    int8 = dict(model="v2_0.5x", format="onnx", precision="int8", input_size=[32, 32], num_classes=10)
    assert cache.key(int8) == cache.key({**int8, "weight_granularity": "channel"})
    assert cache.key({**int8, "weight_granularity": "tensor"}) != cache.key(int8)
    tflite = {**int8, "format": "tflite"}
    assert cache.key({**tflite, "weight_granularity": "tensor"}) != cache.key(tflite)


@pytest.mark.parametrize("args, match", [
    (["--format", "pte", "--precision", "int8"], "--weight-granularity tensor is not available for pte int8"),
    (["--format", "onnx", "--precision", "fp32"], "--weight-granularity tensor applies to --precision int8"),
])
def test_weight_granularity_usage_errors_are_one_line(cli, tmp_path, args, match):
    r = cli("export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10", "--weight-granularity",
            "tensor", "--out", tmp_path / "out", *args)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and match in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_per_tensor_onnx_int8_has_one_scale_per_weight(tmp_path):
    """--weight-granularity tensor: every quantized Conv/Gemm weight of the file has a single scale and zero
    point (a per-channel file has one per output channel), and the sidecar records the setting."""
    import json

    import onnx
    from onnx import numpy_helper

    from shufflenet_edge.export import export

    r = export(model="v2_0.5x", format="onnx", precision="int8", input_size=32, num_classes=10, calib_size=8,
               out=tmp_path, quiet=True, weight_granularity="tensor", int8_policy="all")
    side = json.loads(r.path.with_name(r.path.name + ".json").read_text())
    assert side["int8_request"]["weight_granularity"] == "tensor" and "per-tensor" in side["quantization"]["weights"]
    proto = onnx.load(str(r.path))
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    dq = {n.output[0]: n for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    weights = [dq[n.input[1]] for n in proto.graph.node if n.op_type in ("Conv", "Gemm") and n.input[1] in dq]
    assert len(weights) > 10  # every conv of v2_0.5x and the fc are int8 (no kind is kept float for v2)
    for node in weights:
        assert node.input[0] in init and init[node.input[1]].size == 1 and init[node.input[2]].size == 1, node.name


def test_smallest_passing_probes_then_bisects():
    from shufflenet_edge.export.onnx_mixed import smallest_passing

    for need, limit in ((1, 10), (3, 10), (5, 10), (8, 8), (6, 7)):
        probed = []
        got = smallest_passing(lambda k: probed.append(k) or k >= need, limit)
        assert got == need and len(probed) <= 2 * limit.bit_length(), (need, probed)
    probed = []
    assert smallest_passing(lambda k: probed.append(k) or False, 5) is None and probed == [1, 2, 4, 5]
    assert smallest_passing(lambda k: True, 0) is None


@pytest.mark.parametrize("args, match", [
    (["--keep-fp32", "auto"], "--keep-fp32 auto needs --data SPEC"),
    (["--max-drop", "1"], "--max-drop applies to --keep-fp32 auto"),
    (["--data", "digits"], "--data applies to --keep-fp32 auto"),
    (["--keep-fp32", "auto", "--data", "digits", "--max-drop", "-1"], "bad --max-drop -1"),
    (["--keep-fp32", "auto", "--data", "digits", "--format", "tflite"], "--keep-fp32 applies to --format onnx"),
])
def test_keep_fp32_auto_usage_errors_are_one_line(cli, tmp_path, args, match):
    base = ["export", "--model", "v2_0.5x", "--input-size", "32", "--num-classes", "10", "--precision", "int8",
            "--out", tmp_path / "out"]
    r = cli(*base, *(args if "--format" in args else [*args, "--format", "onnx"]))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and match in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_fast_policy_keeps_grouped_1x1_float_then_checks_latency(trained_ckpts, tmp_path):
    """The default ONNX int8 file of v1_g3 leaves its grouped 1x1 convs float, then is timed against
    fp32 on this CPU: it stays int8 only if it is not slower, else every layer is float; either way
    the sidecar says which and the file holds what it says."""
    import json

    import onnx

    from shufflenet_edge.quant.onnx_layers import layers

    from shufflenet_edge.export import export

    r = export(checkpoint=trained_ckpts["v1_g3"], format="onnx", precision="int8", calib="digits", calib_size=16,
               out=tmp_path, quiet=True)
    side = json.loads(r.path.with_name(r.path.name + ".json").read_text())
    policy = side["int8_policy"]
    assert policy["policy"] == "fast" and policy["float_kinds"] == ["gconv1x1"]
    assert side["int8_request"]["policy"] == "fast"
    check = policy["latency_check"]
    assert check["decision"] == ("int8" if check["int8_over_fp32"] <= 1.0 else "float") and check["runs"] >= 20
    proto = onnx.load(str(r.path))
    kinds = {layer["name"]: layer["kind"] for layer in layers(proto)}
    weight_of = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    if check["decision"] == "int8":
        assert {kinds[n] for n in policy["kept_fp32"]} == {"gconv1x1"} and side["kept_fp32"] == policy["kept_fp32"]
        assert set(policy["kept_fp32"]) == {n for n, k in kinds.items() if k == "gconv1x1"}
        assert {f"{n}.weight" for n in policy["kept_fp32"]} <= weight_of  # float initializers, read directly
        assert any(w.endswith("_DequantizeLinear_Output") for w in weight_of)  # the rest is int8
    else:
        assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
        assert set(side["kept_fp32"]) == set(kinds) and side["quantization"]["applied"] is False


def test_latency_guard_keeps_int8_only_when_not_slower():
    """Paired per-round ratios: a machine-wide slow round moves both files and does not decide."""
    from shufflenet_edge.export.onnx_latency_guard import decide

    assert decide([1.0, 2.0, 1.0], [1.1, 2.2, 1.1])["decision"] == "int8"
    assert decide([1.2, 2.4, 1.2], [1.0, 2.0, 1.0])["decision"] == "float"
    assert decide([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])["decision"] == "int8"  # equal: never measured slower
    # the files' own medians would call int8 faster (slow fp32 rounds); round by round it is slower
    assert decide([1.05, 1.05, 1.05, 3.15, 3.15], [1.0, 1.0, 1.0, 3.0, 3.0])["decision"] == "float"


def _outlier_case(ckpt, work, unit="stage3.1", factor=256.0):
    """(checkpoint, data spec): the checkpoint with one channel of ``unit``'s first 1x1 conv (after BN
    and ReLU) scaled by ``factor`` and its depthwise conv's weights for that channel divided by it (the
    same function in fp32, but the per-tensor uint8 scale of that activation is set by the outlier
    channel, so every other channel keeps a few levels in int8), and the digits test images labelled
    with the fp32 model's own answers (fp32 scores 100% on them and every int8 flip is a lost point).
    The shared checkpoints are one-epoch runs whose classifier answers one class for every image, so its
    fc is first refitted on the network's own features (a linear probe on the training split, seconds)."""
    from shufflenet_edge.checkpoint import save_checkpoint
    from shufflenet_edge.data import calibration_array, make_dataset
    from shufflenet_edge.models import create_model

    net = create_model(checkpoint=ckpt).eval()
    train = make_dataset("digits", "train", (32, 32), net.edge_meta["preprocessing"])
    feats = []
    hook = net.pool.register_forward_hook(lambda m, i, o: feats.append(o.detach()))
    with torch.no_grad():
        net(torch.stack([train[i][0] for i in range(len(train))]))
    hook.remove()
    y_train = torch.tensor([int(train[i][1]) for i in range(len(train))])
    opt = torch.optim.Adam(net.fc.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net.fc(feats[0]), y_train).backward()
        opt.step()
    branch = net.get_submodule(f"{unit}.branch2")
    x = calibration_array("digits", (32, 32), 360, net.edge_meta["preprocessing"], split="test")
    seen = []
    hook = branch[2].register_forward_hook(lambda m, i, o: seen.append(o.detach().amax(dim=(0, 2, 3))))
    with torch.no_grad():
        before = net(torch.from_numpy(x))
    hook.remove()
    c = int(seen[0].argmax())  # the most active channel: scaling a dead one would change nothing
    with torch.no_grad():
        branch[1].weight[c] *= factor
        branch[1].bias[c] *= factor
        branch[3].weight[c] /= factor
        after = net(torch.from_numpy(x))
    assert torch.allclose(before, after, atol=1e-3 * float(before.abs().max())), "the rewrite changed the fp32 model"
    labels = after.argmax(1).numpy()
    assert len(set(labels.tolist())) >= 3, np.bincount(labels)  # answers that depend on the image
    # the quarter of images answered by the narrowest margin go: a head refitted on one-epoch features
    # has small margins, and there int8 noise anywhere in the network flips answers (measured: without
    # the outlier pair, 6.7% flips on all 360 images, none on the other 270)
    top2 = np.sort(after.numpy(), 1)[:, -2:]
    keep = top2[:, 1] - top2[:, 0] >= np.percentile(top2[:, 1] - top2[:, 0], 25)
    np.save(work / "x.npy", x[keep])
    np.save(work / "y.npy", labels[keep].astype(np.int64))
    return save_checkpoint(work / "outlier.pt", net.edge_meta, net.state_dict()), f"npy:{work / 'x.npy'},{work / 'y.npy'}"


@pytest.mark.slow
def test_keep_fp32_auto_brings_an_outlier_model_within_the_bound(cli, trained_ckpts, tmp_path):
    """Plain int8 loses more than a point on a model with an outlier channel; --keep-fp32 auto keeps
    a few layers float (not most) and the drop measured on the data is within 1 point."""
    import json

    import onnx

    ckpt, data = _outlier_case(trained_ckpts["v2_1.0x"], tmp_path)
    r = cli("export", "--checkpoint", ckpt, "--format", "onnx", "--precision", "int8", "--calib", "digits",
            "--calib-size", "32", "--keep-fp32", "auto", "--max-drop", "1.0", "--data", data, "--int8-policy", "all",
            "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "v2_1.0x_32_int8.onnx"
    side = json.loads(path.with_name(path.name + ".json").read_text())
    auto = side["keep_fp32_auto"]
    assert auto["fp32_top1"] >= 0.99, auto  # the labels are its own answers
    assert auto["fp32_top1"] - auto["int8_top1_plain"] > 0.01, auto  # plain int8 loses more than 1 point
    assert auto["drop_pts"] <= 1.0 and auto["drop_pts"] == round((auto["fp32_top1"] - auto["int8_top1"]) * 100, 3)
    assert 1 <= len(auto["kept_fp32"]) <= auto["ranked_layers"] // 4, auto
    assert side["kept_fp32"] == auto["kept_fp32"] and side["int8_request"]["keep_fp32"] == ["auto"]
    assert auto["images"] == 270 and auto["tried"][0]["float_layers"] == 0
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    int8_convs = [n for n in convs if n.input[1].endswith("_DequantizeLinear_Output")]
    assert len(int8_convs) >= 0.8 * len(convs)  # most layers stay int8
    from shufflenet_edge.evaluate import evaluate

    # what edge eval measures (its engine may use other threads: one borderline image either way)
    assert abs(evaluate(artifact=path, data=data)["top1"] - auto["int8_top1"]) <= 1 / 270 + 1e-9
    assert "--keep-fp32 auto on npy:" in r.stdout


@pytest.mark.slow
def test_quantize_report_tflite_ranks_v2_layers(exported, trained_ckpts, tmp_path):
    """TFLite: every layer's int8 output against the fp32 file's inside the fully quantized network, ranked
    by the dB it loses; the shared files (the int8 one is NHWC) are reused, so nothing is converted."""
    import json

    from shufflenet_edge.complexity import measure
    from shufflenet_edge.models import create_model
    from shufflenet_edge.quant.sensitivity import markdown, quantize_report

    files = (exported("v2_1.0x", "tflite", "fp32").path, exported("v2_1.0x", "tflite", "int8").path)
    out = tmp_path / "report"
    rep = quantize_report(trained_ckpts["v2_1.0x"], format="tflite", calib="digits", calib_size=8, n_images=4, out=out,
                          files=files)
    rows = rep["layers"]
    assert rep["model"] == "v2_1.0x" and rep["format"] == "tflite" and len(rows) > 40
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {"conv1x1", "dwconv", "fc", "concat", "shuffle"} <= {r["kind"] for r in rows}, {r["kind"] for r in rows}
    names = {layer.name: layer.kind for layer in measure(create_model(checkpoint=trained_ckpts["v2_1.0x"])).layers}
    convs = [r for r in rows if r["kind"] in ("conv", "conv1x1", "dwconv", "fc")]
    assert len(convs) > 30 and all(r["name"] in names for r in convs)  # the names `edge info` prints
    added = [r["sqnr_added_db"] for r in rows if r["sqnr_added_db"] is not None]
    assert len(added) > 30 and added == sorted(added, reverse=True)
    finite = [r["sqnr_full_db"] for r in rows if r["sqnr_full_db"] is not None]
    assert finite and all(-20 < v < 100 for v in finite) and all(-1.0 <= r["cosine_full"] <= 1.0 for r in rows)
    assert (out / "quantize_report.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "quantize_report.json").read_text())["ranked_by"].startswith("sqnr_added_db")
    assert "dB lost in the layer" in markdown(rep)


@pytest.mark.slow
def test_another_calibration_size_is_not_up_to_date(tmp_path):
    """The same file name with another --calib-size is another export: refused without --overwrite,
    never reported up to date."""
    from shufflenet_edge.errors import EdgeError
    from shufflenet_edge.export import export

    args = dict(model="v2_0.5x", format="onnx", precision="int8", input_size=32, num_classes=10, out=tmp_path,
                quiet=True, int8_policy="all")
    export(calib_size=8, **args)
    assert export(calib_size=8, **args).up_to_date
    with pytest.raises(EdgeError, match="exists"):
        export(calib_size=16, **args)
    assert not export(calib_size=16, overwrite=True, **args).up_to_date
