"""What every target shares: the run request, the base class, the registry by URL scheme, and
the helpers to ship and run ``runtime/runner.py`` on a device.

A target takes a ``RunSpec`` (which file, which engine, thread counts, runs ...) and returns the
device-side records that ``shufflenet_edge.runtime.runner.run`` produces (latency statistics,
peak RSS, the device's CPU); ``shufflenet_edge.bench`` completes them (``record.py``). A
target's own settings (``--remote-python`` for ssh, ``--benchmark-binary`` for adb, ``--wait``
for the browser) are arguments of its constructor, declared in its ``options``.
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
    """What every target honours. ``artifact``: the file a runtime opens (the rest of its
    artifact sits beside it), or for the torch engine the nn.Module itself (None in old callers)."""

    artifact: object
    engine: str | None = None  # None: the first installed runtime for the file type
    threads: list[int] = field(default_factory=lambda: [1])
    runs: int | None = 100  # None: measure until stable within max_seconds (runtime/timing.py)
    warmup: int = 10
    rounds: int = 5
    batch: int = 1
    profile: bool = False
    cpus: str | None = None  # core pinning on the device (taskset list, e.g. "4-7")
    max_seconds: float | None = None
    # OpenVINO's INFERENCE_PRECISION_HINT (f32 unless bf16 is asked for): a runner option like
    # ``engine``, passed to every runner.py (host, ssh, qemu); engines other than openvino refuse it
    inference_precision: str | None = None

    @property
    def is_file(self) -> bool:
        return isinstance(self.artifact, (str, os.PathLike))

    def file(self, why: str):
        """The artifact (``export.Artifact``) to run, or a UsageError saying ``why`` a model cannot run here."""
        from ...export.artifact import Artifact

        if not self.is_file:
            raise UsageError(why)
        art = Artifact.at(self.artifact)
        if not art.path.is_file():
            raise UsageError(f"artifact not found: {art.path}")
        missing = art.missing()
        if missing:
            raise UsageError(f"{art.path.name}: its {art.format.name} artifact lacks {', '.join(p.name for p in missing)}")
        return art


def export_formats() -> tuple[str, ...]:
    from ...export.formats import FORMATS

    return tuple(FORMATS)


class Target:
    """Base class. ``name`` is stored as ``device.target``; ``emulated`` marks timings that say
    nothing about real speed (they are never mixed with real ones); ``formats`` are what it runs
    (by default every export format: the runner opens whatever ``runtime/engines.py`` can)."""

    name = "host"
    emulated = False
    options: tuple[str, ...] = ()  # constructor keywords it takes from bench(): remote_python, wait, ...
    # Runs runtime/runner.py (or the torch engine), whose loop can measure until stable; the
    # others take a fixed run count (benchmark_model on a phone, the browser page, qemu counting).
    until_stable = False

    @property
    def formats(self) -> tuple[str, ...]:
        return export_formats()

    def run(self, spec: RunSpec) -> list[dict]:
        raise NotImplementedError

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ registry by URL scheme

TARGETS: dict[str, type] = {}  # scheme ("ssh", "adb", "qemu", "local", "host", "browser") -> class


def register_target(*schemes: str):
    """Class decorator: ``--target SCHEME://...`` (or the bare word) builds this class with
    ``cls.from_url(url, **options)``."""
    def add(cls):
        for s in schemes:
            TARGETS[s] = cls
        return cls
    return add


def is_arm64_host() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


def default_arm_target() -> str:
    """``--device arm`` without ``--target``: local on an aarch64 host, else $EDGE_ARM_TARGET, else qemu."""
    if is_arm64_host():
        return "local"
    return os.environ.get("EDGE_ARM_TARGET") or "qemu"


def emulation_warning(device: str, target: str | None) -> bool:
    """True when ``--device arm`` will fall back to qemu because no device was named (callers warn)."""
    return device == "arm" and not target and default_arm_target() == "qemu"


# ------------------------------------------------------------------ shipping the runner

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


def pin(cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as exc:
        raise UsageError(f"cannot pin to cpus {sorted(cpus)}: {getattr(exc, 'strerror', exc)}") from None
