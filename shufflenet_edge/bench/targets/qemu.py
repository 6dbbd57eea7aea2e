"""``--target qemu``: the same ``runner.py`` under qemu-aarch64 user-mode emulation (EMULATED).

Timings are 300-650x slower than a real ARM core and say nothing about its speed; they are stored
with ``device.emulated = true`` and reported apart. What emulation does measure exactly is work:
``instructions_per_inference`` counts the aarch64 instructions one inference executes, with a
small TCG plugin (``insn_count.c``, built with gcc on first use).

How it counts: ``insn_count_guest.py`` runs inferences between marker syscalls and the plugin
records the running count at each marker, so each inference is counted on its own; the median
over the inferences, less the median cost of an empty marker pair, is the figure. Counting whole
runs of two lengths and dividing the difference was tried first and is not repeatable enough:
onnxruntime's import and session start-up vary by up to ~5M instructions between processes and
an occasional inference does ~0.4M instructions of extra (time-driven) work, which put pairs of
such counts 2-3% apart; per-inference medians repeat to about 0.01%.

Needs Debian's ``qemu-user`` (the dynamic build: ``qemu-user-static`` cannot load plugins) and
``gcc``; the aarch64 userland comes from ``arm64_userland.py``. One thread only: emulated vCPUs
are host threads on a shared machine, so a thread sweep would measure the host.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from ...errors import UsageError
from ...io_utils import atomic_path
from .base import (RunSpec, Target, TargetError, export_formats, parse_cpu_list, parse_runner_output, pin,
                   register_target, runner_args, runner_files)
from .arm64_userland import QEMU_CPU, WHEELS, arm64_dir, build_lock, ensure_userland, guest_env, guest_python
from .insn_count_guest import MARK_OFFSET

PLUGIN_SOURCE = Path(__file__).with_name("insn_count.c")
GUEST_SCRIPT = Path(__file__).with_name("insn_count_guest.py")
COUNT_INFERENCES = 7  # counted one by one; the median ignores up to 3 with extra work


def find_qemu() -> str:
    path = shutil.which("qemu-aarch64")
    if path:
        return path
    static = " (qemu-aarch64-static cannot load the instruction-counting plugin)" if shutil.which(
        "qemu-aarch64-static") else ""
    raise TargetError(f"qemu-aarch64 not found{static}: install Debian's qemu-user package "
                      "(apt-get install qemu-user)")


def qemu_version(qemu: str) -> str:
    got = subprocess.run([qemu, "--version"], capture_output=True, text=True)
    m = re.search(r"version (\S+)", got.stdout)
    return m.group(1) if m else "unknown"


def probe_program(loops: int) -> tuple[bytes, list[int], int]:
    """A static aarch64 Linux executable that marks, counts ``loops`` down, marks again and exits;
    with the counts the plugin must report at the two marks and at exit. It checks the plugin
    (loading and exact counting) without any userland."""
    if not 0 < loops < 1 << 16:
        raise ValueError("loops must fit a 16-bit immediate")
    lo, hi = MARK_OFFSET & 0xFFFF, MARK_OFFSET >> 16
    code = [0x92800000,                 # movn x0, #0          (fd -1)
            0xD2800001 | (lo << 5),     # movz x1, #lo
            0xF2A00001 | (hi << 5),     # movk x1, #hi, lsl 16 (the marker offset)
            0xD2800002,                 # movz x2, #0          (SEEK_SET)
            0xD28007C8,                 # movz x8, #62         (lseek)
            0xD4000001,                 # svc #0               -> mark 1 after 6 instructions
            0xD2800003 | (loops << 5),  # movz x3, #loops
            0xF1000463,                 # loop: subs x3, x3, #1
            0x54FFFFE1,                 # b.ne loop
            0x92800000,                 # movn x0, #0          (lseek returned -EBADF in x0)
            0xD4000001,                 # svc #0               -> mark 2, 2 * loops + 3 later
            0xD2800000,                 # movz x0, #0
            0xD2800BC8,                 # movz x8, #94         (exit_group)
            0xD4000001]                 # svc #0
    body = struct.pack(f"<{len(code)}I", *code)
    base, hdr = 0x400000, 64 + 56
    size = hdr + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, SysV
    elf = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, 183, 1, base + hdr, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # one PT_LOAD, r-x
    return elf + phdr + body, [6, 2 * loops + 9], 2 * loops + 12


def read_counts(path: Path) -> tuple[list[int], int]:
    """(marks, total) from the plugin's output file."""
    marks, total = [], None
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "mark":
            marks.append(int(value))
        elif key == "total":
            total = int(value)
    if total is None:
        raise ValueError(f"no total in {path}")
    return marks, total


def _plugin_arg(plugin: Path, out: Path) -> str:
    # qemu splits -plugin at commas: a comma in either path would corrupt the option
    for p in (plugin, out):
        if "," in str(p):
            raise TargetError(f"qemu -plugin cannot take a path with a comma: {p} (set EDGE_CACHE_DIR or TMPDIR)")
    return f"{plugin},out={out}"


def count_probe(qemu: str, plugin: Path, loops: int = 1000) -> tuple[tuple[list[int], int], tuple[list[int], int]]:
    """((marks, total) counted, (marks, total) expected) for ``probe_program(loops)`` under ``plugin``."""
    program, want_marks, want_total = probe_program(loops)
    with tempfile.TemporaryDirectory(prefix="edge-qemu-") as tmp:
        exe, out = Path(tmp) / "probe", Path(tmp) / "count.txt"
        exe.write_bytes(program)
        exe.chmod(0o755)
        got = subprocess.run([qemu, "-plugin", _plugin_arg(plugin, out), str(exe)], capture_output=True, text=True)
        if got.returncode != 0 or not out.is_file():
            lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
            raise TargetError(f"qemu cannot load the instruction-counting plugin {plugin}: "
                              f"{lines[-1][:300] if lines else 'exit code ' + str(got.returncode)}")
        return read_counts(out), (want_marks, want_total)


def compile_plugin(dest: Path, source: Path = PLUGIN_SOURCE) -> Path:
    """gcc ``source`` -> the shared object ``dest``, or a one-line TargetError."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise TargetError("gcc not found: install Debian's gcc package (it builds the qemu instruction-counting plugin)")
    got = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", str(dest), str(source)],
                         capture_output=True, text=True)
    if got.returncode != 0:
        lines = [ln for ln in got.stderr.splitlines() if "error" in ln] or got.stderr.splitlines() or ["?"]
        raise TargetError(f"building the qemu plugin {Path(source).name} failed: {lines[0].strip()[:300]}")
    return dest


def ensure_plugin(qemu: str) -> Path:
    """The built plugin, cached beside the userland; keyed by its source and the qemu build it loads into."""
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    key = hashlib.sha256(PLUGIN_SOURCE.read_bytes() + "".join(version).encode()).hexdigest()[:12]
    dest = arm64_dir() / f"insn_count-{key}.so"
    if dest.is_file():
        return dest
    with build_lock("plugin"):
        if not dest.is_file():
            with atomic_path(dest) as tmp:
                compile_plugin(tmp)
                counted, expected = count_probe(qemu, tmp)
                if counted != expected:
                    raise TargetError(f"the qemu instruction-counting plugin counted (marks, total) {counted} "
                                      f"in a program that executes {expected}")
    return dest


@register_target("qemu")
class QemuTarget(Target):
    name = "qemu"
    emulated = True
    url_help = "qemu"

    @classmethod
    def from_url(cls, url: str) -> QemuTarget:
        return cls()

    @property
    def formats(self) -> tuple[str, ...]:
        """Export formats that an engine in the userland's wheels runs. ExecuTorch's aarch64
        pybindings link libtorch (a 600 MB userland for one engine), so pte is left out."""
        from ...runtime.engines import ENGINES, engines_for

        have = {w.replace("-", "_") for w in WHEELS}
        return tuple(f for f in export_formats() if any(ENGINES[e].module in have for e in engines_for(f)))

    # -- checks and set-up ---------------------------------------------------------------------
    def _check(self, spec: RunSpec) -> None:
        if not spec.is_file:
            raise UsageError(f"--target qemu runs exported files ({', '.join(self.formats)}), not --format torch")
        if list(spec.threads) != [1]:
            raise UsageError(f"--target qemu runs 1 thread only (got --threads {','.join(map(str, spec.threads))}): "
                             "emulated threads are host threads and say nothing about ARM scaling")
        if spec.cpus:
            parse_cpu_list(spec.cpus)

    def prepare(self) -> tuple[str, Path, Path]:
        """(qemu, userland root, plugin), building the latter two on first use."""
        qemu = find_qemu()
        root = ensure_userland(qemu)
        return qemu, root, ensure_plugin(qemu)

    # -- running ---------------------------------------------------------------------------------
    def _command(self, qemu: str, root: Path, args: list[str], plugin_arg: str | None = None,
                 script: Path | None = None) -> list[str]:
        cmd = [qemu, "-cpu", QEMU_CPU, "-L", str(root)]
        if plugin_arg:
            cmd += ["-plugin", plugin_arg]
        return cmd + [str(root) + guest_python(), str(script or runner_files()[0]), *args]

    def _run(self, cmd: list[str], spec: RunSpec) -> str:
        """Run one emulated process to its end; its stdout, or a one-line TargetError if it printed no JSON."""
        cpus = parse_cpu_list(spec.cpus) if spec.cpus else None
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=guest_env(),
                                preexec_fn=(lambda: pin(cpus)) if cpus else None)
        try:
            out, err = proc.communicate()
        finally:  # interrupted (Ctrl-C): no emulated process is left behind
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if not any(line.lstrip().startswith("{") for line in out.splitlines()):
            lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
            raise TargetError(f"qemu: the emulated run failed (exit code {proc.returncode})"
                              f"{': ' + lines[-1][:300] if lines else ''}")
        return out

    def count_instructions(self, spec: RunSpec, inferences: int = COUNT_INFERENCES, prepared=None) -> int:
        """aarch64 instructions per inference: the median over ``inferences`` counted one by one."""
        qemu, root, plugin = prepared or self.prepare()
        with tempfile.TemporaryDirectory(prefix="edge-qemu-") as tmp:
            out = Path(tmp) / "counts.txt"
            args = [str(runner_files()[0].parent), str(spec.artifact), "--inferences", str(int(inferences)),
                    "--batch", str(spec.batch)] + (["--engine", spec.engine] if spec.engine else [])
            cmd = self._command(qemu, root, args, _plugin_arg(plugin, out), script=GUEST_SCRIPT)
            got = json.loads([ln for ln in self._run(cmd, spec).splitlines() if ln.lstrip().startswith("{")][-1])
            if "error" in got:
                raise TargetError(f"qemu: {got['error']}")
            try:
                marks, _ = read_counts(out)
            except (OSError, ValueError):
                raise TargetError("qemu: the instruction-counting plugin wrote no counts") from None
        empty_pairs = int(got.get("marks", 0))
        if len(marks) != 2 * (empty_pairs + int(inferences)):
            raise TargetError(f"qemu: expected {2 * (empty_pairs + int(inferences))} instruction-count marks, "
                              f"got {len(marks)}")
        spans = [b - a for a, b in zip(marks[0::2], marks[1::2])]
        empty, per_inference = statistics.median(spans[:empty_pairs]), statistics.median(spans[empty_pairs:])
        return int(round(per_inference - empty))

    def run(self, spec: RunSpec) -> list[dict]:
        from ...runtime.timing import cpu_model

        self._check(spec)
        prepared = self.prepare()
        qemu, root, _ = prepared
        # the GEMM peak is skipped: emulated, it takes ~12 s and measures qemu, not a CPU ceiling
        out = self._run(self._command(qemu, root, runner_args(spec, str(spec.artifact), peak=False)), spec)
        records = parse_runner_output(out, "qemu")
        per_inference = self.count_instructions(spec, prepared=prepared)
        version = qemu_version(qemu)
        emulated_on = {"cpu": f"{QEMU_CPU} (emulated by qemu-aarch64 {version})", "qemu_cpu": QEMU_CPU,
                       "qemu": version, "host_cpu": cpu_model(), "target": self.name, "emulated": True}
        for rec in records:
            rec.setdefault("device", {}).update(emulated_on)
            rec["instructions_per_inference"] = int(per_inference)
        return records


if __name__ == "__main__":  # python -m shufflenet_edge.bench.targets.qemu: build (or find) the userland and plugin
    q, r, p = QemuTarget().prepare()
    print(f"qemu {q}\nuserland {r}\nplugin {p}", file=sys.stderr)
