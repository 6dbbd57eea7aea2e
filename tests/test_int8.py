"""int8 beyond the export matrix: the ONNX int8 file gives the same answers on every x86 CPU class.

The emulated run is the expensive part (qemu runs onnxruntime some hundreds of times slower), so
it takes a fixed, evenly spaced subset of the digits test split (ISA_IMAGES of its 360 images) and
the two models run in parallel.
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
        assert (ref.argmax(1) == native.argmax(1)).mean() >= 0.97, name  # the model is trained: answers matter
