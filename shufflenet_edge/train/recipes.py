"""Training recipes per data source, the run's config, and the checks on every hyper-parameter.

The recipe table is the one place a default lives: ``edge train --help``, the line a run starts
with and ``config.json`` are all derived from it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..data import parse_spec
from ..errors import UsageError
from .rng import MAX_SEED

SCHEDULES = ("step", "cosine", "linear")

# Per-source recipes. digits: measured to pass 97% test accuracy within 5 CPU minutes (README);
# cifar10: the seed tutorial; ImageNet-sized data: megvii's (lr 0.5 per 1024 images scaled to the
# batch, linear decay, weight decay 4e-5 but none on BN/bias, label smoothing 0.1).
RECIPES = {
    "digits": dict(epochs=15, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                   label_smoothing=0.0, no_bn_decay=False, warmup_epochs=1, clip_grad=2.0),
    "npy": dict(epochs=15, batch_size=64, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                label_smoothing=0.0, no_bn_decay=False, warmup_epochs=1, clip_grad=2.0),
    "cifar10": dict(epochs=60, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
                    label_smoothing=0.0, no_bn_decay=False, warmup_epochs=0),
    "tinyimagenet": dict(epochs=60, batch_size=128, lr=0.5 * 128 / 1024, momentum=0.9, weight_decay=4e-5,
                         schedule="linear", label_smoothing=0.1, no_bn_decay=True, warmup_epochs=1),
    "imagefolder": dict(epochs=240, batch_size=128, lr=0.5 * 128 / 1024, momentum=0.9, weight_decay=4e-5,
                        schedule="linear", label_smoothing=0.1, no_bn_decay=True, warmup_epochs=1),
}
# Recipes whose learning rate is per 1024 images of the global batch (megvii: 0.5 for batch 1024
# over 8 GPUs): without --lr, lr = LR_PER_1024 x global batch / 1024. The others keep a fixed lr.
LR_PER_1024 = {"tinyimagenet": 0.5, "imagefolder": 0.5}
HYPER_PARAMETERS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "label_smoothing",
                    "no_bn_decay", "warmup_epochs", "clip_grad")


@dataclass
class TrainConfig:
    model: str
    data: str
    epochs: int
    batch_size: int  # global: split evenly over the processes of a distributed run
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    label_smoothing: float
    no_bn_decay: bool
    warmup_epochs: int = 0
    clip_grad: float | None = None  # max gradient norm: v1's first steps have norms ~80 that wreck the fc
    seed: int = 0
    deterministic: bool = False
    workers: int = 0
    out: str = "runs"
    input_size: list[int] | None = None
    subset: int | None = None  # use this many training images (quick runs, tests)
    world_size: int = 1
    sync_bn: bool = False
    amp: str | None = None  # autocast dtype: "bf16" | "fp16"
    channels_last: bool = False

    # what must match for --resume to continue the same run (not world_size: a run may resume on
    # another number of processes, the global batch being the same)
    RESUME_KEYS = ("model", "data", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                   "label_smoothing", "no_bn_decay", "warmup_epochs", "clip_grad", "seed", "input_size", "subset")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def recipe(spec) -> dict:
    return dict(RECIPES[parse_spec(spec).kind])


def default_out(model: str, spec) -> str:
    return str(Path("runs") / f"{model}_{parse_spec(spec).kind}")


def _finite(name: str, value, low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False, hint: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(v)
    bad = bad or (low is not None and (v <= low if low_open else v < low))
    bad = bad or (high is not None and (v >= high if high_open else v > high))
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = f"in {lo}, {hi}" if low is not None and high is not None else (f"> {low:g}" if low_open else f">= {low:g}")
        raise UsageError(f"--{name} must be a finite number {where}, got {value}{hint}")
    return v


def check_hyper_parameters(rec: dict, seed) -> None:
    """One-line errors for values that would train on NaN or crash later (nan, negative, out of range)."""
    if rec["schedule"] not in SCHEDULES:
        raise UsageError(f"unknown schedule '{rec['schedule']}': expected one of {', '.join(SCHEDULES)}")
    for key in ("epochs", "batch_size"):
        if int(rec[key]) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 1, got {rec[key]}")
    if int(rec.get("warmup_epochs") or 0) < 0:
        raise UsageError(f"--warmup-epochs must be >= 0, got {rec['warmup_epochs']}")
    _finite("lr", rec["lr"], 0, low_open=True, hint=" (e.g. 0.05)")
    _finite("momentum", rec["momentum"], 0, 1, high_open=True, hint=" (SGD momentum, e.g. 0.9)")
    _finite("weight-decay", rec["weight_decay"], 0, hint=" (e.g. 5e-4)")
    _finite("label-smoothing", rec["label_smoothing"], 0, 1, high_open=True)
    if rec.get("clip_grad") is not None:
        _finite("clip-grad", rec["clip_grad"], 0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be an integer in [0, 2^63-1], got {seed}")


def resolve_recipe(kind: str, given: dict) -> tuple[dict, str]:
    """The recipe with the caller's values over it, and how its lr came about (for the output)."""
    rec = dict(RECIPES[kind])
    rec.update({k: v for k, v in given.items() if v is not None})
    if given.get("lr") is not None:
        how = "given"
    elif kind in LR_PER_1024:
        rec["lr"] = LR_PER_1024[kind] * int(rec["batch_size"]) / 1024
        how = f"{LR_PER_1024[kind]:g} x global batch {rec['batch_size']} / 1024 (megvii: scaled with the global batch)"
    else:
        how = "the recipe's fixed lr (not scaled with the batch)"
    return rec, how


def describe(rec: dict) -> str:
    """One line per recipe, as ``--help`` and a run's first lines show it."""
    warm = int(rec.get("warmup_epochs") or 0)
    parts = [f"SGD lr {rec['lr']:g}", f"momentum {rec['momentum']:g}",
             f"weight decay {rec['weight_decay']:g}" + (" (none on BN/bias)" if rec.get("no_bn_decay") else ""),
             f"batch {rec['batch_size']}", f"{rec['epochs']} epochs", f"{rec['schedule']} schedule",
             f"{warm} warm-up epoch{'s' if warm != 1 else ''}"]
    if rec.get("clip_grad"):
        parts.append(f"grad-norm clip {rec['clip_grad']:g}")
    if rec.get("label_smoothing"):
        parts.append(f"label smoothing {rec['label_smoothing']:g}")
    return ", ".join(parts)


def recipes_help() -> str:
    """The recipe table as ``edge train --help`` prints it (one line per data source)."""
    lines = []
    for kind, rec in RECIPES.items():
        scaled = f"; lr = {LR_PER_1024[kind]:g} x batch/1024" if kind in LR_PER_1024 else ""
        lines.append(f"{kind}: {describe(rec)}{scaled}")
    return "\n".join(lines)


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    if step < warmup:  # linear warm-up: from-scratch ShuffleNets blow up at full lr on the first steps
        return (step + 1) / warmup
    t = min(step - warmup, total - warmup) / max(total - warmup, 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "linear":
        return max(0.0, 1.0 - t)
    return 0.1 ** sum(t >= m for m in (0.5, 0.75))  # step: x0.1 at 50% and 75% of training


def param_groups(model: nn.Module, weight_decay: float, no_bn_decay: bool) -> list[dict]:
    if not no_bn_decay:
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]  # BN scales/shifts and biases
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
