"""ncnn: PyTorch -> pnnx -> ``.param`` (the graph, text) + ``.bin`` (the weights).

pnnx traces the model (torch.jit.trace) and writes about ten files beside its input (a
TorchScript copy, pnnx's own graph, an ONNX file, Python scripts: ~36 MB at 224 px); it runs in
a scratch folder and only the ncnn pair is kept. Channel shuffle becomes ncnn's
``ShuffleChannel`` layer, v2's split ``Slice``. ``fp16`` stores the weights as float16 in the
``.bin`` (ncnn computes in float32 on x86). int8 is refused: ncnn's quantization tools
(ncnn2table, ncnn2int8) are not in the ``ncnn`` or ``pnnx`` wheels (``formats.py``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def weights_path(param) -> Path:
    """The ``.bin`` beside a ``.param``."""
    return Path(param).with_suffix(".bin")


def convert(job) -> dict:
    import pnnx

    if job.precision not in ("fp32", "fp16"):
        raise ValueError(f"no {job.precision} recipe for ncnn (see the format table's refusals)")
    if job.batch != 1:
        raise ValueError("ncnn files take one image per call (batch 1)")
    target = Path(job.path)
    scratch = Path(tempfile.mkdtemp(prefix="pnnx.", dir=target.parent))
    try:
        pnnx.export(job.model, str(scratch / "model.pt"), (job.sample,), fp16=job.precision == "fp16")
        os.replace(scratch / "model.ncnn.param", target)
        os.replace(scratch / "model.ncnn.bin", weights_path(target))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"converter": f"pnnx {getattr(pnnx, '__version__', '')}".strip() +
            (" (fp16 weights)" if job.precision == "fp16" else "")}
