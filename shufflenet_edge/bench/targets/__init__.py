"""Targets: where a benchmark runs. One interface, one class per kind of device.

A target takes a ``RunSpec`` (which file, which engine, thread counts, runs ...) and returns the
device-side records that ``shufflenet_edge.runtime.runner.run`` produces (latency statistics,
peak RSS, the device's CPU); ``shufflenet_edge.bench`` adds the model facts. Remote and
emulated targets run the very same ``runner.py`` there, so every device is timed by one loop.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import RuntimeFailure, UsageError


class TargetError(RuntimeFailure):
    """The device could not be reached or could not run the file (one line, exit 1)."""


@dataclass
class RunSpec:
    artifact: Path | None  # None for the torch engine, which runs the model itself
    engine: str | None = None  # None: the first installed runtime for the file type
    threads: list[int] = field(default_factory=lambda: [1])
    runs: int | None = 100  # None: measure until stable within max_seconds (runtime/timing.py)
    warmup: int = 10
    rounds: int = 5
    batch: int = 1
    profile: bool = False
    cpus: str | None = None  # core pinning on the device (taskset list, e.g. "4-7")
    remote_python: str | None = None
    benchmark_binary: str | None = None
    model: object = None  # torch.nn.Module for the torch engine
    metadata: dict | None = None
    max_seconds: float | None = None
    inference_precision: str | None = None  # OpenVINO's INFERENCE_PRECISION_HINT (f32 unless bf16 is asked for)


class Target:
    """Base class. ``name`` is stored as ``device.target``; ``emulated`` marks timings that say
    nothing about real speed (they are never mixed with real ones)."""

    name = "host"
    emulated = False
    formats = ("onnx", "tflite", "ncnn", "pte", "torch")
    # Runs runtime/runner.py (or the torch engine), whose loop can measure until stable; the
    # others take a fixed run count (benchmark_model on a phone, the browser page, qemu counting).
    until_stable = False

    def run(self, spec: RunSpec) -> list[dict]:
        raise NotImplementedError

    def close(self) -> None:
        pass


RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
RUNNER_FILES = ("runner.py", "engines.py", "timing.py", "opgroups.py")


def runner_files() -> list[Path]:
    """The self-contained files a device needs to run the benchmark (copied next to each other)."""
    return [RUNTIME_DIR / f for f in RUNNER_FILES]


def runner_args(spec: RunSpec, artifact: str, peak: bool = True) -> list[str]:
    """Arguments for ``runner.py`` (an argument list, never a shell string)."""
    args = ["--threads", ",".join(str(t) for t in spec.threads),
            "--warmup", str(spec.warmup), "--rounds", str(spec.rounds), "--batch", str(spec.batch)]
    if spec.runs:
        args += ["--runs", str(spec.runs)]
    if spec.max_seconds is not None:
        args += ["--max-seconds", f"{float(spec.max_seconds):g}"]
    if spec.engine:
        args += ["--engine", spec.engine]
    if spec.profile:
        args.append("--profile")
    if spec.inference_precision:
        args += ["--inference-precision", spec.inference_precision]
    if not peak:
        args.append("--no-peak")
    return [*args, "--", artifact]  # "--": a file named like an option (-x.onnx) stays a file name


def parse_runner_output(stdout: str, where: str) -> list[dict]:
    """Records from runner.py's JSON line, or a one-line TargetError naming ``where``."""
    for line in reversed((stdout or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                got = json.loads(line)
            except ValueError:
                break
            if "error" in got:
                raise TargetError(f"{where}: {got['error']}")
            return got["records"]
    tail = " ".join((stdout or "").split())[-200:]
    raise TargetError(f"{where}: the runner printed no result{': ' + tail if tail else ''}")


class HostTarget(Target):
    """This machine (``--device host``; ``--device arm --target local`` on aarch64).

    Files run in a child process, exactly as on a board: the peak RSS is the runtime's own (not
    torch's, which the parent has loaded), and a runtime that crashes cannot take the caller down.
    """

    until_stable = True

    def __init__(self, name: str = "host"):
        self.name = name

    def run(self, spec: RunSpec) -> list[dict]:
        import subprocess
        import sys

        cpus = parse_cpu_list(spec.cpus) if spec.cpus else None
        if spec.artifact is None:
            from ..torch_engine import run_torch

            if cpus:
                _pin(cpus)
            return run_torch(spec)
        cmd = [sys.executable, str(RUNTIME_DIR / "runner.py"), *runner_args(spec, str(spec.artifact))]
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=(lambda: _pin(cpus)) if cpus else None)
        if proc.returncode not in (0, 3):
            err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise TargetError(f"runner on {self.name} failed: {err[:300]}")
        return parse_runner_output(proc.stdout, self.name)


MAX_CPU_ID = 1023  # hard maximum of a --cpus entry (checked before any set is built)


def cpu_ranges(text: str) -> list[tuple[int, int]]:
    """'0,2-3' -> [(0, 0), (2, 3)] (the taskset / cpuset list syntax), each id in 0..MAX_CPU_ID."""
    ranges = []
    bad = f"bad --cpus '{text}': use a list like 0 or 4-7 or 0,2"
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            lo, hi = part.split("-", 1) if "-" in part else (part, part)
            lo, hi = int(lo), int(hi)
            if lo < 0 or hi < lo:
                raise UsageError(bad)
            if hi > MAX_CPU_ID:
                raise UsageError(f"bad --cpus '{text}': cpu {hi} is above the maximum id {MAX_CPU_ID}")
            ranges.append((lo, hi))
    except ValueError:
        raise UsageError(bad) from None
    if not ranges:
        raise UsageError(bad)
    return ranges


def parse_cpu_list(text: str) -> set[int]:
    """'0,2-3' -> {0, 2, 3}; at most MAX_CPU_ID + 1 entries whatever the text says."""
    return {c for lo, hi in cpu_ranges(text) for c in range(lo, hi + 1)}


def _pin(cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as exc:
        raise UsageError(f"cannot pin to cpus {sorted(cpus)}: {getattr(exc, 'strerror', exc)}") from None


def resolve_target(device: str = "host", target: str | None = None, **options) -> Target:
    """``--device``/``--target`` -> a Target.

    ``--device arm`` without ``--target``: ``local`` on an aarch64 host, else ``$EDGE_ARM_TARGET``,
    else ``qemu`` (emulated; the caller warns).
    """
    device = (device or "host").lower()
    if device == "host":
        if target not in (None, "", "local", "host"):
            raise UsageError(f"--target {target} needs --device arm")
        return HostTarget("host")
    if device == "browser":
        from .browser import BrowserTarget

        return BrowserTarget(**{k: v for k, v in options.items() if k in ("wait", "host", "port", "out", "https")})
    if device != "arm":
        raise UsageError(f"unknown device '{device}' (choose from: host, arm, browser)")
    if not target:
        if platform.machine().lower() in ("aarch64", "arm64"):
            target = "local"
        else:
            target = os.environ.get("EDGE_ARM_TARGET") or "qemu"
    if target == "local":
        if platform.machine().lower() not in ("aarch64", "arm64"):
            raise UsageError(f"--target local needs an aarch64 host (this one is {platform.machine()}); "
                             "use ssh://user@board, adb://SERIAL or qemu")
        return HostTarget("local")
    if target.startswith("ssh://"):
        from .ssh import SshTarget

        return SshTarget(target)
    if target.startswith("adb://"):
        from .adb import AdbTarget

        return AdbTarget(target)
    if target == "qemu":
        from .qemu import QemuTarget

        return QemuTarget()
    raise UsageError(f"unknown target '{target}' (choose from: local, ssh://user@host[:port], adb://SERIAL, qemu)")
