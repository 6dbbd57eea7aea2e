"""Which ONNX int8 form is fastest on onnxruntime, and which layer types lose in int8?

For each model (untrained, 224 px, batch 1, 1 thread; latency does not depend on the weights) the
fp32 file and several int8 forms of it are timed in one process, interleaved round by round
(shufflenet_edge.runtime.timing.time_cases), so load from elsewhere hits every case alike; the
table gives each p50 as a ratio to fp32's p50 (below 1: faster than fp32).

Forms: the toolkit's recipe (QDQ, u8 activations, u8 per-channel weights), s8 weights in the 7-bit
and the 8-bit range, QOperator (QLinearConv nodes written by the quantizer),
grouped 1x1 convs split into one conv per group before quantizing, and the recipe with one layer
type kept float at a time (what ``--int8-policy fast`` decides from).

    .venv/bin/python bench/int8_layers.py [--models v2_1.0x v1_g3 ...] [--runs 200] [--out DIR]

Writes DIR/int8_layers.{json,md} (default bench/results). Run it on a quiet machine: the
committed ratios are only as good as the machine was idle.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shufflenet_edge.export import export  # noqa: E402
from shufflenet_edge.export import onnx_int8  # noqa: E402
from shufflenet_edge.io_utils import write_json, write_text  # noqa: E402
from shufflenet_edge.runtime.engines import OnnxRuntimeEngine  # noqa: E402
from shufflenet_edge.runtime.timing import cpu_model, isa_features, time_cases  # noqa: E402

MODELS = ["v1_g3_0.5x", "v1_g3", "v1_g8", "v2_0.5x", "v2_1.0x", "mobilenet_v1_1.0x"]
KEEP_FLOAT_KINDS = ("gconv1x1", "conv1x1", "dwconv")


def split_grouped_1x1(proto):
    """Grouped 1x1 convs as Split -> one conv per group -> Concat (the same function)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w = numpy_helper.to_array(weights[node.input[1]]) if node.op_type == "Conv" and node.input[1] in weights else None
        if w is None or group == 1 or w.shape[1] == 1 or w.shape[2:] != (1, 1):
            nodes.append(node)
            continue
        b = numpy_helper.to_array(weights[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
        per_out = w.shape[0] // group
        split_out = [f"{node.name}_in{g}" for g in range(group)]
        sizes = numpy_helper.from_array(np.full(group, w.shape[1], np.int64), f"{node.name}_sizes")
        graph.initializer.append(sizes)
        nodes.append(helper.make_node("Split", [node.input[0], sizes.name], split_out, axis=1, name=f"{node.name}_split"))
        conv_out = []
        for g in range(group):
            wg = numpy_helper.from_array(w[g * per_out:(g + 1) * per_out], f"{node.input[1]}_g{g}")
            graph.initializer.append(wg)
            inputs = [split_out[g], wg.name]
            if b is not None:
                bg = numpy_helper.from_array(b[g * per_out:(g + 1) * per_out], f"{node.input[1]}_bias_g{g}")
                graph.initializer.append(bg)
                inputs.append(bg.name)
            conv_out.append(f"{node.name}_out{g}")
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "group"}
            nodes.append(helper.make_node("Conv", inputs, [conv_out[-1]], name=f"{node.name}_g{g}", **attrs))
        nodes.append(helper.make_node("Concat", conv_out, list(node.output), axis=1, name=f"{node.name}_concat"))
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto


def forms(fp32: Path, work: Path, calib: np.ndarray) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out = {"fp32": fp32}
    out["int8 recipe (QDQ, u8 weights)"] = work / "recipe.onnx"
    onnx_int8.quantize(fp32, out["int8 recipe (QDQ, u8 weights)"], calib)
    for weights in ("s8_7bit", "s8"):
        out[f"int8 QDQ, {weights} weights"] = work / f"{weights}.onnx"
        onnx_int8.quantize(fp32, out[f"int8 QDQ, {weights} weights"], calib, weights=weights)
    out["int8 QOperator, u8 weights"] = work / "qoperator.onnx"
    quantize_static(str(fp32), str(out["int8 QOperator, u8 weights"]), onnx_int8.calibration_reader(calib),
                    quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8)
    proto = onnx.load(str(fp32))
    kinds = {layer["kind"] for layer in onnx_int8.layers(proto)}
    if "gconv1x1" in kinds:
        split = work / "split_fp32.onnx"
        onnx.save(split_grouped_1x1(proto), str(split))
        out["fp32, grouped 1x1 split per group"] = split
        out["int8 recipe, grouped 1x1 split per group"] = work / "split_int8.onnx"
        onnx_int8.quantize(split, out["int8 recipe, grouped 1x1 split per group"], calib)
    for kind in KEEP_FLOAT_KINDS:
        if kind in kinds:
            path = work / f"float_{kind}.onnx"
            onnx_int8.quantize(fp32, path, calib, exclude_nodes=onnx_int8.nodes_of_kinds(onnx.load(str(fp32)), {kind}))
            out[f"int8 recipe, {kind} kept float"] = path
    return out


def run_model(model: str, size: int, runs: int, work: Path) -> list[dict]:
    r = export(model=model, format="onnx", precision="fp32", input_size=size, out=work, quiet=True)
    calib = np.random.default_rng(0).standard_normal((16, 3, size, size)).astype(np.float32)
    paths = forms(Path(r.path), work, calib)
    engines = {name: OnnxRuntimeEngine(p, threads=1, metadata={}) for name, p in paths.items()}
    x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    timed = time_cases([(e.invoke, e.prepare(x)) for e in engines.values()], runs=runs, warmup=max(3, runs // 20))
    base = timed[0]["latency_ms"]["p50"]
    return [{"model": model, "input_size": size, "form": name, "p50_ms": t["latency_ms"]["p50"],
             "ratio_to_fp32": t["latency_ms"]["p50"] / base, "round_spread": t["rounds"]["spread"], "runs": t["runs"]}
            for name, t in zip(engines, timed)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    import onnxruntime

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="int8_layers.") as tmp:
        for model in args.models:
            rows += run_model(model, args.input_size, args.runs, Path(tmp) / model)
            print(f"{model}: " + ", ".join(f"{r['form']} {r['ratio_to_fp32']:.2f}" for r in rows if r["model"] == model),
                  flush=True)
    meta = {"cpu": cpu_model(), "isa": isa_features(), "onnxruntime": onnxruntime.__version__, "threads": 1,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "runs": args.runs}
    write_json(args.out / "int8_layers.json", {"machine": meta, "rows": rows})
    lines = [f"# ONNX int8 forms vs fp32 on onnxruntime {meta['onnxruntime']}", "",
             f"{meta['cpu']} ({', '.join(meta['isa'])}), 1 thread, batch 1, {args.input_size} px, {args.runs} runs "
             "per form, interleaved. Ratio = p50 / fp32 p50 (below 1: faster than fp32).", "",
             "| model | form | p50 ms | ratio to fp32 | round spread |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['form']} | {r['p50_ms']:.3f} | {r['ratio_to_fp32']:.2f} | {r['round_spread']:.0%} |"
              for r in rows]
    write_text(args.out / "int8_layers.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'int8_layers.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
