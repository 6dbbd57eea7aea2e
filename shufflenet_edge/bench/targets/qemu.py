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

Counting many files (``edge predict fit --device arm``: hundreds of micro-models) goes through a
``CountingServer``: one emulated python (``insn_count_server.py``) that opens each file it is
sent and counts it the same way, so the start-up (~7e8 instructions) is paid once.

Needs Debian's ``qemu-user`` (the dynamic build: ``qemu-user-static`` cannot load plugins) and
``gcc``; the aarch64 userland comes from ``arm64_userland.py``. One thread only: emulated vCPUs
are host threads on a shared machine, so a thread sweep would measure the host.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...errors import UsageError
from ...io_utils import atomic_path
from .base import (RunSpec, Target, TargetError, export_formats, parse_cpu_list, parse_runner_output, pin,
                   register_target, runner_args, runner_files)
from .arm64_userland import QEMU_CPU, WHEELS, arm64_dir, build_lock, ensure_userland, guest_env, guest_python
from .insn_count_guest import MARK_OFFSET

PLUGIN_SOURCE = Path(__file__).with_name("insn_count.c")
GUEST_SCRIPT = Path(__file__).with_name("insn_count_guest.py")
SERVER_SCRIPT = Path(__file__).with_name("insn_count_server.py")
COUNT_INFERENCES = 7  # counted one by one; the median ignores up to 3 with extra work
# two inferences whose counts are this close agree (the count is "stable"): 0.1%, or 1,000 instructions
# (the interpreter's own work between two markers varies by a few hundred)
AGREE, AGREE_ABS = 1e-3, 1000
SERVER_TIMEOUT_S = 900.0  # one file's count (start-up included) that takes longer is a hung guest


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


def inference_counts(marks: list[int], empty_pairs: int, inferences: int) -> dict:
    """Instructions per inference from the marks of one counted file: ``empty_pairs`` empty marker
    pairs, then ``inferences`` pairs around one inference each. ``raw``: the median inference (of
    two, the lower: extra work only ever adds) less the median empty pair; ``spans``: each
    inference's own count; ``stability``: "stable" when two inferences agree within ``AGREE`` (an
    occasional inference does extra, time-driven work)."""
    want = 2 * (int(empty_pairs) + int(inferences))
    if len(marks) != want or not inferences:
        raise TargetError(f"qemu: expected {want} instruction-count marks, got {len(marks)}")
    spans = [b - a for a, b in zip(marks[0::2], marks[1::2])]
    empty = statistics.median(spans[:empty_pairs]) if empty_pairs else 0
    counted = [s - empty for s in spans[empty_pairs:]]
    raw = statistics.median(counted) if len(counted) != 2 else min(counted)
    ordered = sorted(counted)
    closest = min((b - a for a, b in zip(ordered, ordered[1:])), default=None)
    stable = closest is not None and closest <= max(AGREE * abs(raw), AGREE_ABS)
    stability = {"verdict": "stable" if stable else "noisy", "spans": counted, "empty_pair": empty,
                 "reasons": [] if stable else [f"no two of {len(counted)} inferences agree within {AGREE:.1%} "
                                               f"(an inference with extra, time-driven work)"]}
    return {"raw": float(raw), "stability": stability}


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
        return int(round(self.count(spec, inferences, prepared)["raw"]))

    def count(self, spec: RunSpec, inferences: int = COUNT_INFERENCES, prepared=None) -> dict:
        """``inference_counts`` of one file run as ``edge bench --device arm`` runs it."""
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
        return inference_counts(marks, int(got.get("marks", 0)), int(inferences))

    def counting_server(self, prepared=None) -> CountingServer:
        """A started ``CountingServer`` (close it, or use it in a ``with``)."""
        qemu, root, plugin = prepared or self.prepare()
        folder = Path(tempfile.mkdtemp(prefix="edge-qemu-"))
        try:
            marks = folder / "counts.txt"
            cmd = self._command(qemu, root, [str(runner_files()[0].parent)], _plugin_arg(plugin, marks),
                                script=SERVER_SCRIPT)
            return CountingServer(cmd, folder, marks)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def identity(self, qemu: str) -> dict:
        """What a record or a profile says about the emulated device (and the host that emulates it)."""
        from ...runtime.timing import cpu_model

        version = qemu_version(qemu)
        return {"cpu": f"{QEMU_CPU} (emulated by qemu-aarch64 {version})", "qemu_cpu": QEMU_CPU,
                "qemu": version, "host_cpu": cpu_model(), "target": self.name, "emulated": True}

    def run(self, spec: RunSpec) -> list[dict]:
        self._check(spec)
        prepared = self.prepare()
        qemu, root, _ = prepared
        # the GEMM peak is skipped: emulated, it takes ~12 s and measures qemu, not a CPU ceiling
        out = self._run(self._command(qemu, root, runner_args(spec, str(spec.artifact), peak=False)), spec)
        records = parse_runner_output(out, "qemu")
        per_inference = self.count_instructions(spec, prepared=prepared)
        emulated_on = self.identity(qemu)
        for rec in records:
            rec.setdefault("device", {}).update(emulated_on)
            rec["instructions_per_inference"] = int(per_inference)
        return records


class CountingServer:
    """One emulated python (``insn_count_server.py``) under the counting plugin that counts file
    after file: ``count(path)`` -> ``inference_counts``. The plugin writes each mark as it happens;
    after each answer the new marks are read from its file. A file that kills or hangs the guest is
    one TargetError line (the guest's last stderr line in it), and the next ``count`` starts a
    fresh guest (``restarts`` says how often): one bad file costs itself only."""

    def __init__(self, cmd: list[str], folder: Path, marks: Path, timeout: float = SERVER_TIMEOUT_S):
        self.cmd, self.folder, self.marks_path, self.timeout = cmd, folder, marks, float(timeout)
        self.proc = self._stderr = None
        self.files = self.restarts = 0
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self._end()
        self._stderr = open(self.folder / "stderr.txt", "w+b")
        self._buf, self._read = b"", 0  # the plugin starts a new marks file
        try:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         env=guest_env())
        except OSError as exc:
            raise TargetError(f"qemu: cannot start {self.cmd[0]}: {exc.strerror}") from None
        hello = self._answer()
        if not hello.get("ready"):
            raise TargetError(f"qemu: the counting guest did not start: {hello.get('error', hello)}")
        self.versions = hello.get("versions", {})

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _stderr_tail(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return f": {lines[-1][:300]}" if lines else ""

    def _answer(self) -> dict:
        """The guest's next JSON line (other lines on its stdout are skipped)."""
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.proc.kill()
                    raise TargetError(f"qemu: the counting guest gave no answer in {self.timeout:g} s (killed)")
                if select.select([fd], [], [], left)[0]:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        code = self.proc.wait()
                        raise TargetError(f"qemu: the counting guest ended (exit code {code}){self._stderr_tail()}")
                    self._buf += chunk
            line, self._buf = self._buf.split(b"\n", 1)
            if line.lstrip().startswith(b"{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue

    def _new_marks(self) -> list[int]:
        with open(self.marks_path, "rb") as f:
            f.seek(self._read)
            data = f.read()
        whole = data[:data.rfind(b"\n") + 1]  # a line being written stays for the next read
        self._read += len(whole)
        return [int(v) for k, _, v in (ln.partition(b" ") for ln in whole.splitlines()) if k == b"mark"]

    def count(self, path, plain: bool = False, inferences: int = 3, seed: int = 0) -> dict:
        """``inference_counts`` of one ONNX file (with ``seconds``: how long it took, emulated), run
        through IO binding, or ``plain``: as ``edge bench`` runs a whole model (outputs copied)."""
        if not self.alive:
            self._start()
            self.restarts += 1
        req = {"path": str(path), "plain": bool(plain), "inferences": int(inferences), "seed": int(seed)}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:  # a broken pipe: the guest has ended
            raise TargetError(f"qemu: the counting guest has ended{self._stderr_tail()}") from None
        got = self._answer()
        marks = self._new_marks()  # read even after an error: a half-counted file's marks are dropped
        if "error" in got:
            raise TargetError(f"qemu: {got['error']}")
        self.files += 1
        return {**inference_counts(marks, int(got["empty_pairs"]), int(inferences)), "seconds": got.get("seconds", {})}

    def _end(self) -> None:
        """Stop the guest (end of input, then a kill if it lingers) and close its pipes."""
        if self.proc is not None:
            try:
                if self.proc.poll() is None:
                    try:
                        self.proc.stdin.close()
                        self.proc.wait(timeout=30)
                    except (OSError, subprocess.TimeoutExpired):
                        self.proc.kill()
                        self.proc.wait()
            finally:
                for pipe in (self.proc.stdin, self.proc.stdout):
                    if pipe and not pipe.closed:
                        try:
                            pipe.close()
                        except OSError:
                            pass
                self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        try:
            self._end()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":  # python -m shufflenet_edge.bench.targets.qemu: build (or find) the userland and plugin
    q, r, p = QemuTarget().prepare()
    print(f"qemu {q}\nuserland {r}\nplugin {p}", file=sys.stderr)
