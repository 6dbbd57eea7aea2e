"""Record tests/data/quiet_samples.json: one real `edge bench` record from an idle machine.

    python tests/data/record_quiet_samples.py [--cpus 1]

It benchmarks v2_0.5x at 64 px (ONNX fp32, 1 thread, until stable) and saves the record only if
its own verdict is `stable`, so the fixture is a measured quiet run, never a made-up one.
test_stability.py::test_recorded_quiet_samples_are_stable re-derives the verdict from it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shufflenet_edge.bench import bench  # noqa: E402
from shufflenet_edge.io_utils import write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", default=None, help="pin to these cores (taskset list)")
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args()
    for _ in range(args.tries):
        (rec,) = bench(model="v2_0.5x", input_size=64, cpus=args.cpus, max_seconds=8, quiet=True)
        st = rec["stability"]
        print(f"{st['verdict']}: {'; '.join(st['reasons']) or 'within every limit'}", flush=True)
        if st["verdict"] == "stable":
            write_json(Path(__file__).with_name("quiet_samples.json"), rec)
            return 0
    print("the machine was never quiet enough: nothing written", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
