"""ONNX Runtime exactly as ``edge bench`` opens a file, for graphs that take feature maps (any
channel count, several inputs) rather than one image batch: the micro-models of ``edge predict fit``.

Self-contained like ``engines.py`` (standard library, numpy, the runtime): the host's fit imports
it as part of the package, and the qemu counting guest (``bench/targets/insn_count_server.py``)
imports it as a plain module in the emulated userland, so both run a micro-model the same way.
"""
from __future__ import annotations

import numpy as np

if __package__:
    from .engines import OnnxRuntimeEngine
else:  # a sibling of engines.py on a board or in the emulated userland
    from engines import OnnxRuntimeEngine  # type: ignore


class MicroSession(OnnxRuntimeEngine):
    """``bound()`` runs through IO binding into preallocated outputs: a plain ``session.run`` copies
    every output into a new numpy array, which in a whole model costs a copy of the logits only,
    but in a one-op model would add a copy of the op's whole output to the op's cost."""

    def _check_io(self, name, dtype, allowed, out_shape) -> None:
        return None  # feature maps, not images: the image checks do not apply

    def feeds(self, seed: int = 0) -> dict:
        """Standard-normal float32 for every graph input (a two-input op gets both)."""
        rng = np.random.default_rng(seed)
        return {i.name: rng.standard_normal([int(d) for d in i.shape]).astype(np.float32)
                for i in self.session.get_inputs()}

    def bound(self, feeds: dict):
        """(invoke, binding) that runs the session on ``feeds`` without allocating or copying outputs."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, arr)
        for o in self.session.get_outputs():
            buf = ort.OrtValue.ortvalue_from_shape_and_type([int(d) for d in o.shape], np.float32, "cpu", 0)
            binding.bind_ortvalue_output(o.name, buf)
        return self.session.run_with_iobinding, binding

    def plain(self, feeds: dict):
        """(invoke, feeds) that runs the session as ``edge bench`` runs a whole model (outputs copied)."""
        return self.invoke, feeds
