"""ONNX: torch.onnx.export (torch.export based, opset 18) -> onnxsim -> full onnx.checker check,
then ONNX Runtime's own quantizers for int8 / dynamic and a float16 rewrite for fp16."""
from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 18
INPUT, OUTPUT = "input", "logits"


# The last fp32 graph this process exported, keyed by everything that decides it. An int8 file
# quantizes the fp32 graph; when the fp32 file of the same module, weights and input was made just
# before in this process (edge reproduce converts a model's fp32 and int8 ONNX files in that order in
# one worker), its graph is reused instead of exported again (~12 CPU seconds of ~17). One entry.
_LAST_GRAPH: dict = {}


def _graph_key(job) -> str:
    import hashlib

    h = hashlib.sha256(f"{job.model!r}|{tuple(job.sample.shape)}|{job.batch}".encode())
    for name, t in job.model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _fp32_proto(job):
    import onnx

    key = _graph_key(job)
    if key not in _LAST_GRAPH:
        graph = _export_fp32(job)
        _LAST_GRAPH.clear()
        _LAST_GRAPH[key] = graph
    out = onnx.ModelProto()  # a copy: the callers change theirs (metadata, the float16 rewrite)
    out.CopyFrom(_LAST_GRAPH[key])
    return out


def _export_fp32(job):
    import onnx
    import onnxsim
    import torch

    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if job.batch == "dynamic" else None
    # tracing with batch 1 lets torch.export specialize the batch to a constant (it does so
    # behind the NHWC permute), and torch.onnx then silently falls back to a static export
    sample = job.sample.repeat(2, 1, 1, 1) if dynamic else job.sample
    program = torch.onnx.export(job.model, (sample,), None, dynamo=True, opset_version=OPSET,
                                input_names=[INPUT], output_names=[OUTPUT], dynamic_shapes=dynamic,
                                optimize=True, verify=False)
    proto = program.model_proto
    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified model")
    from .onnx_int8 import keep_scopes

    keep_scopes(proto, simplified)
    _give_convs_biases(simplified)
    onnx.checker.check_model(simplified, full_check=True)
    if dynamic and not simplified.graph.input[0].type.tensor_type.shape.dim[0].dim_param:
        raise RuntimeError("the exporter could not keep the batch dimension dynamic")
    return simplified


def _give_convs_biases(proto) -> None:
    """A zero bias for every Conv the exporter wrote without one (a BatchNorm with zero shift and
    mean folds to no bias: every untrained model, which is what the latency studies time).
    onnxruntime fuses Conv + Add + Relu into one FusedConv only when the Conv has a bias input, so
    v1's stage-2 units (grouped 1x1 convs too narrow per group for the NCHWc path) ran the sum and
    the ReLU as two extra passes: 1.03-1.06x the time of a legacy-exported file of the same model,
    which keeps zero biases."""
    import numpy as np
    from onnx import numpy_helper

    shapes = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type != "Conv" or (len(node.input) > 2 and node.input[2]) or node.input[1] not in shapes:
            continue
        bias = numpy_helper.from_array(np.zeros(shapes[node.input[1]][0], np.float32), f"{node.input[1]}.zero_bias")
        proto.graph.initializer.append(bias)
        if len(node.input) > 2:
            node.input[2] = bias.name
        else:
            node.input.append(bias.name)


def _toposorted(proto):
    """The float16 rewrite appends its input casts at the end of the node list; ONNX requires
    (and onnx.checker checks) topological order, so restore it."""
    graph = proto.graph
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:
            raise RuntimeError("float16 graph has a cycle or a dangling input")
        for n in done:
            ordered.append(n)
            ready.update(n.output)
        pending = rest
    nodes = [type(n)() for n in ordered]
    for dst, src in zip(nodes, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def convert(job) -> dict:
    import onnx

    proto = _fp32_proto(job)
    info = {"opset": OPSET, "converter": "torch.onnx.export(dynamo=True) + onnxsim"}
    if job.precision == "fp32":
        onnx.save(proto, str(job.path))
        return info
    if job.precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        half = _toposorted(convert_float_to_float16(proto, keep_io_types=True))
        onnx.checker.check_model(half, full_check=True)
        onnx.save(half, str(job.path))
        info["converter"] += " + onnxruntime float16 (keep_io_types)"
        return info
    fp32 = Path(job.path).with_name(Path(job.path).stem + ".fp32.onnx")
    onnx.save(proto, str(fp32))
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if job.precision == "int8":
        from .onnx_mixed import quantize_layers

        info.update(quantize_layers(proto, fp32, job))
        info["converter"] += (" + onnxruntime quantize_static (QDQ, uint8 activations, uint8 "
                              f"per-{job.granularity} weights)")
    elif job.precision == "dynamic":
        quantize_dynamic(str(fp32), str(job.path), weight_type=QuantType.QInt8)
        info["converter"] += " + onnxruntime quantize_dynamic (int8 weights)"
    else:
        raise ValueError(job.precision)
    fp32.unlink()
    return info


def embed_metadata(path, metadata: dict) -> None:
    """Copy the sidecar into the file's metadata_props (strings; non-strings as JSON)."""
    import json

    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))
