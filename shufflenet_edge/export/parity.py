"""Run the written file in its own runtime and compare with the PyTorch model on fixed inputs."""
from __future__ import annotations

import numpy as np

FP32_MAX_ABS_DIFF = 1e-4
# float32 rounding grows with the values: a stack without ReLU (the v2 paper's G4 micro-benchmark)
# outputs ~1e3, where a reordered sum differs by ~1e-4 with nothing wrong. So the bound is
# allclose-style: absolute plus relative to the largest reference value.
FP32_REL_DIFF = 1e-5


def fp32_tolerance(parity: dict) -> float:
    return FP32_MAX_ABS_DIFF + FP32_REL_DIFF * parity.get("max_abs_ref", 0.0)
N_INPUTS = 8


def parity_inputs(input_size, calib: np.ndarray | None = None, n: int = N_INPUTS, seed: int = 0) -> np.ndarray:
    """Real images when calibration data is at hand (quantized files are judged on what they
    will see), else fixed standard-normal inputs (what preprocessed images roughly look like)."""
    if calib is not None and len(calib):
        return np.ascontiguousarray(calib[:n], dtype=np.float32)
    h, w = input_size
    return np.random.default_rng(seed).standard_normal((n, 3, h, w)).astype(np.float32)


def compare(reference: np.ndarray, got: np.ndarray) -> dict:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = got.reshape(len(got), -1).astype(np.float64)
    cos = (ref * out).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1), 1e-30)
    return {"max_abs_diff": float(np.abs(ref - out).max()), "max_abs_ref": float(np.abs(ref).max()),
            "cosine": float(cos.mean()),
            "top1_agreement": float((ref.argmax(1) == out.argmax(1)).mean()), "n": int(len(ref))}


def check(model, path, x_nchw: np.ndarray, metadata: dict, engine: str | None = None) -> dict:
    """Parity figures of ``path`` (run by shufflenet_edge.runtime) against ``model`` on ``x_nchw``."""
    import torch

    from ..runtime import open_engine

    with torch.no_grad():
        reference = model(torch.from_numpy(x_nchw)).numpy()
    eng = open_engine(path, engine=engine, threads=1, metadata=metadata)
    got = eng.predict(x_nchw)
    result = compare(reference, got)
    result["engine"] = eng.name
    return result
