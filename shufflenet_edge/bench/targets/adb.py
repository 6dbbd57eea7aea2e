"""``--target adb://SERIAL``: benchmark a .tflite file on an Android phone with TFLite's ``benchmark_model``.

Android cannot load the PyPI runtimes (glibc builds), so the phone runs Google's own C++
benchmark tool instead of runner.py: the .tflite file and the ``benchmark_model`` binary you
point to with ``--benchmark-binary`` are pushed to a scratch directory under /data/local/tmp,
run once per thread count with XNNPACK on (optionally pinned with ``taskset MASK``), and its
log is parsed into the record format. The directory is removed afterwards.

What benchmark_model reports, and so what the record holds: count, min, max, mean and
(population) std of the timed runs, and in builds since TensorFlow's stats moved to TSL also
p5/median/p95. Its p90/p99 do not exist: they are None (with ``latency_note``), and p50 is the
tool's median where it prints one, else None; nothing is estimated. The init time, first and
warm-up inference and memory figures are kept under ``benchmark_model``.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

from ...errors import UsageError
from ...runtime.runner import device_record
from ...runtime.timing import cpu_model, isa_features
from .base import RunSpec, Target, TargetError, cpu_ranges, parse_cpu_list, register_target
from .ssh import last_line, signal_words

GET_BENCHMARK_MODEL = (
    "the adb target needs TFLite's benchmark_model for Android: pass --benchmark-binary PATH to the prebuilt "
    "android_aarch64 benchmark_model linked from the TensorFlow Lite / LiteRT 'performance measurement' docs, or build "
    "it with bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model")
REMOTE_ROOT = "/data/local/tmp"
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*\Z")  # USB serials, emulator-5554, 192.168.1.7:5555

_NUM = r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf)"
# tsl::Stat::OutputToStream, plus StatWithPercentiles' suffix in newer builds
_STAT = re.compile(r"\bcount=(\d+)(?: first=" + _NUM + r")? curr=" + _NUM + r"(?:\(all same\))?"
                   r"(?: min=" + _NUM + r" max=" + _NUM + r" avg=" + _NUM + r" std=" + _NUM + r")?"
                   r"(?: p5=" + _NUM + r" median=" + _NUM + r" p95=" + _NUM + r")?")
_TIMINGS = re.compile(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM +
                      r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM)
_FOOTPRINT = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=" + _NUM +
                        r" overall=" + _NUM)
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUM)
_MODEL_MB = re.compile(r"The input model file size \(MB\): " + _NUM)
LATENCY_NOTE = ("benchmark_model gives count/min/max/avg/std (and p5/median/p95 in newer builds): p50 is its median "
                "where printed, p90/p99 are not reported")


def _stat(line: str) -> dict | None:
    """One ``count=... first=... curr=... min=... max=... avg=... std=...`` line, in microseconds."""
    m = _STAT.search(line)
    if not m:
        return None
    count, first, curr, lo, hi, avg, std, p5, median, p95 = m.groups()
    count = int(count)
    curr = float(curr)
    if lo is None:  # every run took the same time (or there was one): the tool prints only curr
        lo = hi = avg = curr
        std = 0.0
    stat = {"count": count, "first": float(first) if first is not None else curr, "curr": curr, "min": float(lo),
            "max": float(hi), "avg": float(avg), "std": float(std)}
    if median is not None:
        stat.update(p5=float(p5), median=float(median), p95=float(p95))
    return stat


def parse_benchmark_output(text: str) -> dict:
    """The figures in a benchmark_model log (stdout and stderr together; 'INFO: ' prefixes or not).

    Returns ``{"warmup": stat, "inference": stat, "init_us", "first_inference_us", "warmup_avg_us",
    "inference_avg_us", "memory_init_mb", "memory_overall_mb", "peak_memory_mb", "model_mb"}`` (absent
    figures are None). The tool prints one stat line per block of runs, warm-up first, then the timed
    runs; the op profiler's tables ("Timings (microseconds): ...", "Memory (bytes): ...") sum per-op
    times and are never taken for latency. A log without both blocks raises TargetError with the
    tool's own ERROR line where there is one.
    """
    text = text or ""
    lines = text.splitlines()
    blocks = [st for st in (_stat(ln) for ln in lines if "Timings (microseconds)" not in ln
                            and "Memory (bytes)" not in ln) if st]
    if len(blocks) < 2:
        errors = [e for e in (ln.split("ERROR:", 1)[1].strip() for ln in lines if "ERROR:" in ln) if e]
        failed = [ln.strip() for ln in lines if "failed" in ln.lower() or "could not" in ln.lower()]
        why = (errors or failed or [last_line(text) or "no output"])[0][:300]
        raise TargetError(f"benchmark_model printed no timings: {why}")

    def grab(rx, n=1):
        m = rx.search(text)
        return [float(m.group(k)) for k in range(1, n + 1)] if m else [None] * n

    init_us, first_us, warm_avg, inf_avg = grab(_TIMINGS, 4)
    mem_init, mem_overall = grab(_FOOTPRINT, 2)
    (peak,) = grab(_PEAK)
    (model_mb,) = grab(_MODEL_MB)
    return {"warmup": blocks[0], "inference": blocks[1], "init_us": init_us, "first_inference_us": first_us,
            "warmup_avg_us": warm_avg, "inference_avg_us": inf_avg, "memory_init_mb": mem_init,
            "memory_overall_mb": mem_overall, "peak_memory_mb": peak, "model_mb": model_mb}


def record_from_output(parsed: dict, threads: int, runtime_version: str = "benchmark_model", size_bytes=None,
                       device: dict | None = None) -> dict:
    """A device-side record (``runner.device_record``) from ``parse_benchmark_output``; times in ms."""
    inf = parsed["inference"]
    ms = 1e-3
    mean = inf["avg"] * ms
    std = inf["std"] * ms
    p50 = inf["median"] * ms if "median" in inf else None

    def opt(v):
        return round(v * ms, 4) if v is not None else None

    timed = {"runs": inf["count"],
             "latency_ms": {"min": inf["min"] * ms, "mean": mean, "p50": p50, "p90": None, "p99": None, "std": std,
                            "cv": std / mean if mean > 0 else 0.0},
             # one uninterleaved block per thread count: a single round, so no spread between rounds
             "rounds": {"n": 1, "p50_ms": [round(p50, 4)] if p50 is not None else [], "spread": 0.0}}
    rec = device_record("benchmark_model", runtime_version, threads, 1, parsed["warmup"]["count"], timed,
                        peak_rss_mb=parsed["peak_memory_mb"], size_bytes=size_bytes, device=device or {})
    return {
        **rec, "latency_note": LATENCY_NOTE,
        "benchmark_model": {
            "init_ms": opt(parsed["init_us"]), "first_inference_ms": opt(parsed["first_inference_us"]),
            "warmup_avg_ms": opt(parsed["warmup_avg_us"]), "p5_ms": opt(inf.get("p5")), "p95_ms": opt(inf.get("p95")),
            "memory_delta_init_mb": parsed["memory_init_mb"], "memory_delta_overall_mb": parsed["memory_overall_mb"],
            "peak_memory_mb": parsed["peak_memory_mb"],
        },
    }


def cpu_mask(cpus: str) -> str:
    """'4-7' -> 'f0': Android's toybox taskset takes a hex mask, not a -c list."""
    mask = 0
    for lo, hi in cpu_ranges(cpus):  # whole ranges at once: linear in the text, not in the cpu ids
        mask |= (1 << (hi + 1)) - (1 << lo)
    return format(mask, "x")


def adb_failure(stderr: str, serial: str) -> str | None:
    """adb's own complaints (not the phone's command's) as one line, or None."""
    low = (stderr or "").lower()
    if "unauthorized" in low:
        return f"device {serial} is unauthorized: unlock it and accept the 'Allow USB debugging' prompt"
    if "offline" in low:
        return f"device {serial} is offline: reconnect it (or adb reconnect)"
    if ("not found" in low and "device" in low) or "no devices/emulators found" in low:
        return f"no device {serial} is connected ('adb devices' lists them; adb connect HOST:PORT for Wi-Fi)"
    if "cannot connect to daemon" in low or "failed to start daemon" in low:
        return f"the adb server could not start: {last_line(stderr)}"
    if ("closed" in low and low.strip().startswith(("error", "adb:"))) or "protocol fault" in low \
            or "device still authorizing" in low or "connection reset" in low:
        return f"device {serial} dropped off ({last_line(stderr)})"
    return None


@register_target("adb")
class AdbTarget(Target):
    """An Android phone reached with ``adb -s SERIAL``; runs .tflite files with benchmark_model
    (``benchmark_binary``: the android_aarch64 build to push, ``--benchmark-binary``)."""

    emulated = False
    formats = ("tflite",)  # what TFLite's benchmark_model runs, not a runtime/engines.py engine
    options = ("benchmark_binary",)
    url_help = "adb://SERIAL"

    def __init__(self, url: str, benchmark_binary: str | None = None):
        serial = url[len("adb://"):] if url.startswith("adb://") else url
        if not _SERIAL.match(serial or ""):
            raise UsageError(f"bad adb target '{url}': use adb://SERIAL (the serial from 'adb devices')")
        self.serial = serial
        self.name = f"adb://{serial}"
        self.benchmark_binary = benchmark_binary

    @classmethod
    def from_url(cls, url: str, **options) -> AdbTarget:
        return cls(url, **options)

    def _adb(self, args: list[str], timeout: float | None = 120) -> subprocess.CompletedProcess:
        tool = shutil.which("adb")
        if not tool:
            raise TargetError("adb is not installed (Debian/Ubuntu: apt install adb; or Android SDK platform-tools)")
        try:
            res = subprocess.run([tool, "-s", self.serial, *args], capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.name}: adb {args[0]} got no answer within {timeout:.0f} s") from None
        # drop the server's own start-up chatter ("* daemon not running; starting now ...")
        res.stderr = "\n".join(ln for ln in (res.stderr or "").splitlines() if not ln.startswith("* "))
        return res

    def _shell(self, words: list[str], what: str, timeout: float | None = 120) -> subprocess.CompletedProcess:
        """``adb shell`` with a command line whose every word is quoted (adb joins them for the phone's sh)."""
        res = self._adb(["shell", " ".join(shlex.quote(w) for w in words)], timeout=timeout)
        if res.returncode != 0:
            self.fail(res, f"{what} failed")
        return res

    def fail(self, res, what: str):
        """Raise the one-line error for a failed adb call: adb's own reason, else ``what`` and the last line."""
        why = adb_failure(res.stderr, self.serial) or f"{what}: {last_line(res.stderr) or last_line(res.stdout)}"
        raise TargetError(f"{self.name}: {why}")

    def check_connected(self) -> None:
        res = self._adb(["get-state"], timeout=30)
        if res.returncode != 0 or res.stdout.strip() != "device":
            why = adb_failure(res.stderr, self.serial) or last_line(res.stderr) or res.stdout.strip() or "not ready"
            raise TargetError(f"{self.name}: {why}")

    def device_info(self) -> dict:
        # one fixed script (no user input), sections split by a marker line
        script = ("getprop ro.product.model; echo @@; getprop ro.board.platform; echo @@; "
                  "getprop ro.build.version.release; echo @@; getprop ro.product.cpu.abi; echo @@; uname -m; echo @@; "
                  "cat /sys/devices/system/cpu/possible; echo @@; "
                  "cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor; echo @@; "
                  "cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq; echo @@; cat /proc/cpuinfo")
        res = self._adb(["shell", script], timeout=60)
        parts = [p.strip() for p in (res.stdout or "").split("@@")]
        if res.returncode != 0 or len(parts) < 9:
            self.fail(res, "cannot read the device facts")
        model, platform, release, abi, machine, possible, governor, max_khz, cpuinfo = parts[:9]
        try:
            cores = len(parse_cpu_list(possible))
        except UsageError:
            cores = sum(1 for ln in cpuinfo.splitlines() if ln.lower().startswith("processor")) or None
        return {"machine": machine or abi, "cpu": cpu_model(cpuinfo), "cores": cores, "governor": governor or None,
                "max_mhz": int(max_khz) // 1000 if max_khz.isdigit() else None, "isa": isa_features(cpuinfo),
                "system": f"Android {release}",
                "model": model, "board_platform": platform, "abi": abi, "target": self.name, "emulated": False}

    def benchmark_command(self, binary: str, graph: str, threads: int, spec: RunSpec) -> list[str]:
        cmd = [binary, f"--graph={graph}", f"--num_threads={int(threads)}", f"--num_runs={int(spec.runs)}",
               f"--warmup_runs={int(spec.warmup)}", "--min_secs=0", "--warmup_min_secs=0", "--use_xnnpack=true",
               "--report_peak_memory_footprint=true"]
        return ["taskset", cpu_mask(spec.cpus), *cmd] if spec.cpus else cmd

    def _check_spec(self, spec: RunSpec):
        if not spec.is_file or Path(spec.artifact).suffix.lower() != ".tflite":
            got = Path(spec.artifact).name if spec.is_file else "the torch engine"
            raise UsageError(f"adb targets run .tflite files with TFLite's benchmark_model (got {got})")
        if spec.engine not in (None, "benchmark_model"):
            raise UsageError(f"adb targets time with benchmark_model; --engine {spec.engine} does not run on Android")
        if int(spec.batch) != 1:
            raise UsageError("adb targets run the file's own batch of 1 (benchmark_model); drop --batch")
        art = spec.file("")
        art = type(art)(art.path.resolve(), art.format)  # absolute: a name starting with '-' is never an adb option
        if not self.benchmark_binary:
            raise UsageError(GET_BENCHMARK_MODEL)
        binary = Path(self.benchmark_binary).resolve()
        if not binary.is_file():
            raise UsageError(f"--benchmark-binary {self.benchmark_binary} does not exist; {GET_BENCHMARK_MODEL}")
        if spec.cpus:
            cpu_mask(spec.cpus)
        return art, binary

    def run(self, spec: RunSpec) -> list[dict]:
        art, binary = self._check_spec(spec)
        self.check_connected()
        device = self.device_info()
        if spec.cpus:
            device["cpus"] = spec.cpus
        workdir = f"{REMOTE_ROOT}/edge-bench-{secrets.token_hex(4)}"
        remote = art.renamed(workdir, "model")  # fixed safe names on the phone
        remote_model, remote_bin = str(remote.path), f"{workdir}/benchmark_model"
        binary_id = "sha256:" + hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
        records = []
        self._shell(["mkdir", "-p", workdir], "mkdir")
        try:
            for local, remote in [*zip(art.files, map(str, remote.files)), (binary, remote_bin)]:
                res = self._adb(["push", str(local), remote], timeout=300)
                if res.returncode != 0:
                    self.fail(res, "adb push failed")
            self._shell(["chmod", "755", remote_bin], "chmod")
            for t in spec.threads:
                res = self._adb(["shell", " ".join(shlex.quote(w) for w in self.benchmark_command(
                    remote_bin, remote_model, t, spec))], timeout=None)
                records.append(self._record(res, t, spec, art.size_bytes, device, binary_id))
        finally:
            try:  # best effort: a phone that dropped off cannot be tidied
                self._adb(["shell", f"rm -rf {shlex.quote(workdir)}"], timeout=30)
            except TargetError:
                pass
        return records

    def _record(self, res, threads: int, spec: RunSpec, size_bytes: int, device: dict, binary_id: str) -> dict:
        out = (res.stdout or "") + "\n" + (res.stderr or "")
        try:
            parsed = parse_benchmark_output(out)
        except TargetError as exc:
            gone = adb_failure(res.stderr, self.serial)
            if gone:
                raise TargetError(f"{self.name}: {gone}") from None
            if 128 < res.returncode < 255:
                raise TargetError(f"{self.name}: benchmark_model {signal_words(res.returncode - 128)}") from None
            raise TargetError(f"{self.name}: {exc}") from None
        rec = record_from_output(parsed, threads, f"benchmark_model {binary_id}", size_bytes, device)
        rec["benchmark_model"]["command"] = self.benchmark_command("benchmark_model", "model.tflite", threads, spec)
        if spec.profile:
            rec["profile"] = {"error": "per-op profiles over adb are not parsed: run benchmark_model with "
                                       "--enable_op_profiling=true by hand"}
        return rec
