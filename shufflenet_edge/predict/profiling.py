"""``edge predict fit``: build a device profile within a time budget.

Phases, each with its share of the budget (the whole run, set-up included, ends by it):
on the host the NCHWc reorder cost (``LAYOUT_SHARE``, ``layout.py``), fusion rules
(``FUSION_SHARE``, then ``CHAIN_SHARE`` for a fused pair and its next op), kernel points (the rest, less ``COMPOSITE_SHARE``), then composite networks (random stacks of the zoo's
units, no zoo model) for the two proxy laws and the predictor's calibration
(``predictor.calibrate``). A phase that runs out of time stops between two measurements.
``--device arm`` runs the same phases under qemu with instructions per inference as the cost
(``qemu_measure.py``), drawing from ``sampling.PLANS["arm"]``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path

from ..errors import UsageError
from . import fit, fusion, layout, micro, profile as profiles, proxies, sampling
from .kernels import KERNEL_KINDS, spec_counts, totals, trace_ops

LAYOUT_SHARE = 0.02  # NCHWc reorder cost (``layout.py``): 8 conv pairs, ~15 s of 15 min
FUSION_SHARE = 0.10
CHAIN_SHARE = 0.07  # then a fused pair and the op after it (fusion.candidate_chains): ~100 s of 25 chains in 15 min
COMPOSITE_SHARE = 0.20  # composites feed both proxies and the calibration: a few dozen in 15 minutes
DEFAULT_BUDGET_MIN = 15.0


def parse_kinds(kinds) -> list[str] | None:
    if not kinds:
        return None
    items = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    bad = [k for k in items if k not in KERNEL_KINDS]
    if bad or not items:
        raise UsageError(f"bad --kernels '{kinds}': choose from {','.join(KERNEL_KINDS)}")
    return items


def fit_profile(device: str = "host", target: str | None = None, fmt: str = "onnx", precision: str = "fp32",
                threads: int = 1, budget_min: float = DEFAULT_BUDGET_MIN, out=None, kinds=None,
                max_seconds: float = 0.3, seed: int = 0, progress: bool = True, command: str | None = None) -> Path:
    """Measure and write ``<out>/<device>_<engine>_<precision>_t<threads>.json``; returns its path."""
    from ..bench.report import versions
    from ..io_utils import check_writable
    from .backends import check_supported, measurer
    from .measure import RETRIES
    from .predictor import Predictor, calibrate

    if not budget_min or float(budget_min) <= 0:
        raise UsageError(f"bad --budget-min {budget_min}: must be > 0")
    if int(threads) < 1:
        raise UsageError(f"bad --threads {threads}: must be >= 1")
    kinds = parse_kinds(kinds)
    check_supported(device, fmt, precision, target, threads)
    if device == "arm":
        target = "qemu"
    plan = sampling.PLANS[device]
    out = Path(out) if out else profiles.user_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out}: {exc.strerror}") from None
    check_writable(out, what=f"--out {out}")  # before the budget is spent, not after
    clock = time.perf_counter
    t0 = clock()
    budget = float(budget_min) * 60.0
    deadline = t0 + budget
    say = (lambda text: print(f"predict fit: {text}", file=sys.stderr)) if progress else (lambda text: None)
    meas = measurer(device, fmt, precision, int(threads), target, max_seconds)
    failures: list[dict] = []
    run = _tolerant(meas, failures)
    unit = meas.cost_unit
    block = int(getattr(meas, "nchwc_block", 0))  # the host engine reads its own; counts under qemu have none
    if unit == "ms":  # draws keep whole blocks of this engine's NCHWc (AVX-512's 16, AVX2's 8)
        plan = dataclasses.replace(plan, block=block)
    try:
        seed_lists = sampling.seed_lists(plan)
        seeds = sampling.seeds_by_kind([op for ops in seed_lists for op in ops])
        kinds = [k for k in (kinds or KERNEL_KINDS) if k in seeds]
        rng = sampling.rng_for(seed)
        reorder = None
        if unit == "ms" and run.together is not None:  # NCHWc is the x86 runtime's; counts under qemu have none
            say(f"fixed cost {show(meas.fixed_cost, unit)} per inference; measuring layout reorders")
            reorder = layout.measure(run.together, deadline=clock() + LAYOUT_SHARE * budget, clock=clock)  # set-up may overrun
        per, keyed = layout.reorder_rate(reorder), layout.keyed(reorder)
        say("measuring fusion pairs")
        timed = unit == "ms"  # times: each pair at its largest instance first (``fusion.candidate_pairs``)
        pairs = [p for p in fusion.candidate_pairs(seed_lists, largest=timed)
                 if p[0]["kind"] in kinds and p[1]["kind"] in kinds]
        rules = fusion.detect(pairs, run, deadline=t0 + (LAYOUT_SHARE + FUSION_SHARE) * budget, clock=clock,
                              reorder_ms_per_melement=per, block=block, by_working_set=keyed)
        chains = fusion.candidate_chains(seed_lists, list(fusion.fused_rules(rules)), largest=timed)
        rules += fusion.detect([c for c in chains if c[1]["kind"] in kinds], run,
                               deadline=t0 + (LAYOUT_SHARE + FUSION_SHARE + CHAIN_SHARE) * budget, clock=clock,
                               reorder_ms_per_melement=per, block=block, by_working_set=keyed)
        fused = [f"{r['first']}>{r['second']}" for r in rules if r["fused"]]
        say(f"{len(rules)} pair rule(s) measured, fused: {', '.join(fused) or 'none'}; sampling {len(kinds)} kernel kinds")
        last = [clock()]

        def tick(kind, phase, n):
            if clock() - last[0] > 30:
                last[0] = clock()
                say(f"{int(deadline - clock())} s left; {kind}: {n} points")

        points = fit.sample(run, seeds, kinds, t0 + (1 - COMPOSITE_SHARE) * budget, rng, progress=tick, clock=clock,
                            plan=plan, unit=unit)
        prof = {
            "schema": profiles.SCHEMA, "version": profiles.VERSION,
            "created": dt.datetime.now().isoformat(timespec="seconds"), "command": command,
            "device": device, "target": target, **meas.describe(), "format": fmt, "precision": precision,
            "threads": int(threads), "cost_unit": unit, "budget_min": float(budget_min),
            "seed_models": list(plan.models), "seed_size": list(plan.sizes[0]),
            "seed_sizes": [list(sz) for sz in plan.sizes], "sampling_box": list(plan.box), "max_macs": plan.max_macs,
            "overhead": meas.overhead_entry(),
            "kernels": {k: {"points": pts} for k, pts in points.items() if pts},
            "fusion": rules, "layout": reorder, "versions": versions(), "failures": failures,
            "padded_channels": unit == "ms",  # blocked convs costed on whole NCHWc blocks (``kernels.padded``)
        }
        models, _ = fit.fit_models({k: v["points"] for k, v in prof["kernels"].items()}, unit, block,
                                   padded_channels=prof["padded_channels"])
        for kind, entry in prof["kernels"].items():
            entry["law"] = models[kind].law()
        for kind, err in fit.held_out_errors(points, unit).items():
            prof["kernels"][kind]["held_out"] = err
        say(f"{sum(len(p) for p in points.values())} kernel points; measuring composite networks")
        predictor = Predictor(prof)
        comps = []
        # the slowest timing attempt of a composite so far. A composite is timed again while the canary says
        # the window was slow (``measure.until_fast``), so the next one may take every attempt: on a busy
        # host a 36 s smoke fit whose composites had taken one attempt each ended 5 s late when the last took three
        longest = 0.0
        # refitting and writing the profile come after; a busy machine stretches both (a 36 s smoke fit on a
        # loaded 2-core host ended 5 s late with a 1 s reserve)
        finish = deadline - min(10.0, 0.06 * budget)
        # under emulation one composite can take minutes: the measurer says how long, before it runs
        seconds_for = getattr(meas, "seconds_for", None)
        while clock() + (1 + RETRIES) * 1.5 * longest < finish:  # the next one may be larger, and slow throughout
            module, shape, desc = micro.composite(rng)
            ops = trace_ops(module, shape[1:], in_channels=shape[0])
            got = predictor.run(ops)
            need = seconds_for(got["total"]) if seconds_for else None
            if need is not None and clock() + need > finish:
                continue  # too long for what is left: a smaller one may fit
            started = clock()
            m = run.model(module, shape)
            if m is None:
                continue
            comps.append({"description": desc, **totals(ops), "cost": m["raw"], "stability": m["stability"],
                          "fixed_cost": meas.fixed_cost, "kernel_sums": got["kernel_sums"],
                          "predicted_uncalibrated": got["total"]})
            if seconds_for is None:
                attempts = len((m["stability"] or {}).get("canary") or [None])
                longest = max(longest, (clock() - started) / attempts)
        prof["composites"] = comps
        prof["calibration"] = calibrate(comps)
        if len(comps) >= 3:
            prof["proxies"] = proxies.fit(comps, "composites", unit)
        else:
            prof["proxies"] = proxies.fit([_whole_run(p) for pts in points.values() for p in pts],
                                          "kernel points (no composite network fitted in the budget)", unit)
        prof["elapsed_s"] = round(clock() - t0, 1)
        prof["noisy"] = noisy_share(prof)
        path = profiles.save(prof, out)
    finally:
        meas.close()
    say(f"{path} ({prof['elapsed_s']:.0f} s)")
    if profiles.fitted_busy(prof):
        say(f"warning: {prof['noisy']['noisy']} of {prof['noisy']['points']} timings were noisy (other work on this "
            "machine): fit again with nothing else running before trusting its predictions")
    elif unit != "ms" and prof["noisy"]["noisy"]:  # counts do not depend on the machine's load: a disagreement is the engine's
        say(f"note: in {prof['noisy']['noisy']} of {prof['noisy']['points']} points no two counted inferences agreed")
    return path


def show(cost: float, unit: str) -> str:
    """A cost for a progress line: microseconds, or instructions."""
    return f"{cost * 1e3:.1f} us" if unit == "ms" else f"{cost:,.0f} instructions"


def disturbed(stability: dict) -> bool:
    """A noisy verdict that makes the point's median untrustworthy: a wide CI of the median, or other
    work on the cores (unknown counts as other work). A one-op micro-model of 20 us has a cv and a
    spread between rounds above ``runtime/timing.py``'s limits even on an idle machine (measured: 73%
    of a quiet fit's points, with others' CPU share 0.0 and CIs within +-1%); those limits are set for
    whole networks, and on their own they say nothing against the median the fit uses."""
    from ..runtime.timing import NOISY_LIMITS as lim

    if stability.get("verdict") != "noisy":
        return False
    share = stability.get("others_cpu_share")
    return (stability.get("ci_halfwidth") or 0.0) > lim["ci_halfwidth"] or share is None or share > lim["others_cpu_share"]


def noisy_share(prof: dict) -> dict:
    """How many of the profile's timings are ``disturbed`` (and how many carry any noisy verdict)."""
    pts = [p for k in prof["kernels"].values() for p in k["points"]] + prof.get("composites", [])
    noisy = sum(1 for p in pts if disturbed(p.get("stability") or {}))
    flagged = sum(1 for p in pts if (p.get("stability") or {}).get("verdict") == "noisy")
    return {"points": len(pts), "noisy": noisy, "share": noisy / len(pts) if pts else 0.0, "flagged_noisy": flagged}


def _whole_run(point: dict) -> dict:
    """A kernel point as the proxies see a network: MACs, bytes moved, cost of the whole run."""
    c = spec_counts(point["spec"])
    return {"macs": c["macs"], "memory_access_bytes": 4 * (c["in_elems"] + c["out_elems"] + c["weights"]),
            "cost": point["raw"]}


class _tolerant:
    """The measurer, with a configuration that fails to export or run recorded (one line each) and
    skipped: one odd shape must not cost a 15-minute fit. If nothing at all has run after
    ``MAX_FAILURES_FIRST`` failures, the engine itself is broken and the fit stops."""

    MAX_FAILURES_FIRST = 10

    def __init__(self, meas, failures: list):
        self.meas, self.failures, self.ok = meas, failures, 0

    def _guard(self, what, call):
        from ..errors import RuntimeFailure, one_line

        try:
            got = call()
        except Exception as exc:  # noqa: BLE001 - recorded in the profile, see the class docstring
            self.failures.append({"what": what, "error": one_line(exc)})
            if not self.ok and len(self.failures) >= self.MAX_FAILURES_FIRST:
                raise RuntimeFailure(f"every micro-model failed to run; the first: {self.failures[0]['error']}") from None
            return None
        self.ok += 1
        return got

    def __call__(self, specs: list[dict]):
        return self._guard(specs, lambda: self.meas(specs))

    def model(self, module, shape):
        return self._guard({"composite": list(shape)}, lambda: self.meas.model(module, shape))

    @property
    def graph_ops(self):
        """The back-end's ``graph_ops(specs)`` (engines whose optimized graph can be read), guarded the same way."""
        if not hasattr(self.meas, "graph_ops"):
            return None
        return lambda specs: self._guard(specs, lambda: self.meas.graph_ops(specs))

    @property
    def together(self):
        """The back-end's interleaved ``together(chains)`` (timing back-ends only), guarded the same way."""
        if not hasattr(self.meas, "together"):
            return None
        return lambda lists: self._guard(lists, lambda: self.meas.together(lists))
