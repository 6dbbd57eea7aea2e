"""Time a micro-model on this host as the engine runs it: ONNX file, ONNX Runtime session with the
toolkit's own settings (``runtime/engines.py``), the toolkit's timing loop (``runtime/timing.py``),
so every point carries the same stability verdict as an ``edge bench`` record.

Micro-models are exported with torch's TorchScript-based ONNX exporter, which writes a one-op
file in tens of milliseconds (the dynamo exporter + onnxsim of ``edge export`` takes seconds per
file, which would leave a 15-minute budget a few hundred points short). For one op both give the
same graph: BatchNorm folded into the conv in eval mode, the same opset.

``--device arm`` counts the same files' instructions under qemu instead (``qemu_measure.py``;
``backends.py`` picks one).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..runtime.micro_session import MicroSession
from ..runtime.timing import time_cases, undisturbed_ms
from . import layout, micro

# The canary: a small NCHWc conv timed beside every measurement (``Canary``). This VM slows 2-4x for
# 0.1 s to several seconds at a time, and a window that is slow throughout shows no spread between
# its rounds: only a reference timed in the same window tells (the first profile timed this way still
# held points at 1.8-2x their retimed cost, all with a 'stable' verdict; a zoo model was timed 36% slow).
CANARY_SPEC = {"kind": "conv1x1", "cin": 64, "cout": 64, "h": 28, "w": 28, "k": 1, "stride": 1, "pad": 0, "groups": 1}
SLOW = 1.08  # a window whose canary ran this much above its fastest was a slow spell
RETRIES = 2  # a slow measurement is taken again up to this many times; each case keeps its fastest

# The one-element ReLU whose run time is the engine's fixed cost per inference (subtracted from
# every point, added once per predicted model).
OVERHEAD_SPEC = {"kind": "relu", "cin": 1, "cout": 1, "h": 1, "w": 1}
STABILITY_KEYS = ("verdict", "reasons", "ci_halfwidth", "cv", "others_cpu_share", "load_1min")


class Canary:
    """The canary micro-model, kept open: ``case()`` to time beside others, ``ratio(result)``: its time
    in that window over the fastest it has run (which every timing may lower)."""

    def __init__(self, workdir: Path, threads: int = 1):
        path = micro.export_onnx(*micro.build([CANARY_SPEC]), Path(workdir) / "canary.onnx")
        self.session = MicroSession(path, threads=threads, metadata={})
        invoke, native = self.session.bound(self.session.feeds(0))
        # one untimed run ahead of each timed one: the canary is timed between runs of the case it
        # watches, and a network of tens of MB leaves none of the canary's 0.4 MB cached (its first run
        # after one read 1.3-2.5x its fastest on an idle machine, and every large composite was taken
        # again for a slow spell that was never there)
        self.case_ = (invoke, native, lambda: invoke(native))
        self.fastest = min(undisturbed_ms(time_cases([self.case_], runs=None, warmup=3, max_seconds=0.3)[0])
                           for _ in range(3))

    def case(self):
        return self.case_

    def ratio(self, result: dict) -> float:
        t = undisturbed_ms(result)
        self.fastest = min(self.fastest, t)
        return t / self.fastest

    def check(self, seconds: float = 0.2) -> float:
        """The ratio now, timed alone."""
        return self.ratio(time_cases([self.case_], runs=None, warmup=1, max_seconds=seconds)[0])

    def close(self) -> None:
        self.session.close()


def until_fast(attempt, retries: int = RETRIES) -> tuple[list[dict], list]:
    """Call ``attempt(i) -> (timed results, canary ratio or ratios)`` until no ratio is above ``SLOW`` or
    ``retries`` more attempts are spent; each result keeps its fastest timing (``undisturbed_ms``).
    Returns the results and every attempt's ratio(s). A spell over part of a window is what the low
    percentile already leaves out; only a window slow throughout is taken again."""
    best, ratios = None, []
    for i in range(1 + retries):
        timed, ratio = attempt(i)
        each = ratio if isinstance(ratio, list) else [ratio]
        ratios.append([round(r, 3) for r in each] if isinstance(ratio, list) else round(ratio, 3))
        best = timed if best is None else [min(pair, key=undisturbed_ms) for pair in zip(best, timed)]
        if max(each) <= SLOW:
            break
    return best, ratios


def settled(cases: list, canary: Canary, seconds: float, threads: int) -> tuple[list[dict], list[float]]:
    """``time_cases(cases)`` with the canary among them, taken again (``until_fast``) while the canary
    says the window was slow. Returns the results and the canary's ratio in each attempt."""
    def attempt(i):
        timed = time_cases([*cases, canary.case()], runs=None, warmup=2 if i == 0 else 1,
                           max_seconds=seconds * (len(cases) + 1), threads=[threads] * (len(cases) + 1))
        return timed[:-1], canary.ratio(timed[-1])

    return until_fast(attempt)


class HostOnnxRuntime:
    """``measure(specs) -> {"cost", "raw", "stability", "runs"}``: a chain of ops timed on this host.

    ``raw`` is the undisturbed time (``timing.undisturbed_ms``: a low percentile of the runs, as
    ``edge predict validate`` measures whole models); ``cost`` is that above the engine's fixed
    per-inference cost (measured first, in both modes). Every timing runs beside the canary and is
    taken again when the window was slow (``settled``): the profile's points are what refinement
    chases, and a point inflated by a slow spell would draw more points to it (the first idle-machine
    profile held gconv points 2-4x their retimed cost)."""

    engine = "onnxruntime"
    cost_unit = "ms"

    def __init__(self, threads: int = 1, max_seconds: float = 0.3, workdir=None):
        import onnxruntime

        self.version = onnxruntime.__version__
        self.threads = int(threads)
        self.max_seconds = float(max_seconds)
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-predict-", dir=workdir)
        self.workdir = Path(self._tmp.name)
        self.n = 0
        self.bound_overhead_ms = self.overhead_ms = 0.0
        self.canary = Canary(self.workdir, self.threads)
        self.nchwc_block = layout.block_size(self.workdir)
        long = max(1.0, 3 * self.max_seconds)
        # the fixed cost a whole model pays (plain run, as `edge bench`), and the one each micro-model pays
        self.overhead = self.time(micro.build([OVERHEAD_SPEC]), max_seconds=long, bound=False)
        self.bound_overhead = self.time(micro.build([OVERHEAD_SPEC]), max_seconds=long)
        self.overhead_ms, self.bound_overhead_ms = self.overhead["raw"], self.bound_overhead["raw"]

    def time(self, built, max_seconds: float | None = None, bound: bool = True) -> dict:
        """Export and time one module: ``raw`` ms per run, ``cost`` = raw less the fixed cost of its mode."""
        return self.time_together([built], max_seconds=max_seconds, bound=bound)[0]

    def time_together(self, builts: list, max_seconds: float | None = None, bound: bool = True) -> list[dict]:
        """Several modules timed in one interleaved run (``time_cases``' shuffled rounds): a step in the
        VM's speed moves all of them alike, so differences between them (a fusion saving) hold."""
        paths, engines = [], []
        try:
            for module, shapes in builts:
                self.n += 1
                paths.append(micro.export_onnx(module, shapes, self.workdir / f"m{self.n}.onnx"))
                engines.append(MicroSession(paths[-1], threads=self.threads, metadata={}))
            cases = []
            for i, eng in enumerate(engines):
                feeds = eng.feeds(self.n + i)
                cases.append(eng.bound(feeds) if bound else eng.plain(feeds))
            timed, ratios = settled(cases, self.canary, max_seconds or self.max_seconds, self.threads)
        finally:
            for eng in engines:
                eng.close()
            for path in paths:
                path.unlink(missing_ok=True)
        fixed = self.bound_overhead_ms if bound else self.overhead_ms
        out = []
        for res in timed:
            raw = undisturbed_ms(res)
            out.append({"cost": raw - fixed, "raw": raw, "runs": res["runs"],
                        "stability": {**{k: res["stability"].get(k) for k in STABILITY_KEYS}, "canary": ratios}})
        return out

    def together(self, spec_lists: list[list[dict]]) -> list[dict]:
        """``measure`` of several chains in one interleaved run (what ``fusion.detect`` compares)."""
        return self.time_together([micro.build(specs) for specs in spec_lists])

    def graph_ops(self, specs: list[dict]) -> list[str]:
        """The op types ONNX Runtime runs the chain ``specs`` as, layout reorders left out: fewer ops for
        a pair than for its two parts is the engine saying it fused them (``fusion.detect``)."""
        return [n.op_type for n in layout.optimized_nodes(specs, self.workdir) if not n.op_type.startswith("Reorder")]

    @property
    def fixed_cost(self) -> float:
        """The engine's fixed cost per inference of a whole model (added once per prediction)."""
        return self.overhead_ms

    def overhead_entry(self) -> dict:
        """The profile's ``overhead``: the fixed cost, how stable it was, and the micro-models' own."""
        return {"cost": self.overhead_ms, "stability": self.overhead["stability"], "micro_cost": self.bound_overhead_ms}

    def __call__(self, specs: list[dict]) -> dict:
        return self.time(micro.build(specs))

    def model(self, module, shape) -> dict:
        """A whole network (a composite) taking one [1, C, H, W] input, run as `edge bench` runs a file."""
        return self.time((module, [[1, *shape]]), bound=False)

    def describe(self) -> dict:
        from ..runtime.timing import machine_info

        return {"engine": {"name": self.engine, "version": self.version}, "machine": machine_info(),
                "nchwc_block": self.nchwc_block}

    def close(self) -> None:
        self.canary.close()
        self._tmp.cleanup()
