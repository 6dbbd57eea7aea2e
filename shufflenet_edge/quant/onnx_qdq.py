"""QDQ graph surgery for the int8 reports: expose layer outputs, and switch Q/DQ pairs off.

A QDQ file marks each quantized tensor T with QuantizeLinear -> DequantizeLinear (its consumers read
the DQ output) and each quantized weight with an int8 initializer -> DequantizeLinear. Rewiring a
pair's consumers back to T (or to the fp32 weight) makes that tensor float again, so one fully
quantized file gives the "this layer alone quantized" variants without calibrating again.
These models run with onnxruntime's graph optimizations off: quantize-dequantize simulated in
float, the same on every CPU, which is what a sensitivity ranking should measure.
"""
from __future__ import annotations

import numpy as np

from . import onnx_layers


def session(proto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def with_outputs(proto, names):
    """A copy of ``proto`` that also outputs the tensors ``names`` (float, shape left open)."""
    import onnx
    from onnx import TensorProto, helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    have = {o.name for o in out.graph.output}
    for name in names:
        if name not in have:
            out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            have.add(name)
    return out


def run(proto, x: np.ndarray, names) -> dict[str, np.ndarray]:
    """The tensors ``names`` (and the logits, key ``None``) for every image of ``x``, stacked."""
    sess = session(with_outputs(proto, names))
    input_name = sess.get_inputs()[0].name
    outputs = [proto.graph.output[0].name, *names]
    got = [sess.run(outputs, {input_name: x[i:i + 1]}) for i in range(len(x))]
    res = {name: np.concatenate([g[k + 1] for g in got]) for k, name in enumerate(names)}
    res[None] = np.concatenate([g[0] for g in got])
    return res


def dequantized_output(proto, tensor: str) -> str:
    """The name the int8 graph's consumers read ``tensor`` under (its DQ output), or ``tensor``."""
    by_input = {}
    for n in proto.graph.node:
        for i in n.input:
            by_input.setdefault(i, []).append(n)
    for q in by_input.get(tensor, []):
        if q.op_type == "QuantizeLinear":
            for d in by_input.get(q.output[0], []):
                if d.op_type == "DequantizeLinear":
                    return d.output[0]
    return tensor


def only_quantized(qdq, fp32, keep_nodes: set[str]):
    """A copy of the QDQ model where only the Q/DQ pairs that touch ``keep_nodes`` (their inputs,
    weights and outputs) stay; every other tensor and weight is float again."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    fp32_inits = {t.name: t for t in fp32.graph.initializer}
    kept_tensors = {t for n in graph.node if n.name in keep_nodes for t in (*n.input, *n.output)}
    qdq_names = {n.name for n in graph.node}
    fp32_producer = {o: n for n in fp32.graph.node for o in n.output}
    rename: dict[str, str] = {}
    relus = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = producer.get(node.input[0])
        if src is not None and src.op_type == "QuantizeLinear":  # an activation pair T -> Q -> DQ
            if node.output[0] not in kept_tensors and src.input[0] not in kept_tensors:
                tensor = src.input[0]
                was = fp32_producer.get(tensor)
                if was is not None and was.op_type == "Relu" and was.name not in qdq_names:
                    # the quantizer dropped this ReLU (uint8 clips at zero): float needs it back
                    relus.append(onnx.helper.make_node("Relu", [tensor], [tensor + "_float_relu"], name=was.name))
                    tensor += "_float_relu"
                rename[node.output[0]] = tensor
        elif node.output[0] not in kept_tensors:  # a weight or bias: back to the fp32 initializer
            rename[node.output[0]] = None
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name not in rename:
                continue
            if rename[name] is not None:
                node.input[k] = rename[name]
                continue
            original = fp32_nodes.get(node.name)
            if original is None or k >= len(original.input) or original.input[k] not in fp32_inits:
                continue  # cannot tell which float weight: leave it quantized
            w = original.input[k]
            if w not in {t.name for t in graph.initializer}:
                graph.initializer.append(fp32_inits[w])
            node.input[k] = w
    # the quantizer may give a DQ output the float weight's own name (biases): drop those DQs
    floats = {t.name for t in graph.initializer}
    nodes = [n for n in graph.node if not (n.op_type == "DequantizeLinear" and n.output[0] in floats)]
    del graph.node[:]
    graph.node.extend(nodes)
    for relu in relus:  # after its input's producer, before its readers
        at = next(i for i, n in enumerate(graph.node) if relu.input[0] in n.output)
        graph.node.insert(at + 1, relu)
    _prune(graph)
    return model


def _prune(graph) -> None:
    """Drop nodes whose outputs nobody reads (the bypassed Q/DQ pairs), and unused initializers."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def quantized_layers(qdq, fp32) -> list[dict]:
    """The fp32 file's layers (onnx_layers.layers; the quantizer keeps node names) that read at
    least one dequantized tensor in the QDQ file. ``output`` becomes a tensor both files have:
    the quantizer drops a ReLU after a conv (the uint8 range clips at zero), and with it the
    conv's own output name, so such a conv is compared after its ReLU."""
    dq_out = {n.output[0] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    by_name = {n.name: n for n in qdq.graph.node}
    in_qdq = {o for n in qdq.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in fp32.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    for layer in onnx_layers.layers(fp32):
        if not any(i in dq_out for name in layer["nodes"] if name in by_name for i in by_name[name].input):
            continue
        tensor = layer["output"]
        while tensor not in in_qdq and len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].name not in by_name:
            tensor = consumers[tensor][0].output[0]
        if tensor in in_qdq:
            out.append({**layer, "output": tensor})
    return out
