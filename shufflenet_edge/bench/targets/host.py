"""``--device host`` and ``--device arm --target local``: this machine."""
from __future__ import annotations

import subprocess
import sys

from ...errors import UsageError
from .base import (RUNTIME_DIR, RunSpec, Target, TargetError, export_formats, is_arm64_host, parse_cpu_list,
                   parse_runner_output, pin, register_target, runner_args)


@register_target("host", "local")
class HostTarget(Target):
    """This machine (``--device host``; ``--device arm --target local`` on aarch64).

    Files run in a child process, exactly as on a board: the peak RSS is the runtime's own (not
    torch's, which the parent has loaded), and a runtime that crashes cannot take the caller down.
    The torch engine runs here only, in this process.
    """

    url_help = "local"
    until_stable = True

    def __init__(self, name: str = "host"):
        self.name = name

    @classmethod
    def from_url(cls, url: str) -> HostTarget:
        if url == "local" and not is_arm64_host():
            import platform

            raise UsageError(f"--target local needs an aarch64 host (this one is {platform.machine()}); "
                             "use ssh://user@board, adb://SERIAL or qemu")
        return cls(url)

    @property
    def formats(self) -> tuple[str, ...]:
        return (*export_formats(), "torch")

    def run(self, spec: RunSpec) -> list[dict]:
        cpus = parse_cpu_list(spec.cpus) if spec.cpus else None
        if not spec.is_file:
            from ..torch_engine import run_torch

            if cpus:
                pin(cpus)
            return run_torch(spec)
        art = spec.file("")
        cmd = [sys.executable, str(RUNTIME_DIR / "runner.py"), *runner_args(spec, str(art.path))]
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=(lambda: pin(cpus)) if cpus else None)
        if proc.returncode not in (0, 3):
            err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise TargetError(f"runner on {self.name} failed: {err[:300]}")
        return parse_runner_output(proc.stdout, self.name)
