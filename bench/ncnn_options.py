"""ncnn options on one file, interleaved: which of ``use_sgemm_convolution`` x ``use_packing_layout``
is fastest, and does each still give the right output (ncnn's int8 v1_g3 went wrong with the default
packing layout, toolchain.md). The engine's defaults (``NcnnEngine.NCNN_OPTIONS``) come from this.

    .venv/bin/python bench/ncnn_options.py [--model v2_1.0x] [--size 224] [--runs 200]

Prints one line per combination: p50 ms, ratio to the engine's default, max abs diff to the default.
On a loaded machine only the ratios mean anything.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="v2_1.0x")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args(argv)

    import numpy as np

    from shufflenet_edge.bench.cache import cached_export
    from shufflenet_edge.runtime import open_engine, timing
    from shufflenet_edge.runtime.engines import NcnnEngine
    from shufflenet_edge.runtime.runner import bench_input

    path = cached_export(args.model, "ncnn", "fp32", input_size=args.size)
    combos = [dict(zip(NcnnEngine.NCNN_OPTIONS, vals)) for vals in itertools.product((False, True), repeat=2)]
    engines = [open_engine(path, engine="ncnn", options=c) for c in combos]
    x = bench_input(engines[0], 1)
    outs = [e.predict(x) for e in engines]
    timed = timing.time_cases([(e.invoke, e.prepare(x)) for e in engines], args.runs, warmup=10, rounds=10)
    base = combos.index(NcnnEngine.NCNN_OPTIONS)
    for c, out, res in zip(combos, outs, timed):
        p50 = res["latency_ms"]["p50"]
        print(f"{c}  p50 {p50:.3f} ms  x{p50 / timed[base]['latency_ms']['p50']:.3f} of the default  "
              f"max abs diff {float(np.abs(out - outs[base]).max()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
