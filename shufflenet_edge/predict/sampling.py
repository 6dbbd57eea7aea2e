"""Where to sample: kernel configurations drawn around the layer shapes the registered models use.

A draw picks one op of the kind from the seed models' decompositions and moves its channels by up
to 2x either way and its map side from half to three times (so 480x640 and 720x1280 inputs are
covered by a fit that reads only 224x224 shapes); groups, kernel size and stride stay the seed's.
No model is ever timed: the seeds give shapes only. ``neighbours`` draws the same way in a 0.8x to
1.25x box around a point, which is how the fit spends its budget where its error is largest.

Under qemu (``--device arm``, instructions per inference) a point takes seconds, not milliseconds,
so a budget buys a few hundred of them: ``PLANS["arm"]`` spends them near the shapes the zoo runs,
seeding from more of its widths at both of its input sizes (224 and 480x640: their stems differ)
and drawing in a tighter box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kernels import CONV_KINDS, KERNEL_KINDS, NCHWC_BLOCK, Op, blocked, model_ops, spec_counts

# One model per family the zoo registers: their shapes span the zoo's (the other sizes differ in
# width only, which the draws' 2x range covers).
SEED_MODELS = ("v1_g3", "v1_g8", "v1_g1_0.5x", "v2_1.0x", "v2_2.0x", "mobilenet_v1_1.0x", "mobilenet_v2", "alexnet")
SEED_SIZE = (224, 224)
MAX_CHANNELS = 4096
MAX_FC = 16384


@dataclass(frozen=True)
class Plan:
    """Where a device's fit draws: seed models, their input sizes, the box around each seed op
    (channel factors ``lo``..``hi``, map side factors ``side_lo``..``side_hi``), and the most MACs
    one conv point may have (None: no limit; a larger draw gets a smaller map)."""

    models: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    box: tuple[float, float, float, float]
    max_macs: int | None = None
    # draws from every stratum of seed shapes (``strata``) before the adaptive rounds: a map size
    # the zoo runs few ops at (7x7) must not be left to chance
    cover: int = 0
    # how the adaptive rounds pick the points to refine around within a kind: the largest absolute
    # error ("abs") or relative error ("rel": a small kernel's 30% weighs in a small model)
    refine_by: str = "abs"
    # a draw near a seed whose channels are whole blocks of this many (``kernels.blocked``) keeps them
    # whole blocks (0: any count): the engine runs another kernel for them, and the zoo mostly has them
    block: int = 0


PLANS = {
    # the host's draws keep the seeds' NCHWc alignment (ONNX Runtime's x86 layouts; the first host fit drew
    # 10% of its depthwise convs aligned where the zoo's are mostly aligned) and cover every stratum once.
    # Seeds at both of the zoo's input sizes, maps 0.6-1.6x theirs (4 to 512 px without a gap): with one
    # seed size and maps 0.5-3x, a fifth of the draws reached the 480x640 maps, and there the kernel laws
    # of an AVX-512 host's profile were ~10% over fresh one-op timings of v1_g8_0.5x's grouped convs
    "host": Plan(SEED_MODELS, (SEED_SIZE, (480, 640)), (0.5, 2.0, 0.6, 1.6), cover=1, block=NCHWC_BLOCK),
    # the widths whose channels lie outside the others' boxes (v2 0.5x is 0.41x of 1.0x) join the seeds;
    # emulated, a conv runs ~0.3 instructions per MAC at ~30M instructions a second: 250M MACs cost ~3 s
    # per inference, and AlexNet's 5x5 conv at 480x640 (1.4G MACs) would cost a minute and a half a point
    # counts are exact: a point's error is the law's alone, so the cheap small maps get covered and
    # refined by relative error (the committed fit before this drew no 3x3 stride-1 depthwise conv
    # under 11x11 and over-predicted the zoo's 7x7 ones by 20-150%)
    "arm": Plan(SEED_MODELS + ("v2_0.5x", "v1_g1_2.0x", "mobilenet_v1_0.5x"), (SEED_SIZE, (480, 640)),
                (0.7, 1.4, 0.7, 1.4), max_macs=250_000_000, cover=2, refine_by="rel"),
}


def seed_ops(models=SEED_MODELS, size=SEED_SIZE) -> list[Op]:
    return [op for m in models for op in model_ops(m, size)]


def seed_lists(plan: Plan) -> list[list[Op]]:
    """The ops of every seed model at every seed size (one list per model and size)."""
    return [model_ops(m, size) for size in plan.sizes for m in plan.models]


def seeds_by_kind(ops: list[Op]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for op in ops:
        if op.kind in KERNEL_KINDS:
            out.setdefault(op.kind, []).append(op.spec())
    return out


def strata(pool: list[dict]) -> list[list[dict]]:
    """Seed specs of one kind grouped by input map, kernel size and stride (the shapes that decide an
    engine's algorithm and its border overhead), smallest map first."""
    groups: dict[tuple, list[dict]] = {}
    for spec in pool:
        groups.setdefault((int(spec["h"]), int(spec["w"]), int(spec.get("k", 1)), int(spec.get("stride", 1))),
                          []).append(spec)
    return [groups[key] for key in sorted(groups)]


def _scale(rng, value: int, lo: float, hi: float, multiple: int = 1, cap: int = MAX_CHANNELS) -> int:
    f = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    v = max(multiple, int(round(value * f / multiple)) * multiple)
    return int(min(v, max(multiple, cap // multiple * multiple)))


def perturb(spec: dict, rng, lo: float = 0.5, hi: float = 2.0, side_lo: float = 0.5, side_hi: float = 3.0,
            block: int = 0) -> dict:
    """A new configuration of the same kind near ``spec`` (channel factors in [lo, hi], side in [side_lo, side_hi]);
    with ``block``, a spec whose channels are whole blocks (``kernels.blocked``) keeps them so."""
    s = dict(spec)
    kind = s["kind"]
    b = block if block and blocked(spec, block) else 1
    if kind == "fc":
        s["cin"] = _scale(rng, s["cin"], lo, hi, cap=MAX_FC)
        s["cout"] = _scale(rng, s["cout"], lo, hi, cap=MAX_FC)
        return s
    g = int(s.get("groups", 1))
    if kind == "dwconv":
        c = _scale(rng, s["cin"], lo, hi, multiple=b)
        s.update(cin=c, cout=c, groups=c)
    elif kind in CONV_KINDS:
        if s["cin"] > 3:  # a stem keeps its 3 image channels
            s["cin"] = _scale(rng, s["cin"], lo, hi, multiple=g * b)
        s["cout"] = _scale(rng, s["cout"], lo, hi, multiple=g * b)
    elif kind == "shuffle":
        c = _scale(rng, s["cin"], lo, hi, multiple=g)
        s.update(cin=c, cout=c)
    elif kind == "split":
        c = _scale(rng, s["cin"], lo, hi, multiple=2)
        s.update(cin=c, cout=c)
    elif kind == "concat":
        s["cin"] = _scale(rng, s["cin"], lo, hi)
        s["c2"] = _scale(rng, s.get("c2", s["cin"]), lo, hi)
        s["cout"] = s["cin"] + s["c2"]
    else:  # relu, add, pools: channels in = out
        c = _scale(rng, s["cin"], lo, hi, multiple=b)
        s.update(cin=c, cout=c)
    if "out" in s:  # adaptive pooling keeps its output size; the map it reads moves
        side_lo = max(side_lo, 1.0)
    f = math.exp(rng.uniform(math.log(side_lo), math.log(side_hi)))
    aspect = s["w"] / max(1, s["h"])
    if rng.random() < 0.3:
        aspect = float(rng.choice([1.0, 4 / 3, 16 / 9]))
    least = max(int(s.get("k", 1)), 1, *(s.get("out") or [1]))
    h = max(least, int(round(s["h"] * f)))
    s.update(h=h, w=max(least, int(round(h * aspect))))
    if "out" in s:  # whole multiples of the output size: a plain average pool (kernel = stride) in any exporter
        oh, ow = s["out"]
        s.update(h=oh * max(1, round(s["h"] / oh)), w=ow * max(1, round(s["w"] / ow)))
    return s


def within(spec: dict, max_macs: int | None) -> dict:
    """``spec`` with its map shrunk (same aspect) until a conv has at most ``max_macs`` MACs."""
    macs = spec_counts(spec)["macs"]
    if not max_macs or macs <= max_macs or spec["kind"] not in CONV_KINDS:
        return spec
    f = math.sqrt(max_macs / macs)
    least = max(int(spec.get("k", 1)), 1)
    return {**spec, "h": max(least, int(spec["h"] * f)), "w": max(least, int(spec["w"] * f))}


def draw(kind: str, seeds: dict[str, list[dict]], rng, plan: Plan | None = None,
         pool: list[dict] | None = None) -> dict:
    """A configuration of ``kind`` near a random seed op (``plan``: default the host's; ``pool``: the
    seed ops to pick from, default all of the kind's)."""
    plan = plan or PLANS["host"]
    pool = pool or seeds[kind]
    return within(perturb(pool[int(rng.integers(len(pool)))], rng, *plan.box, block=plan.block), plan.max_macs)


def neighbours(spec: dict, rng, n: int, plan: Plan | None = None) -> list[dict]:
    cap = plan.max_macs if plan else None
    return [within(perturb(spec, rng, 0.8, 1.25, 0.8, 1.25, block=plan.block if plan else 0), cap) for _ in range(n)]


def rng_for(seed: int = 0):
    return np.random.default_rng(seed)
