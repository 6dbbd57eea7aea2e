"""ExecuTorch ``.pte``: torch.export -> XNNPACK rewrites (``xnnpack_rewrite``) -> XnnpackPartitioner
-> ``.pte``; int8 through PT2E with ExecuTorch's XNNPACKQuantizer (symmetric, per-channel
weights), calibrated on the same data as every other int8 export.

The sidecar says how much of the graph XNNPACK took: ``delegation`` = {delegated_nodes,
undelegated_ops: {op: count}, rewrites}. Undelegated ops run in ExecuTorch's portable kernels.
"""
from __future__ import annotations

import collections
import operator

# Ops every lowered program keeps outside the delegate: they only hand tensors in and out.
IO_OPS = {"executorch_call_delegate", "getitem", "alloc", "_to_dim_order_copy.default"}


def _op_name(target) -> str:
    name = getattr(target, "__name__", str(target))
    return name.split("aten.")[-1]


def delegation_summary(edge_program) -> dict:
    """How many graph nodes the XNNPACK delegates hold, and which ops stayed outside."""
    gm = edge_program.graph_module
    delegated, outside = 0, collections.Counter()
    for node in gm.graph.nodes:
        if node.op == "get_attr" and node.target.startswith("lowered_module"):
            lowered = getattr(gm, node.target)
            delegated += sum(1 for n in lowered.original_module.graph.nodes if n.op == "call_function")
        elif node.op == "call_function" and node.target is not operator.getitem:
            name = _op_name(node.target)
            if name not in IO_OPS:
                outside[name] += 1
    return {"delegated_nodes": delegated, "undelegated_ops": dict(sorted(outside.items()))}


def delegation_line(delegation: dict) -> str:
    """The sidecar's ``delegation`` in one line (``edge export`` prints it for every .pte)."""
    counted = lambda ops: ", ".join(f"{op} x{n}" for op, n in ops.items())  # noqa: E731
    outside = counted(delegation.get("undelegated_ops") or {}) or "none (input/output handling only)"
    rewrites = delegation.get("rewrites") or {}
    return (f"XNNPACK delegation: {delegation.get('delegated_nodes', 0)} nodes delegated; outside XNNPACK: {outside}"
            + (f"; rewritten for XNNPACK: {counted(rewrites)}" if rewrites else ""))


def _quantized(graph, job):
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(job.calib)):  # the exported graph has batch 1
            graph(torch.from_numpy(job.calib[i:i + 1]))
    return convert_pt2e(graph)


def convert(job) -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from .xnnpack_rewrite import rewrite_for_xnnpack

    if job.batch != 1:
        raise ValueError("ExecuTorch files are exported with a fixed batch of 1")
    graph = torch.export.export(job.model, (job.sample,)).module()
    rewrites = rewrite_for_xnnpack(graph)
    info = {"converter": "torch.export + ExecuTorch XnnpackPartitioner"}
    if job.precision == "int8":
        graph = _quantized(graph, job)
        info["converter"] += " + PT2E XNNPACKQuantizer (symmetric, per-channel int8)"
    elif job.precision != "fp32":
        raise ValueError(f"no {job.precision} recipe for ExecuTorch")
    program = torch.export.export(graph, (job.sample,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    info["delegation"] = {**delegation_summary(edge.exported_program()), "rewrites": rewrites}
    with open(job.path, "wb") as f:
        f.write(edge.to_executorch().buffer)
    return info
