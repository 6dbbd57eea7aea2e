"""Top-1 of a file on a data spec's test split (through ``shufflenet_edge.evaluate``), and the
sidecar a work file needs for that (preprocessing, labels: copied from its fp32 sibling)."""
from __future__ import annotations

import json
from pathlib import Path


def copy_sidecar(src, dst, **changes) -> None:
    side = json.loads(Path(str(src) + ".json").read_text())
    side.update(changes)
    Path(str(dst) + ".json").write_text(json.dumps(side))


def file_accuracy(path, data: str, split: str = "test") -> float:
    from ..evaluate import evaluate

    return float(evaluate(artifact=path, data=data, split=split)["top1"])
