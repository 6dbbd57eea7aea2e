"""Per-layer int8 error of a TFLite int8 file against its fp32 file (``edge quantize-report --format tflite``).

Both files run in ai-edge-litert with every intermediate tensor kept
(``experimental_preserve_all_tensors``). Their operators are paired by aligning the two op
sequences on (op type, output shape), the int8 file's own QUANTIZE/DEQUANTIZE ops left out, and
each op belongs to the model module its int8 tensor's name records (litert-torch writes the torch
module path into tensor names; fused ReLU/BN locations are passed over for the op's own module).
The files run without the XNNPACK delegate (its fused graph keeps no intermediate tensors).
A layer's output is its last op's; an int8 tensor is dequantized with its own scale and zero point.

A TFLite file has no per-tensor switch that would quantize one layer alone (the ONNX report's
"alone" columns rewire Q/DQ pairs), so layers are ranked by the error each adds inside the fully
quantized network: ``sqnr_added_db`` = the worst SQNR among the layer's inputs less the SQNR of its
output (dB of signal quality the layer loses; larger = more sensitive). Statistics are accumulated
image by image, so no image's tensors are kept.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from .layer_errors import finite_db

_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
_NOT_PAIRED = ("QUANTIZE", "DEQUANTIZE")
_WEIGHT_CLASSES = ("Conv2d", "Linear")
_FUSED_CLASSES = ("ReLU", "ReLU6", "BatchNorm2d")  # folded into the op they follow


def _ops(path) -> tuple[list[dict], list[int]]:
    """The subgraph's operators in order: {op, inputs, output, name, shape}, and the graph inputs."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    graph = model.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        out = op.Outputs(0)
        tensor = graph.Tensors(out)
        ops.append({"op": names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"),
                    "inputs": [op.Inputs(j) for j in range(op.InputsLength()) if op.Inputs(j) >= 0],
                    "output": out, "name": (tensor.Name() or b"").decode(errors="replace"),
                    "input_names": [(graph.Tensors(op.Inputs(j)).Name() or b"").decode(errors="replace")
                                    for j in range(op.InputsLength()) if op.Inputs(j) >= 0],
                    "shape": tuple(int(tensor.Shape(j)) for j in range(tensor.ShapeLength()))})
    return ops, [graph.Inputs(j) for j in range(graph.InputsLength())]


def module_of(tensor_name: str, weighted: bool) -> str | None:
    """The torch module path (``stage2.0.gconv1.0``) a litert-torch tensor name records, or None.
    A name lists ``;``-separated locations, each ``Class_attr`` components joined by ``/``; for a
    conv or fc op (``weighted``) the location of the Conv2d/Linear module is the layer."""
    paths = []
    for loc in (e for e in tensor_name.split(";") if "/" in e):
        parts = []
        for comp in loc.split("/"):
            last = comp.rsplit(".", 1)[-1]
            if "_" in last:
                parts.append(tuple(last.split("_", 1)))
        if parts:
            paths.append(parts)
    if not paths:
        return None
    if weighted:
        chosen = next((p for p in paths if p[-1][0] in _WEIGHT_CLASSES), None)
    else:  # an add with its ReLU fused names the ReLU first: the layer is the add
        chosen = next((p for p in paths if p[-1][0] not in _FUSED_CLASSES), None)
    attrs = [attr for _, attr in (chosen or paths[0])]
    if attrs and attrs[0] == "inner":  # the NHWC wrapper of export(layout="nhwc")
        attrs = attrs[1:]
    return ".".join(attrs) or None


def _align(a: list[dict], b: list[dict]) -> list[tuple[int, int]]:
    """Index pairs (op of ``a``, op of ``b``) with the same type and output shape, in order."""
    ia = [i for i, o in enumerate(a) if o["op"] not in _NOT_PAIRED]
    ib = [i for i, o in enumerate(b) if o["op"] not in _NOT_PAIRED]
    sa = [(a[i]["op"], a[i]["shape"]) for i in ia]
    sb = [(b[i]["op"], b[i]["shape"]) for i in ib]
    pairs = []
    for block in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_matching_blocks():
        pairs += [(ia[block.a + k], ib[block.b + k]) for k in range(block.size)]
    return pairs


class _Runner:
    """One file in the interpreter, every tensor kept; tensors come back float (dequantized)."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # without the default XNNPACK delegate: a delegated graph never writes its intermediate tensors
        self.it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.details = {d["index"]: d for d in self.it.get_tensor_details()}
        shape = list(self.inp["shape"])
        self.nhwc = shape[-1] == 3 and shape[1] != 3

    def feed(self, x_nchw: np.ndarray) -> np.ndarray:
        """Run one image (1 x 3 x H x W float); returns the input as the file saw it, dequantized."""
        x = x_nchw.transpose(0, 2, 3, 1) if self.nhwc else x_nchw
        dtype = self.inp["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zero = self.inp["quantization"]
            info = np.iinfo(dtype)
            q = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
            self.it.set_tensor(self.inp["index"], q)
            self.it.invoke()
            return (q.astype(np.float64) - zero) * scale
        self.it.set_tensor(self.inp["index"], np.ascontiguousarray(x, dtype=dtype))
        self.it.invoke()
        return x

    def tensor(self, index: int) -> np.ndarray:
        t = self.it.get_tensor(index)
        if not np.issubdtype(t.dtype, np.integer):
            return t.astype(np.float64)
        scale, zero = self.details[index]["quantization"]
        return (t.astype(np.float64) - zero) * (scale or 1.0)


class _Stats:
    """Running sums for SQNR and cosine of one tensor pair over the images."""

    def __init__(self):
        self.signal = self.error = self.dot = self.got2 = 0.0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        ref, got = ref.ravel(), got.ravel()
        self.signal += float(ref @ ref)
        self.error += float((ref - got) @ (ref - got))
        self.dot += float(ref @ got)
        self.got2 += float(got @ got)

    @property
    def sqnr_db(self) -> float:
        return float("inf") if self.error == 0 else 10.0 * np.log10(max(self.signal, 1e-30) / self.error)

    @property
    def cosine(self) -> float:
        return self.dot / max(np.sqrt(self.signal * self.got2), 1e-30)


def layer_errors(fp32_path, int8_path, x: np.ndarray, kinds: dict[str, str] | None = None) -> list[dict]:
    """Per layer of the int8 file (graph order): SQNR and cosine of its output in the fully quantized
    network against the fp32 file's, and the dB it loses against its inputs. ``x``: float32 NCHW
    images, preprocessed; ``kinds``: module name -> kind (``edge info``'s), for the ``kind`` column."""
    from ..errors import UsageError

    f_ops, _ = _ops(fp32_path)
    q_ops, q_inputs = _ops(int8_path)
    pairs = _align(f_ops, q_ops)
    layers: dict[str, dict] = {}
    for fi, qi in pairs:
        op = q_ops[qi]
        weighted = op["op"] in _CONV_OPS
        # a graph output is renamed (serving_default_...): a conv or fc is then named by its weights
        names = [op["name"], f_ops[fi]["name"]] + (f_ops[fi]["input_names"][1:] + op["input_names"][1:] if weighted else [])
        module = next((m for m in (module_of(n, weighted) for n in names) if m), None)
        if module is None:
            continue  # layout transposes the converter added: no module of the model
        layer = layers.setdefault(module, {"name": module, "ops": set(), "q_ops": []})
        layer["ops"].add(op["op"])
        layer["q_ops"].append(qi)
        layer["pair"] = (fi, qi)
    if not layers:
        raise UsageError(f"no layer of {int8_path} could be matched to {fp32_path} (not files of one model?)")
    fp32, int8 = _Runner(fp32_path), _Runner(int8_path)
    stats = {qi: _Stats() for fi, qi in pairs}
    input_stats = _Stats()
    for i in range(len(x)):
        fp32.feed(x[i:i + 1])
        seen = int8.feed(x[i:i + 1])
        input_stats.add(x[i:i + 1].transpose(0, 2, 3, 1) if int8.nhwc else x[i:i + 1], seen)
        for fi, qi in pairs:
            ref, got = fp32.tensor(f_ops[fi]["output"]), int8.tensor(q_ops[qi]["output"])
            if ref.shape == got.shape:
                stats[qi].add(ref, got)
    producer = {op["output"]: k for k, op in enumerate(q_ops)}

    def sqnr_of(tensor: int, depth: int = 0) -> float | None:
        """SQNR of an int8 activation: its pair's, or through unpaired ops (QUANTIZE) to one."""
        if tensor in q_inputs:
            return input_stats.sqnr_db
        k = producer.get(tensor)
        if k is None or depth > 8:
            return None  # a constant (weights, shapes)
        if k in stats and stats[k].signal > 0:
            return stats[k].sqnr_db
        got = [s for t in q_ops[k]["inputs"] if (s := sqnr_of(t, depth + 1)) is not None]
        return min(got) if got else None

    rows = []
    for layer in layers.values():
        out = stats[layer["pair"][1]]
        inside = {q_ops[k]["output"] for k in layer["q_ops"]}
        first = q_ops[layer["q_ops"][0]]
        ins = [s for t in first["inputs"] if t not in inside and (s := sqnr_of(t)) is not None]
        added = min(ins) - out.sqnr_db if ins and np.isfinite(min(ins)) and np.isfinite(out.sqnr_db) else None
        kind = (kinds or {}).get(layer["name"]) or sorted(layer["ops"])[0].lower()
        rows.append({"name": layer["name"], "kind": kind, "ops": sorted(layer["ops"]),
                     "sqnr_full_db": finite_db(out.sqnr_db), "cosine_full": round(out.cosine, 6),
                     "sqnr_added_db": None if added is None else round(float(added), 3)})
    return rows


def rank_added(rows: list[dict]) -> list[dict]:
    """Worst first: most dB lost in the layer (None, not measurable, last)."""
    ranked = sorted(rows, key=lambda r: (r["sqnr_added_db"] is None, -(r["sqnr_added_db"] or 0.0)))
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked
