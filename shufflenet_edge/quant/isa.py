"""Run an exported file on another x86 CPU class: this Python under ``qemu-x86_64 -cpu MODEL``.

Integer kernels are picked by the CPU's features (VNNI or not), so an int8 file can give other
answers on another CPU. qemu's user mode runs the same interpreter and wheels with a chosen CPU
model's CPUID (``Haswell``: AVX2 + FMA, no VNNI), so a check on that ISA class needs no such
machine. Only ``engines.py`` is loaded under emulation (no torch: importing it there takes
minutes). Emulation is some hundreds of times slower than native: keep the inputs few and small.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..runtime import engines

QEMU = "qemu-x86_64"
# Features the Haswell model lists that TCG does not emulate; dropping them keeps qemu quiet.
_TCG_MISSING = ("pcid", "x2apic", "tsc-deadline", "hle", "invpcid", "rtm")
# Run by the emulated interpreter: engines.py alone, image by image (files of batch 1 included).
_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import engines
eng = engines.open_engine(sys.argv[2], threads=1)
x = np.load(sys.argv[3])
np.save(sys.argv[4], np.concatenate([eng.predict(x[i:i + 1]) for i in range(len(x))]))
"""


def qemu_path() -> str | None:
    return shutil.which(QEMU)


def cpu_flags(model: str) -> str:
    return model + "".join(f",-{f}" for f in _TCG_MISSING) if model == "Haswell" else model


def emulated_logits(path, x: np.ndarray, cpu: str = "Haswell", timeout: float = 900) -> np.ndarray:
    """Logits of ``path`` (any file the runtime engines open) for float32 NCHW ``x``, computed
    under ``qemu-x86_64 -cpu cpu``."""
    qemu = qemu_path()
    if qemu is None:
        raise UsageError(f"{QEMU} not found: install Debian's qemu-user (scripts/setup.sh --system does)")
    runtime_dir = os.path.dirname(os.path.abspath(engines.__file__))
    with tempfile.TemporaryDirectory(prefix="edge-isa-") as tmp:
        xin, xout = Path(tmp) / "x.npy", Path(tmp) / "logits.npy"
        np.save(xin, np.ascontiguousarray(x, dtype=np.float32))
        cmd = [qemu, "-cpu", cpu_flags(cpu), sys.executable, "-c", _SCRIPT, runtime_dir, str(path), str(xin), str(xout)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 or not xout.is_file():
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise engines.EngineError(f"emulated run ({cpu}) of {path} failed: {last[:300]}")
        return np.load(xout)
