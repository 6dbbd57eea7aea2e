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


def per_image_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def compare(reference: np.ndarray, got: np.ndarray) -> dict:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = got.reshape(len(got), -1).astype(np.float64)
    cos = per_image_cosine(ref, out)
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


# The bar a file's output must clear in an engine other than the one that verified it at
# export (OpenVINO on an int8 ONNX file, the sweep's every engine): fp32 the allclose bound
# above, lower precisions a cosine against the reference (quantized files are judged on real
# images where the sidecar names its calibration data).
PASS_COSINE = {"fp16": 0.999, "int8": 0.99, "dynamic": 0.99}


def passed(parity: dict, precision: str | None) -> bool:
    if precision in PASS_COSINE:
        return parity["cosine"] >= PASS_COSINE[precision]
    return parity["max_abs_diff"] <= fp32_tolerance(parity)


def bar(precision: str | None) -> str:
    """The bar in words, for the one-line verdicts."""
    if precision in PASS_COSINE:
        return f"cosine >= {PASS_COSINE[precision]}"
    return f"max abs diff <= {FP32_MAX_ABS_DIFF:g} + {FP32_REL_DIFF:g} x |output|"


def sidecar_inputs(metadata: dict, n: int = N_INPUTS) -> np.ndarray:
    """Parity inputs for a file known only by its sidecar: its calibration images when they can
    be loaded here, else the fixed standard-normal ones."""
    size = metadata.get("input_size") or [224, 224]
    source = (metadata.get("calibration") or {}).get("source")
    if source and source != "random":
        try:
            from ..data import calibration_array

            return calibration_array(source, tuple(size), n, metadata.get("preprocessing"), seed=1)
        except Exception:  # data not at hand on this machine: fall back to the fixed inputs
            pass
    return parity_inputs(tuple(size))


def engine_check(path, engine: str, metadata: dict, reference, **options) -> dict:
    """Parity of ``engine`` on ``path`` against ``reference``: a torch.nn.Module, or the name of
    the engine that verified the file at export. Adds ``engine``, ``reference`` and ``passed``."""
    from ..runtime import open_engine

    x = sidecar_inputs(metadata)
    if isinstance(reference, str):
        want = open_engine(path, engine=reference, threads=1, metadata=metadata).predict(x)
        ref_name = reference
    else:
        import torch

        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        ref_name = "pytorch"
    got = open_engine(path, engine=engine, threads=1, metadata=metadata, **options).predict(x)
    result = compare(want, got)
    result.update(engine=engine, reference=ref_name, passed=passed(result, metadata.get("precision")))
    return result
