"""Fusion rules, found by timing: two ops alone and the same two in a row.

If an engine fuses B into A (ONNX Runtime's Conv+ReLU -> FusedConv, its NCHWc convs absorbing a
residual Add) or shares work between them (one layout reorder instead of two), the pair costs less
than its parts. The *saving* of a pair is the share of B's own cost that disappears when B runs
right after A: (a + b - ab) / b, with every cost net of the engine's fixed per-inference cost. A
rule is a (kind A, kind B) pair; it counts as fused when its median saving is at least
``FUSED_MIN_SAVING``. The candidates are the producer -> consumer pairs the seed models contain,
at their own shapes, so nothing about an engine is assumed.

An engine whose optimized graph can be read (ONNX Runtime's) also says itself which pairs it fuses:
fewer ops for the pair than for its parts. Such a pair counts as fused whatever its saving (a
grouped conv with the residual Add as FusedConv's Z input saves only ~0.2 of the Add's one-op cost,
the copy of Z into the output stays, yet the ReLU after it then runs free, and a network pays for
that Add and ReLU ~0.2 of their one-op costs).

In a prediction a fused B is merged into A's kernel and costs (1 - saving) of its own estimate.

A fused pair can take a third op in (ONNX Runtime's CPU FusedConv holds a Conv, the residual Add
and the ReLU after it: the ReLU then costs nothing, though an Add and a ReLU alone do not fuse).
So each fused pair A -> B is timed again with the op C that consumes B in the seed models: the
rule ("A+B", C) has the saving of C after the kernel A+B, measured the same way. A merged kernel
takes a further op in only by such a rule, never by the pair (B, C) measured out of that context.
"""
from __future__ import annotations

import statistics

from .kernels import NCHWC_BLOCK, spec_counts
from .layout import pair_reorders

FUSED_MIN_SAVING = 0.3


def saving(a: float, b: float, ab: float) -> float:
    """Share of B's cost that a joint run saves (costs net of the fixed cost; clipped to [-1, 1])."""
    if b <= 0:
        return 0.0
    return max(-1.0, min(1.0, (a + b - ab) / b))


def _size(spec: dict) -> int:
    c = spec_counts(spec)
    return c["in_elems"] + c["out_elems"]


def _note(seen: dict, key, instance, second: dict) -> None:
    """Count one occurrence of candidate ``key``; keep its first instance and its largest one (by the
    elements of ``second``, the op whose saving is measured)."""
    size = _size(second)
    entry = seen.setdefault(key, [0, instance, instance, size])
    entry[0] += 1
    if size > entry[3]:
        entry[2], entry[3] = instance, size


def candidate_pairs(ops_per_model: list[list], largest: bool = True) -> list[tuple[dict, dict, int]]:
    """(spec A, spec B, how often) for each distinct (kind A, kind B) producer -> consumer pair in
    the models, at its largest instance (where B's saving is worth the most ms, and measurable: the
    first instance of a ReLU after a fused conv+add cost 2-4 us, and its saving read -0.26 and +0.60)
    and, when it differs, at its first. ``largest=False``: the first instance first (counts under
    emulation: exact at any size, and a 480x640 instance costs seconds of qemu per chain)."""
    seen: dict[tuple[str, str], list] = {}
    for ops in ops_per_model:
        for op in ops:
            for src in op.inputs:
                if src >= 0:
                    _note(seen, (ops[src].kind, op.kind), (ops[src].spec(), op.spec()), op.spec())
    return _ordered(seen, largest)


def _ordered(seen: dict, largest: bool = True) -> list[tuple]:
    """(instance..., count) of each candidate, most frequent first, and every candidate's largest
    (or first) instance before any other: a phase cut short by its budget still sees each pair once
    (a busy machine cut the arm fit's pairs at 18 rules, before the grouped conv's)."""
    ranked = sorted(seen.values(), key=lambda v: -v[0])
    head, tail = (2, 1) if largest else (1, 2)
    return ([(*v[head], v[0]) for v in ranked]
            + [(*v[tail], v[0]) for v in ranked if v[1] != v[2]])


def candidate_chains(ops_per_model: list[list], fused: list[tuple[str, str]],
                     largest: bool = True) -> list[tuple[list, dict, int]]:
    """([spec A, spec B], spec C, how often) for each fused pair (kind A, kind B) and each kind C that
    consumes a B fed by an A in the models: the context a fused kernel's next op runs in (largest and
    first instances, as ``candidate_pairs``)."""
    wanted = set(fused)
    seen: dict[tuple[str, str, str], list] = {}
    for ops in ops_per_model:
        for op in ops:
            for src in op.inputs:
                b = ops[src] if src >= 0 else None
                a_idx = [i for i in (b.inputs if b is not None else []) if i >= 0 and (ops[i].kind, b.kind) in wanted]
                if not a_idx:
                    continue
                a = ops[a_idx[0]]
                _note(seen, (a.kind, b.kind, op.kind), ([a.spec(), b.spec()], op.spec()), op.spec())
    return _ordered(seen, largest)


def detect(pairs, measure, deadline=None, clock=None, reorder_ms_per_melement=0.0,
           block: int = NCHWC_BLOCK, by_working_set: bool = False) -> list[dict]:
    """Time each pair alone and together with ``measure(list of specs) -> {"cost": net cost}`` (None:
    that chain failed), or, when ``measure`` has ``together(list of chains)``, all three in one
    interleaved run: timed one after another, a speed step of the VM between them read as a saving
    of -81% to +100% for the same pair (the first host profile's conv1x1 -> relu, 0.04 and 0.83);
    one rule per (kind A, kind B) with its saving, verdict and every timing.
    A pair's A may be a list of specs (a fused kernel, from ``candidate_chains``): its rule's first
    kind is theirs joined by '+', as the kernel it stands for is named.
    ``reorder_ms_per_melement`` (the host's measured NCHWc reorder cost, a curve or a constant:
    ``layout.reorder_ms``): savings are judged net of the
    reorders a network would not run (``layout.pair_reorders``, with the engine's NCHWc ``block``, each
    read at its op's working set if ``by_working_set``)."""
    import time

    clock = clock or time.perf_counter
    from .micro import chain_specs

    by_rule: dict[tuple[str, str], list[dict]] = {}
    graph = getattr(measure, "graph_ops", None)  # engines whose optimized graph can be read
    for a, b, _count in pairs:
        if deadline is not None and clock() >= deadline:
            break
        *a, b = chain_specs([*(a if isinstance(a, list) else [a]), b])
        together = getattr(measure, "together", None)
        if together is not None:  # a timing back-end: the three in one interleaved run (a saving is a difference)
            ta, tb, tab = together([a, [b], [*a, b]]) or (None, None, None)
        else:
            ta, tb, tab = measure(a), measure([b]), measure([*a, b])
        if ta is None or tb is None or tab is None:  # failed to export or run: no verdict from this pair
            continue
        ops = [graph(chain) for chain in (a, [b], [*a, b])] if graph is not None else None
        merged = None if ops is None or any(o is None for o in ops) else len(ops[2]) < len(ops[0]) + len(ops[1])
        layout = pair_reorders(a[0], b, reorder_ms_per_melement, block, by_working_set)  # a fused kernel runs in its head's layout
        s = saving(ta["cost"], tb["cost"], tab["cost"] + layout)
        by_rule.setdefault(("+".join(x["kind"] for x in a), b["kind"]), []).append(
            {"a": a[0] if len(a) == 1 else a, "b": b, "cost_a": ta["cost"], "cost_b": tb["cost"],
             "cost_ab": tab["cost"], "saving": s, **({"reorders_ms": layout} if layout else {}),
             **({"graph_fused": merged, "graph_ops": ops[2]} if merged is not None else {}),
             "stability": [t.get("stability", {}).get("verdict") for t in (ta, tb, tab)]})
    rules = []
    for (ka, kb), pts in by_rule.items():
        med = statistics.median(p["saving"] for p in pts)
        always = all(p.get("graph_fused") for p in pts)  # the engine merged the pair in every instance
        rules.append({"first": ka, "second": kb, "saving": round(max(0.0, med) if always else med, 4),
                      "fused": med >= FUSED_MIN_SAVING or always, **({"graph_fused": True} if always else {}),
                      "points": pts})
    return rules


def fused_rules(rules: list[dict]) -> dict[tuple[str, str], float]:
    """(kind A, kind B) -> saving, for the rules that count as fused."""
    return {(r["first"], r["second"]): float(r["saving"]) for r in rules if r.get("fused")}


def merge(ops: list, costs: list[float], rules: dict[tuple[str, str], float]) -> list[dict]:
    """Kernels from ops: each op whose producer's kind fuses with its own is merged into the
    producer's kernel at (1 - saving) of its cost; an op after a merged kernel only by a rule for
    that kernel's kind ("A+B", module docstring). A kernel lists the ops (and layers) it holds."""
    kernel_of: dict[int, int] = {}
    kernels: list[dict] = []
    absorbed: set[int] = set()  # producers that already took one consumer in (a fused op has one output)
    for i, (op, cost) in enumerate(zip(ops, costs)):
        best = None
        for src in op.inputs:
            if src < 0 or src in absorbed or src not in kernel_of:
                continue
            kind = kernels[kernel_of[src]]["kind"]
            key = (kind if "+" in kind else ops[src].kind, op.kind)
            if key in rules and (best is None or rules[key] > best[1]):
                best = (src, rules[key])
        if best is not None:
            absorbed.add(best[0])
            kern = kernels[kernel_of[best[0]]]
            kern["kind"] = f"{kern['kind']}+{op.kind}"
            kern["ops"].append(op.name)
            kern["layers"] += [op.layer] if op.layer else []
            kern["cost"] += (1.0 - max(0.0, best[1])) * cost
            kern["macs"] += op.macs
            kernel_of[i] = kernel_of[best[0]]
            continue
        kernel_of[i] = len(kernels)
        kernels.append({"name": op.name, "kind": op.kind, "ops": [op.name], "layers": [op.layer] if op.layer else [],
                        "cost": cost, "macs": op.macs})
    return kernels
