"""Which measuring back-end a fit uses, and what a fit cannot do yet: ``measure.HostOnnxRuntime``
times micro-models on this host, ``qemu_measure.QemuOnnxRuntime`` counts their instructions under
qemu (``--device arm``). Both have one interface: ``measure(specs)``, ``model(module, shape)``,
``fixed_cost``, ``overhead_entry()``, ``describe()``, ``close()`` and a ``cost_unit``.
"""
from __future__ import annotations


def check_supported(device: str, fmt: str, precision: str, target: str | None = None, threads: int = 1) -> None:
    """A UsageError naming what a fit cannot do yet (before anything is measured or written)."""
    from ..errors import UsageError

    if device == "arm":
        if target not in (None, "qemu"):
            raise UsageError(f"edge predict fit --device arm --target {target}: only --target qemu (instructions per "
                             "inference) is supported so far; a board's timing fit is not built yet")
        if int(threads) != 1:
            raise UsageError(f"--target qemu counts 1 thread only (got --threads {threads}): emulated threads are "
                             "host threads")
    elif device != "host":
        raise UsageError(f"edge predict fit --device {device}: choose host or arm")
    elif target:
        raise UsageError("--target applies to --device arm; the host needs none")
    if fmt != "onnx" or precision != "fp32":
        raise UsageError(f"edge predict fit supports --format onnx --precision fp32 so far (asked: {fmt} {precision})")


def measurer(device: str, fmt: str, precision: str, threads: int, target: str | None = None,
             max_seconds: float = 0.3):
    """The measuring back-end for a fit: ONNX Runtime timed in this process (host), or its
    instructions per inference counted under qemu (arm; ``qemu_measure.py``)."""
    check_supported(device, fmt, precision, target, threads)
    if device == "arm":
        from .qemu_measure import QemuOnnxRuntime

        return QemuOnnxRuntime()
    from .measure import HostOnnxRuntime

    return HostOnnxRuntime(threads=threads, max_seconds=max_seconds)
