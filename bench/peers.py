"""Peers: the toolkit's fastest verified file against the paths people glue by hand, per model,
each model in one interleaved run.

Peer paths (the same weights as the toolkit's files, no toolkit treatment):

- ort: torchvision-style module -> legacy ONNX export (dynamo=False) -> onnxruntime
- litert: module -> litert-torch default conversion (fp32) -> ai-edge-litert
- ncnn: module -> pnnx -> ncnn with ncnn's default options
- executorch: module -> torch.export -> XnnpackPartitioner, default partitioning (no rewrites)
- openvino: OpenVINO (its defaults: bf16 on CPUs with AMX / AVX-512 BF16) on the legacy ONNX file

The toolkit's side is the sweep (``shufflenet_edge.bench.sweep``): every format x precision x
engine, checked against PyTorch first (a wrong one is never timed). All files are timed by the
same loop (``runtime.timing.time_cases``), warmed up, then in rounds of shuffled-free interleaved
order, 1 thread, batch 1. Per model and precision class (fp32, int8; bf16 apart) the summary
says whether the toolkit's fastest verified result is at least as fast as each peer, or within
its confidence interval.

    .venv/bin/python bench/peers.py [--models v2_1.0x,v1_g3,mobilenet_v2] [--size 224] [--runs 200]

Writes bench/results/peers.{json,md} (``--out`` elsewhere). The committed run needs a quiet
machine: on a loaded one the rows say NOISY and the comparison means nothing.
"""
from __future__ import annotations

import argparse
import json
import datetime
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEERS = ("ort", "litert", "ncnn", "executorch", "openvino")


def _peer_files(name: str, module, size: int, work: Path, peers) -> list[tuple[str, Path, str, dict]]:
    """(label, file, engine, engine options) for each peer path."""
    import torch

    from shufflenet_edge.export.quiet import silenced

    x = torch.randn(1, 3, size, size)
    out = []
    legacy = work / f"{name}_legacy.onnx"
    with silenced(True):
        if {"ort", "openvino"} & set(peers):
            torch.onnx.export(module, (x,), str(legacy), dynamo=False, opset_version=17)
        if "ort" in peers:
            out.append(("peer: legacy torch.onnx -> onnxruntime", legacy, "onnxruntime", {}))
        if "openvino" in peers:
            out.append(("peer: legacy torch.onnx -> openvino (defaults)", legacy, "openvino", {"inference_precision": "default"}))
        if "litert" in peers:
            import litert_torch

            path = work / f"{name}_litert.tflite"
            litert_torch.convert(module, (x,)).export(str(path))
            out.append(("peer: litert-torch fp32 -> ai-edge-litert", path, "litert", {}))
        if "ncnn" in peers:
            import pnnx

            pnnx.export(module, str(work / f"{name}_pnnx.pt"), (x,), fp16=False)
            out.append(("peer: pnnx -> ncnn (default options)", work / f"{name}_pnnx.ncnn.param", "ncnn",
                        {"options": {"use_sgemm_convolution": True, "use_packing_layout": True}}))
        if "executorch" in peers:
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            program = to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[XnnpackPartitioner()])
            path = work / f"{name}_default.pte"
            path.write_bytes(program.to_executorch().buffer)
            out.append(("peer: torch.export -> ExecuTorch XNNPACK (default partitioning)", path, "executorch", {}))
    return out


def _open(path, engine, options, metadata):
    from shufflenet_edge.runtime import open_engine

    return open_engine(path, engine=engine, threads=1, metadata=metadata, **options)


def _class(rec) -> str:
    if rec.get("inference_precision") == "bf16":
        return "bf16"
    return "int8" if rec["precision"] in ("int8", "dynamic") else "fp32"


def paired(ours: dict, peer: dict, seed: int = 0) -> dict:
    """Our file's time over the peer's, round by round of the interleaved run (both ran in every
    round, so a step in the machine's speed moves both): the median ratio and its 95% bootstrap
    interval over rounds. ``at_least_as_fast``: the interval reaches 1 or below (faster, or the two
    cannot be told apart)."""
    import numpy as np

    from shufflenet_edge.runtime.timing import round_ratios

    ratio = round_ratios((ours.get("rounds") or {}).get("p50_ms") or [], (peer.get("rounds") or {}).get("p50_ms") or [])
    n = len(ratio)
    if n < 3:  # too few rounds to pair: the medians and the peer's own CI
        ci = ((peer.get("stability") or {}).get("ci_halfwidth") or 0.0) * peer["latency_ms"]["p50"]
        return {"ratio": ours["latency_ms"]["p50"] / peer["latency_ms"]["p50"], "ci": None, "rounds": n,
                "at_least_as_fast": ours["latency_ms"]["p50"] <= peer["latency_ms"]["p50"] + ci}
    rng = np.random.default_rng(seed)
    boots = np.median(ratio[rng.integers(0, n, (1000, n))], axis=1)
    lo, hi = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
    return {"ratio": float(np.median(ratio)), "ci": [lo, hi], "rounds": n, "at_least_as_fast": lo <= 1.0}


def _load_line(results: list[dict]) -> str:
    """The 1-min load averages the rows' stability records saw, and how many rows were marked noisy."""
    rows = [r for res in results for r in res["rows"]]
    loads = [v for r in rows for v in ((r.get("stability") or {}).get("load_1min") or []) if v is not None]
    noisy = sum((r.get("stability") or {}).get("verdict") == "noisy" for r in rows)
    span = f"1-min average {min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"
    return f"{span}; {noisy} of {len(rows)} rows marked noisy"


def summarize(rows: list[dict]) -> dict:
    """Per precision class: the toolkit's fastest file and, per peer, the paired verdict."""
    summary = {}
    for cls in ("fp32", "int8", "bf16"):
        mine = [r for r in rows if r["class"] == cls and r["path"].startswith("shufflenet-edge")]
        theirs = [r for r in rows if r["class"] == cls and r["path"].startswith("peer")]
        if not mine or not theirs:
            continue
        best = min(mine, key=lambda r: r["latency_ms"]["p50"])
        pairs = {p["path"]: paired(best, p) for p in theirs}
        summary[cls] = {"best": best["path"], "p50": best["latency_ms"]["p50"], "paired": pairs,
                        "at_least_as_fast": {k: v["at_least_as_fast"] for k, v in pairs.items()}}
    return summary


def run_model(name: str, size: int, runs: int | None, peers, formats: str, max_seconds: float | None) -> dict:
    import torch

    from shufflenet_edge.bench.sweep import sweep
    from shufflenet_edge.export.parity import compare, parity_inputs
    from shufflenet_edge.models import create_model
    from shufflenet_edge.runtime import timing
    from shufflenet_edge.runtime.runner import bench_input

    # checkpoint-free: random weights, fixed by the seed, the same module for peers and toolkit
    torch.manual_seed(0)
    ours = sweep(name, formats=formats, input_size=size, runs=3, quiet=True)
    module = create_model(name, input_size=size).eval()
    meta = {"input_size": [size, size], "precision": "fp32"}
    rows = [r for r in ours["records"] if r.get("output") == "ok"]
    cases = []
    from shufflenet_edge.runtime import open_engine

    with tempfile.TemporaryDirectory() as tmp:
        x = parity_inputs((size, size))
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        # every file is made before any engine opens: the peers' conversions (torch.export, litert-torch,
        # pnnx) churn gigabytes, and sessions opened before that churn got their memory differently
        peer_files = _peer_files(name, module, size, Path(tmp), peers)
        for r in rows:
            eng = open_engine(r["artifact"], engine=r["engine"], threads=1)
            cases.append((f"shufflenet-edge: {r['format']} {r['precision']} on {r['engine']}", r, eng))
        for label, path, engine, options in peer_files:
            eng = _open(path, engine, options, meta)
            got = eng.predict(x)
            par = compare(want, got)
            rec = {"format": path.suffix.lstrip("."), "precision": "fp32", "engine": engine, "parity": par,
                   "inference_precision": getattr(eng, "inference_precision", None)}
            cases.append((label, rec, eng))
        timed = timing.time_cases([(e.invoke, e.prepare(bench_input(e, 1))) for _, _, e in cases], runs,
                                  warmup=20, max_seconds=max_seconds, threads=[1] * len(cases))
    out = []
    for (label, rec, eng), res in zip(cases, timed):
        out.append({"path": label, "engine": eng.name, "precision": rec["precision"], "class": _class(rec),
                    "cosine": (rec.get("parity") or {}).get("cosine"), "latency_ms": res["latency_ms"],
                    "stability": res.get("stability"), "rounds": res.get("rounds")})
    summary = summarize(out)
    failed = [{k: r.get(k) for k in ("format", "precision", "engine", "output", "error")}
              for r in ours["records"] if r.get("output") != "ok"]  # not timed: listed, so a gap is never silent
    return {"model": name, "rows": out, "summary": summary, "failed": failed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="v2_1.0x,v1_g3,mobilenet_v2")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=None, help="fixed runs per file (default: measure until stable)")
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--formats", default="all", help="the toolkit's side: formats of the sweep")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--conditions", default=None,
                    help="what else ran on the machine during the run (kept in the JSON and shown in the md); with "
                         "--resummarize it is added to an existing peers.json")
    ap.add_argument("--resummarize", action="store_true",
                    help="recompute the summaries and peers.md from --out's peers.json (no measuring)")
    args = ap.parse_args(argv)

    from shufflenet_edge.bench.report import versions
    from shufflenet_edge.io_utils import write_json, write_text
    from shufflenet_edge.runtime import timing

    out = Path(args.out)
    if args.resummarize:
        doc = json.loads((out / "peers.json").read_text())
        for res in doc["results"]:
            res["summary"] = summarize(res["rows"])
        if args.conditions:
            doc["conditions"] = args.conditions
        write_json(out / "peers.json", doc)
    else:
        peers = [p for p in args.peers.split(",") if p]
        machine = timing.machine_info()
        results = []
        for m in args.models.split(","):
            results.append(run_model(m, args.size, args.runs, peers, args.formats, args.max_seconds))
            # written after every model: a model that breaks late in a 40-minute run keeps the ones before it
            doc = {"date": datetime.date.today().isoformat(), "machine": machine, "cpu_flags": machine.get("isa"),
                   "versions": versions(), "size": args.size,
                   "command": shlex.join(map(str, ["bench/peers.py", *(argv or sys.argv[1:])])), "results": results,
                   **({"conditions": args.conditions} if args.conditions else {})}
            write_json(out / "peers.json", doc)
    machine, results = doc["machine"], doc["results"]
    lines = [f"# Toolkit vs hand-glued peers ({doc['size']}x{doc['size']}, 1 thread, batch 1, one interleaved run per model)",
             "", f"- machine: {machine['cpu']} ({machine['cores']} cores); CPU flags: {', '.join(machine.get('isa') or [])}",
             f"- date: {doc['date']}", "- versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()),
             f"- reproduce: `.venv/bin/python {doc.get('command') or 'bench/peers.py'}`",
             f"- load: {_load_line(results)}" + (f"; {doc['conditions']}" if doc.get("conditions") else ""),
             "- verdicts pair the two files round by round (the median of per-round time ratios, 95% bootstrap "
             "interval over rounds): a step in the machine's speed moves both", ""]
    for res in results:
        lines += [f"## {res['model']}", "", "| path | engine | class | cosine | p50 ms | verdict |", "|---|---|---|---:|---:|---|"]
        for r in sorted(res["rows"], key=lambda r: r["latency_ms"]["p50"]):
            cos = f"{r['cosine']:.4f}" if r["cosine"] is not None else "-"
            lines.append(f"| {r['path']} | {r['engine']} | {r['class']} | {cos} | {r['latency_ms']['p50']:.3f} | "
                         f"{(r.get('stability') or {}).get('verdict', '-')} |")
        for cls, s in res["summary"].items():
            slower = [p for p, ok in s["at_least_as_fast"].items() if not ok]
            lines.append(f"\n{cls}: fastest toolkit result {s['best']} ({s['p50']:.3f} ms) is "
                         + ("at least as fast as every peer (or within its CI)" if not slower
                            else "slower than: " + "; ".join(slower)))
            for peer, v in (s.get("paired") or {}).items():
                ci = f" [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" if v.get("ci") else ""
                lines.append(f"- vs {peer}: time ratio {v['ratio']:.3f}{ci} over {v['rounds']} rounds")
        lines.append("")
    write_text(out / "peers.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
