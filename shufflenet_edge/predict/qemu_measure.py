"""Count a micro-model's aarch64 instructions per inference under qemu, as the engine runs it:
the ``--device arm`` back-end of ``edge predict fit`` (``measure.py`` times the host instead).

Each chain of ops is exported exactly as for the host fit and sent to one long-running emulated
python (``bench/targets/qemu.CountingServer``) that opens it with the runtime's own session
settings and counts ``INFERENCES`` inferences one by one with the instruction-counting plugin.
Counts are deterministic to ~0.01%: a point is "stable" when two of its inferences agree, and
every inference's count is kept in the point's stability record.

The fixed cost: chains of 1 and ``CHAIN`` one-element ReLUs, through IO binding (as micro-models
run) and plainly (as a whole model runs), give the cost per node (the executor's dispatch of one
op, which every kernel pays) and the cost of an inference with no node at all. A micro-model's
cost is its count less the latter, so each kernel carries its own dispatch and the fixed cost
(added once per predicted model) carries none: a network of 200 kernels pays 200 dispatches.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from . import micro
from .measure import OVERHEAD_SPEC
from .micro import export_onnx

INFERENCES = 2  # counted one by one after an uncounted one: "stable" when the two agree (the lower is kept)
CHAIN = 4  # ReLUs in the longer chain that measures the cost per node


class QemuOnnxRuntime:
    """``measure(specs) -> {"cost", "raw", "stability", "runs"}`` in aarch64 instructions per inference."""

    engine = "onnxruntime"
    cost_unit = "instructions"

    def __init__(self, workdir=None):
        from ..bench.targets.qemu import QemuTarget

        self.target = QemuTarget()
        self.prepared = self.target.prepare()
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-predict-", dir=workdir)
        self.workdir = Path(self._tmp.name)
        self.n = 0
        self.server = None
        self.per_node = self.micro_fixed = self.plain_fixed = 0.0
        self._speeds: list[float] = []  # emulated instructions per second of the inferences counted so far
        self._opens: list[float] = []  # emulated seconds to open a file (its warm-up inference left out)
        try:
            self.server = self.target.counting_server(self.prepared)
            one = [OVERHEAD_SPEC]
            bound1, bound_n = self.count(micro.build(one)), self.count(micro.build(one * CHAIN))
            plain1, plain_n = self.count(micro.build(one), plain=True), self.count(micro.build(one * CHAIN), plain=True)
        except BaseException:
            self.close()
            raise
        # an engine that merged the ReLUs would show no cost per node: then the one-ReLU run is the fixed cost
        self.per_node = max(0.0, (bound_n["raw"] - bound1["raw"]) / (CHAIN - 1))
        self.micro_fixed = bound1["raw"] - self.per_node
        self.plain_fixed = plain1["raw"] - self.per_node
        self.overhead = plain1
        self._fixed_counts = {"bound": [bound1["raw"], bound_n["raw"]], "plain": [plain1["raw"], plain_n["raw"]],
                              "chain": [1, CHAIN]}

    def count(self, built, plain: bool = False) -> dict:
        """Export one module and count it: ``raw`` instructions per inference and its stability."""
        module, shapes = built
        self.n += 1
        path = export_onnx(module, shapes, self.workdir / f"m{self.n}.onnx")
        try:
            got = self.server.count(path, plain=plain, inferences=INFERENCES, seed=self.n)
        finally:
            path.unlink(missing_ok=True)
        sec = got.get("seconds") or {}
        one = float(sec.get("inference") or 0.0)
        if one >= 0.02:  # long enough for the clock to say something about the emulation's speed
            self._speeds.append(got["raw"] / one)
        self._opens.append(max(0.0, float(sec.get("open_and_warm_up") or 0.0) - one))
        return got

    def seconds_for(self, cost: float) -> float | None:
        """About how long counting a file of ``cost`` instructions per inference takes here (None:
        nothing measured yet), on the safe side: the slowest speed seen, twice over. (The first
        committed fit planned with the slow quartile; its one composite, a MobileNet stack of 5.4e8
        instructions per inference, took about 5 minutes and ended the fit 3 minutes past its budget.)"""
        import numpy as np

        if not self._speeds:
            return None
        speed = float(np.min(self._speeds))
        return 2.0 * (float(np.median(self._opens)) + (INFERENCES + 1) * max(cost, 0.0) / speed) + 1.0

    def _point(self, got: dict, fixed: float) -> dict:
        return {"cost": got["raw"] - fixed, "raw": got["raw"], "runs": INFERENCES, "stability": got["stability"]}

    def __call__(self, specs: list[dict]) -> dict:
        return self._point(self.count(micro.build(specs)), self.micro_fixed)

    def model(self, module, shape) -> dict:
        """A whole network (a composite) taking one [1, C, H, W] input, run as `edge bench` runs a file."""
        return self._point(self.count((module, [[1, *shape]]), plain=True), self.plain_fixed)

    @property
    def fixed_cost(self) -> float:
        """The engine's fixed cost per inference of a whole model, without any node (added once per prediction)."""
        return self.plain_fixed

    def overhead_entry(self) -> dict:
        return {"cost": self.plain_fixed, "stability": self.overhead["stability"], "micro_cost": self.micro_fixed,
                "per_node": self.per_node, "counts": self._fixed_counts,
                "how": f"chains of 1 and {CHAIN} one-element ReLUs, plain and through IO binding: the cost per "
                       "node is their slope, the fixed cost their intercept"}

    def describe(self) -> dict:
        from ..runtime.timing import machine_info

        qemu, versions = self.prepared[0], self.server.versions
        return {"engine": {"name": self.engine, "version": versions.get("onnxruntime", ""), "guest": versions},
                "machine": {**self.target.identity(qemu), "machine": "aarch64", "host": machine_info(),
                            "counting": f"instructions per inference: the lower of {INFERENCES} inferences counted "
                                        "one by one (insn_count TCG plugin)", "guest_restarts": self.server.restarts}}

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self._tmp.cleanup()
