"""TFLite through litert-torch (no TensorFlow): fp32 directly; int8 full-integer through PT2E
(XNNPACK-style symmetric config, per-channel weights unless --weight-granularity tensor, calibrated)
so input and output tensors are int8;
fp16 (weight-only) and dynamic range by ai-edge-quantizer recipes applied to the fp32 file."""
from __future__ import annotations

from pathlib import Path

from .metadata import TFLITE_METADATA_NAME as METADATA_NAME

# ai-edge-quantizer's float casting: weights stored as float16, compute stays float32.
FP16_RECIPE = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
                "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                              "compute_precision": "FLOAT", "explicit_dequantize": True}}]


def _int8(job) -> int:
    """Writes the int8 file; returns how many padded max-pools were rewritten (xnnpack_rewrite)."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    from .xnnpack_rewrite import zero_pad_max_pools

    graph = torch.export.export(job.model, (job.sample,)).module()
    rewritten = zero_pad_max_pools(graph)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=job.granularity == "channel"))
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(job.calib)):  # the exported graph has batch 1
            graph(torch.from_numpy(job.calib[i:i + 1]))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    litert_torch.convert(graph, (job.sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(job.path))
    return rewritten


def input_quantization(path) -> dict | None:
    """The input tensor's (scale, zero point, dtype) for integer inputs, else None."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    if not np.issubdtype(detail["dtype"], np.integer):
        return None
    scale, zero_point = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point), "dtype": np.dtype(detail["dtype"]).name}


def convert(job) -> dict:
    import litert_torch

    info = {"converter": "litert-torch"}
    if job.precision == "int8":
        pools = _int8(job)
        info["converter"] += f" PT2E (symmetric per-{job.granularity} int8)"
        if pools:
            info["rewrites"] = {"max_pool_zero_pad": pools}
    else:
        fp32 = Path(job.path) if job.precision == "fp32" else Path(job.path).with_name(Path(job.path).stem + ".fp32.tflite")
        litert_torch.convert(job.model, (job.sample,)).export(str(fp32))
        if job.precision != "fp32":
            from ai_edge_quantizer import quantizer as aq
            from ai_edge_quantizer import recipe as recipes

            qt = aq.Quantizer(str(fp32))
            qt.load_quantization_recipe(FP16_RECIPE if job.precision == "fp16" else recipes.dynamic_wi8_afp32())
            qt.quantize().export_model(str(job.path), overwrite=True)
            fp32.unlink()
            info["converter"] += f" + ai-edge-quantizer ({'float16 weights' if job.precision == 'fp16' else 'dynamic_wi8_afp32'})"
    info["input_quantization"] = input_quantization(job.path)
    return info


def embed_metadata(path, metadata: dict) -> None:
    """Store the sidecar in the .tflite flatbuffer's ``metadata`` (name ``shufflenet_edge``), so the
    file describes itself when its sidecar is lost, as ONNX files do through metadata_props."""
    import json

    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        raw = f.read()
    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    # Some writers (ai-edge-quantizer's fp16/dynamic recipes) keep constant data after the flatbuffer and
    # point at it by offset; repacking would drop that tail, so such buffers are brought inside first.
    for buf in model.buffers or []:
        if (buf.offset or 0) > 1:
            buf.data = np.frombuffer(raw[buf.offset:buf.offset + buf.size], dtype=np.uint8)
            buf.offset, buf.size = 0, 0
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())] + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with open(path, "wb") as f:
        f.write(builder.Output())
