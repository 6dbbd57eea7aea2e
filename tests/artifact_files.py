"""Small real artifacts and checks shared by the validation and fault tests: hand-built ONNX
graphs (run by the real onnxruntime, no conversion needed) and the one-line-error assertion."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GOOD_SIDE = {"model": "tiny", "format": "onnx", "precision": "fp32", "input_size": [16, 16], "layout": "nchw",
             "num_classes": 10, "labels": None, "macs": 480,
             "preprocessing": {"channel_order": "RGB", "pixel_scale": 255.0, "mean": [0.3, 0.3, 0.3],
                               "std": [0.3, 0.3, 0.3]}}


def image_model(path, shape=(1, 3, 16, 16), classes=10, metadata: dict | None = None):
    """A real (if tiny) image classifier: global average pool -> matmul to ``classes`` logits."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [shape[0], classes])
    ch = shape[1] if isinstance(shape[1], int) else 3
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((ch, classes)).astype(np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["logits"])]
    proto = helper.make_model(helper.make_graph(nodes, "img", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 18)])
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))
    return path


def identity_model(path, shape, dtype):
    x = helper.make_tensor_value_info("input", dtype, list(shape))
    y = helper.make_tensor_value_info("out", dtype, list(shape))
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["out"])], "odd", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def one_error_line(r, code=2, *words):
    """Exit ``code``, stderr exactly one `error:` line (no traceback) containing ``words``."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("note:", "warning:"))]
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def snapshot(folder):
    return {p: (os.path.getsize(os.path.join(folder, p)), open(os.path.join(folder, p), "rb").read())
            for p in sorted(os.listdir(folder))}
