"""Which ONNX int8 form is fastest on onnxruntime, and which layer types lose in int8?

For each model (untrained, 224 px, batch 1, 1 thread; latency does not depend on the weights) the
fp32 file and several int8 forms of it are timed in one process, interleaved round by round
(shufflenet_edge.runtime.timing.time_cases), so load from elsewhere hits every case alike; the
table gives each p50 as a ratio to fp32's p50 (below 1: faster than fp32).

Forms: the toolkit's recipe (QDQ, u8 activations, u8 per-channel weights), s8 weights in the 7-bit
and the 8-bit range, QOperator (QLinearConv nodes written by the quantizer),
grouped 1x1 convs split into one conv per group before quantizing, the recipe with one layer
type (or grouped 1x1 + depthwise) kept float (what ``--int8-policy fast`` decides from), and what
``edge export --precision int8`` writes by default (the ``fast`` policy).

With ``--tflite`` it also profiles TFLite int8 against fp32 segment by segment (what issue 15 asks
for on a host without VNNI, where no x86 ``benchmark_model`` with op profiling is installable): each
cumulative prefix of the network (conv1, +maxpool, +stage2, ..., +pool, +fc) and the network with
every channel shuffle replaced by identity are exported alone through the toolkit in both
precisions and timed interleaved; a segment's time is its prefix's less the previous prefix's,
the shuffles' is the full network's less the shuffle-free one's. ``--qemu`` adds the aarch64
instructions per inference of every such file under qemu (``edge bench --target qemu``): the
int8/fp32 instruction ratio per segment on the ARM ISA.

    .venv/bin/python bench/int8_layers.py [--models v2_1.0x v1_g3 ...] [--runs 200] [--out DIR]
    .venv/bin/python bench/int8_layers.py --models v2_1.0x v1_g3 --no-onnx --tflite [--qemu]

Writes DIR/int8_layers.{json,md} (ONNX forms) and DIR/tflite_int8_profile.{json,md} (default
bench/results). Run it on a quiet machine: the committed ratios are only as good as the machine
was idle.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
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
from shufflenet_edge.runtime.timing import cpu_model, isa_features, round_ratios, time_cases  # noqa: E402

# the v1 paper's Table 8 models (issue 15's bar: the default int8 export no slower than fp32), then v1 g8 and v2
MODELS = ["v1_g3_0.5x", "v1_g3", "v1_g3_2.0x", "alexnet", "mobilenet_v1_1.0x", "v1_g8", "v2_0.5x", "v2_1.0x"]
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
    for float_kinds in [(kind,) for kind in KEEP_FLOAT_KINDS] + [("gconv1x1", "dwconv")]:
        if set(float_kinds) <= kinds:
            path = work / f"float_{'_'.join(float_kinds)}.onnx"
            onnx_int8.quantize(fp32, path, calib, exclude_nodes=onnx_int8.nodes_of_kinds(proto, set(float_kinds)))
            out[f"int8 recipe, {' + '.join(float_kinds)} kept float"] = path
    # only the convs and the fc quantized: no quantize/dequantize around the shuffles, adds and concats
    for float_kinds in [()] + ([("gconv1x1", "dwconv")] if {"gconv1x1", "dwconv"} <= kinds else []):
        path = work / f"convs_only_{'_'.join(float_kinds) or 'all'}.onnx"
        quantize_static(str(fp32), str(path), onnx_int8.calibration_reader(calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8,
                        op_types_to_quantize=["Conv", "Gemm"],
                        nodes_to_exclude=onnx_int8.nodes_of_kinds(proto, set(float_kinds)) or None)
        out["int8 Conv/Gemm only" + (f", {' + '.join(float_kinds)} kept float" if float_kinds else "")] = path
    return out


def run_model(model: str, size: int, runs: int, work: Path) -> list[dict]:
    r = export(model=model, format="onnx", precision="fp32", input_size=size, out=work, quiet=True)
    calib = np.random.default_rng(0).standard_normal((16, 3, size, size)).astype(np.float32)
    paths = forms(Path(r.path), work, calib)
    # what `edge export --precision int8` writes by default (--int8-policy fast), through the toolkit
    fast = export(model=model, format="onnx", precision="int8", input_size=size, calib_size=16, out=work / "default",
                  quiet=True)
    paths["int8 export default (--int8-policy fast)"] = fast.path
    check = fast.metadata["int8_policy"].get("latency_check") or {}
    engines = {name: OnnxRuntimeEngine(p, threads=1, metadata={}) for name, p in paths.items()}
    x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    timed = time_cases([(e.invoke, e.prepare(x)) for e in engines.values()], runs=runs, warmup=max(3, runs // 20))
    base = timed[0]["latency_ms"]["p50"]
    base_rounds = timed[0]["rounds"]["p50_ms"]
    rows = [{"model": model, "input_size": size, "form": name, "p50_ms": t["latency_ms"]["p50"],
             "ratio_to_fp32": t["latency_ms"]["p50"] / base,
             # the median of per-round ratios: both files ran in every round, so the VM's speed steps cancel
             "paired_ratio_to_fp32": float(np.median(round_ratios(t["rounds"]["p50_ms"], base_rounds))),
             "round_spread": t["rounds"]["spread"], "runs": t["runs"], "verdict": (t.get("stability") or {}).get("verdict"),
             "load_1min": (t.get("stability") or {}).get("load_1min")}
            for name, t in zip(engines, timed)]
    rows[-1]["latency_check"] = check  # what the export's own timing decided (int8 kept, or every layer float)
    return rows


def prefixes(model: str, size: int) -> dict:
    """The cumulative prefixes of ``model`` (untrained, 1000 classes) and the model without its channel
    shuffles, as modules export() takes (each brings its own edge_meta)."""
    import copy

    import torch

    from shufflenet_edge.models import create_model
    from shufflenet_edge.models.common import ChannelShuffle

    net = create_model(model, input_size=size).eval()
    names = [n for n, _ in net.named_children()]
    out = {}
    for k in range(1, len(names) + 1):
        sub = torch.nn.Sequential(*list(net.children())[:k]).eval()
        sub.edge_meta = {"name": f"{model}_to_{names[k - 1]}", "input_size": [size, size], "num_classes": None}
        out[f"to {names[k - 1]}"] = sub
    flat = copy.deepcopy(net)
    for parent in list(flat.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, ChannelShuffle):
                setattr(parent, child_name, torch.nn.Identity())
    flat.edge_meta = {**net.edge_meta, "name": f"{model}_no_shuffle"}
    out["full, shuffles removed"] = flat
    return out


def tflite_profile(model: str, size: int, runs: int, work: Path, qemu: bool) -> list[dict]:
    """Per prefix (see the module docstring): fp32 and int8 TFLite p50 (interleaved), and with ``qemu``
    the aarch64 instructions per inference; then the per-segment differences."""
    import shufflenet_edge as se
    from shufflenet_edge.runtime import open_engine

    files = {}
    for label, module in prefixes(model, size).items():
        for precision in ("fp32", "int8"):
            slug = module.edge_meta["name"]
            files[(label, precision)] = export(model=module, format="tflite", precision=precision, out=work / "tflite",
                                               name=f"{slug}_{precision}", calib_size=32, quiet=True).path
    engines = [open_engine(p, threads=1) for p in files.values()]
    x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    timed = time_cases([(e.invoke, e.prepare(x)) for e in engines], runs=runs, warmup=max(3, runs // 20))
    p50 = {key: t["latency_ms"]["p50"] for key, t in zip(files, timed)}
    insns = {}
    if qemu:
        for key, path in files.items():
            rec = se.bench(artifact=path, device="arm", target="qemu", threads="1", runs=3, warmup=1, quiet=True)[0]
            insns[key] = rec.get("instructions_per_inference")
    labels = list(dict.fromkeys(label for label, _ in files))
    rows, previous = [], None
    for label in labels:
        row = {"model": model, "input_size": size, "prefix": label}
        for precision in ("fp32", "int8"):
            row[f"{precision}_p50_ms"] = p50[(label, precision)]
            if insns:
                row[f"{precision}_arm_instructions"] = insns[(label, precision)]
        segment_of = previous if label.startswith("to ") else labels[-2]  # shuffle-free: vs the full network
        row["segment"] = label[3:] if label.startswith("to ") else "channel shuffles (full less shuffle-free)"
        for precision in ("fp32", "int8"):
            base = 0.0 if segment_of is None else p50[(segment_of, precision)]
            sign = 1 if label.startswith("to ") else -1  # the shuffle-free network is the faster one
            row[f"{precision}_segment_ms"] = sign * (p50[(label, precision)] - base)
            if insns:
                ibase = 0 if segment_of is None else insns[(segment_of, precision)] or 0
                row[f"{precision}_segment_arm_instructions"] = sign * ((insns[(label, precision)] or 0) - ibase)
        row["segment_int8_speedup"] = (row["fp32_segment_ms"] / row["int8_segment_ms"]
                                       if row["int8_segment_ms"] > 0 else None)
        if insns and row["int8_segment_arm_instructions"] > 0:
            row["segment_arm_instruction_ratio"] = row["fp32_segment_arm_instructions"] / row["int8_segment_arm_instructions"]
        rows.append(row)
        if label.startswith("to "):
            previous = label
    return rows


def _profile_md(rows: list[dict], meta: dict, size: int, runs: int) -> str:
    arm = any("fp32_arm_instructions" in r for r in rows)
    lines = [f"# TFLite int8 vs fp32, segment by segment (ai-edge-litert {meta.get('ai-edge-litert')})", "",
             f"{meta['cpu']} ({', '.join(meta['isa'])}), 1 thread, batch 1, {size} px, untrained models, {runs} runs per "
             "file, interleaved. Each prefix of the network is its own exported file; a segment's time is its prefix's "
             "less the previous one's (noisy where a segment is small). int8 speedup = fp32 / int8 segment time"
             + ("; ARM ratio = fp32 / int8 aarch64 instructions of the segment under qemu." if arm else "."), "",
             "| model | segment | fp32 ms | int8 ms | int8 speedup |" + (" ARM fp32 Minsn | ARM int8 Minsn | ARM ratio |" if arm else ""),
             "|---|---|---:|---:|---:|" + ("---:|---:|---:|" if arm else "")]
    for r in rows:
        speed = "-" if r["segment_int8_speedup"] is None else f"{r['segment_int8_speedup']:.2f}x"
        cells = [r["model"], r["segment"], f"{r['fp32_segment_ms']:.3f}", f"{r['int8_segment_ms']:.3f}", speed]
        if arm:
            ratio = r.get("segment_arm_instruction_ratio")
            cells += [f"{r['fp32_segment_arm_instructions'] / 1e6:.2f}", f"{r['int8_segment_arm_instructions'] / 1e6:.2f}",
                      "-" if ratio is None else f"{ratio:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    for model in dict.fromkeys(r["model"] for r in rows):
        full = [r for r in rows if r["model"] == model and r["prefix"].startswith("to ")][-1]
        line = (f"- {model} whole network: fp32 {full['fp32_p50_ms']:.3f} ms, int8 {full['int8_p50_ms']:.3f} ms "
                f"({full['fp32_p50_ms'] / full['int8_p50_ms']:.2f}x)")
        if full.get("fp32_arm_instructions") and full.get("int8_arm_instructions"):
            line += (f"; aarch64 {full['fp32_arm_instructions'] / 1e6:.1f} M vs {full['int8_arm_instructions'] / 1e6:.1f} M "
                     f"instructions ({full['fp32_arm_instructions'] / full['int8_arm_instructions']:.2f}x fewer in int8)")
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX int8 forms")
    ap.add_argument("--tflite", action="store_true", help="also profile TFLite int8 vs fp32 segment by segment")
    ap.add_argument("--conditions", default=None, help="what else ran on the machine (kept in the JSON and the md)")
    ap.add_argument("--qemu", action="store_true", help="with --tflite: aarch64 instructions per segment under qemu")
    args = ap.parse_args()
    import onnxruntime

    from shufflenet_edge.bench.report import versions

    meta = {"cpu": cpu_model(), "isa": isa_features(), "onnxruntime": onnxruntime.__version__, "threads": 1,
            "command": "python bench/int8_layers.py " + shlex.join(sys.argv[1:]), "conditions": args.conditions,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "runs": args.runs}
    if args.tflite:
        meta["ai-edge-litert"] = versions().get("ai-edge-litert")
        profile: list[dict] = []
        with tempfile.TemporaryDirectory(prefix="int8_profile.") as tmp:
            for model in args.models:
                profile += tflite_profile(model, args.input_size, args.runs, Path(tmp) / model, args.qemu)
                print(f"{model}: " + ", ".join(f"{r['segment']} {r['fp32_segment_ms']:.2f}/{r['int8_segment_ms']:.2f} ms"
                                               for r in profile if r["model"] == model), flush=True)
        write_json(args.out / "tflite_int8_profile.json", {"machine": meta, "rows": profile})
        write_text(args.out / "tflite_int8_profile.md", _profile_md(profile, meta, args.input_size, args.runs))
        print(f"wrote {args.out / 'tflite_int8_profile.md'}")
    if not args.onnx:
        return 0
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="int8_layers.") as tmp:
        for model in args.models:
            rows += run_model(model, args.input_size, args.runs, Path(tmp) / model)
            print(f"{model}: " + ", ".join(f"{r['form']} {r['ratio_to_fp32']:.2f}" for r in rows if r["model"] == model),
                  flush=True)
    write_json(args.out / "int8_layers.json", {"machine": meta, "rows": rows})
    lines = [f"# ONNX int8 forms vs fp32 on onnxruntime {meta['onnxruntime']}", "",
             f"{meta['cpu']} ({', '.join(meta['isa'])}), 1 thread, batch 1, {args.input_size} px, {args.runs} runs "
             f"per form, interleaved in shuffled order, untrained models; {meta['created']}. Ratio = p50 / fp32 p50; "
             "paired = the median over rounds of the per-round ratio (below 1: faster than fp32).  ",
             f"Rerun: `{meta['command']}`" + (f"  \nConditions: {meta['conditions']}" if meta.get("conditions") else ""),
             "",
             "| model | form | p50 ms | ratio to fp32 | paired ratio | round spread |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['form']} | {r['p50_ms']:.3f} | {r['ratio_to_fp32']:.2f} | "
              f"{r['paired_ratio_to_fp32']:.2f} | {r['round_spread']:.0%} |" for r in rows]
    lines += ["", "The default export (`edge export --precision int8`, `--int8-policy fast`) times its int8 file against "
              "fp32 when it is made and keeps every layer float when int8 is slower (export/onnx_latency_guard.py):", ""]
    for r in rows:
        if r.get("latency_check"):
            c = r["latency_check"]
            lines.append(f"- {r['model']}: the export measured int8 at {c['int8_over_fp32']:.2f}x fp32's time -> "
                         f"{'int8 kept' if c['decision'] == 'int8' else 'every layer float'}; in this run the file "
                         f"took {r['paired_ratio_to_fp32']:.2f}x fp32's time (paired)")
    write_text(args.out / "int8_layers.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'int8_layers.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
