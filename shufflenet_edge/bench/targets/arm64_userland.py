"""An aarch64 userland for qemu-user: Debian's arm64 python3.11 plus the aarch64 wheels of numpy,
onnxruntime, ai-edge-litert and ncnn, built once and kept in ``~/.cache/shufflenet-edge/arm64``
(``$EDGE_CACHE_DIR/arm64``), never in the repository.

No root filesystem image and no chroot: ``apt-get download`` fetches the arm64 .debs of the
interpreter and the libraries it and the runtimes load, ``dpkg -x`` unpacks them into a
directory, and ``pip install --platform manylinux_2_X_aarch64 --target`` puts the wheels into
its dist-packages. ``qemu-aarch64 -L ROOT`` then looks up every absolute path under ROOT first
and falls back to the host's file, so the runner and the model file are read where they are.

That fallback is also why the userland carries its own ``/proc/cpuinfo`` and
``/sys/devices/system/cpu/{possible,present,online,kernel_max}``: qemu 7.2 does not emulate them
for aarch64, and onnxruntime's cpuinfo crashes (SIGSEGV at import) parsing the x86 host's. The
fake files describe one Cortex-A76, the CPU that qemu is told to emulate (``QEMU_CPU``).

A build runs under a lock file (a second build waits, then finds the finished one), in a
temporary directory that is renamed into place only when every step has passed, and a failed
step is one TargetError line. Adding the arm64 architecture to apt needs root; a non-root user
gets a line saying what to run.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...user_cache import cache_root
from .base import TargetError

PYTHON = "3.11"  # Debian bookworm's python3, and the wheels' --python-version
GLIBC = (2, 36)  # bookworm's libc6: the newest manylinux tag its wheels may need
QEMU_CPU = "cortex-a76"  # Raspberry Pi 5's core (ARMv8.2 + dotprod, no SVE): a fixed ISA across qemu versions

# The interpreter, its standard library's extension modules' libraries, and libstdc++ for the runtimes.
DEBS = (f"python{PYTHON}-minimal", f"libpython{PYTHON}-minimal", f"libpython{PYTHON}-stdlib",
        "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libbz2-1.0", "liblzma5",
        "libssl3", "libcrypt1", "libuuid1", "libsqlite3-0", "libncursesw6", "libtinfo6", "libreadline8",
        "libdb5.3", "libnsl2", "libtirpc3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3",
        "libkrb5support0", "libkeyutils1", "libcom-err2")
# Same versions as this project pins for the host (pyproject.toml), so emulated records name
# the runtimes the host ones do; a host upgrade gets a new userland (the key hashes these).
WHEELS = {"numpy": "2.4.6", "onnxruntime": "1.32.0", "ai-edge-litert": "2.3.0", "ncnn": "1.0.20261020"}
LAYOUT = 1  # bump when the build steps change what ends up in the userland

CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

"""


def arm64_dir() -> Path:
    return cache_root() / "arm64"


def userland_key() -> str:
    blob = json.dumps({"python": PYTHON, "glibc": GLIBC, "debs": DEBS, "wheels": WHEELS, "layout": LAYOUT},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def userland_root() -> Path:
    return arm64_dir() / f"userland-{userland_key()}"


def guest_python() -> str:
    """The interpreter's path as the guest sees it (qemu's -L finds it under the userland root)."""
    return f"/usr/bin/python{PYTHON}"


def guest_env() -> dict:
    """A clean environment: nothing of the host's Python setup (venv, PYTHONPATH, QEMU_*) leaks in.

    A fixed hash seed and no bytecode writes keep instruction counts repeatable."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp")}


@contextlib.contextmanager
def build_lock(name: str):
    """An exclusive lock file in the arm64 cache: one build at a time, across processes."""
    folder = arm64_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process building the {name} in {folder} ...", file=sys.stderr)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _step(what: str, cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run one build command; a failure is one TargetError line naming the step and its last error."""
    try:
        got = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        raise TargetError(f"building the arm64 userland: {cmd[0]} not found ({what})") from None
    if got.returncode != 0:
        lines = [ln.strip() for ln in (got.stderr + "\n" + got.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("E:", "ERROR", "error", "dpkg"))] or lines
        raise TargetError(f"building the arm64 userland: {what} failed: {errors[-1][:300] if errors else got.returncode}")
    return got


def _apt_has_arm64() -> bool:
    got = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True)
    return "arm64" in got.stdout.split()


def _enable_arm64() -> None:
    """``dpkg --add-architecture arm64 && apt-get update``: the one step that needs root."""
    if os.geteuid() != 0:
        raise TargetError("the emulated arm64 userland is not built yet and apt has no arm64 package lists: "
                          "run once as root `dpkg --add-architecture arm64 && apt-get update` (or run this as root)")
    if not _apt_has_arm64():
        _step("dpkg --add-architecture arm64", ["dpkg", "--add-architecture", "arm64"])
    _step("apt-get update", ["apt-get", "update", "-qq"])


def _download_debs(dest: Path) -> None:
    dest.mkdir(parents=True)
    cmd = ["apt-get", "download", "-qq", *(f"{p}:arm64" for p in DEBS)]
    updated = not _apt_has_arm64()
    if updated:
        _enable_arm64()
    try:
        _step("apt-get download of the arm64 python", cmd, cwd=dest)
    except TargetError:
        if updated or os.geteuid() != 0:
            raise
        _enable_arm64()  # stale or missing arm64 package lists: refresh once and retry
        _step("apt-get download of the arm64 python", cmd, cwd=dest)


def _unpack(debs: Path, root: Path) -> None:
    for deb in sorted(debs.glob("*.deb")):
        _step(f"dpkg -x {deb.name}", ["dpkg", "-x", str(deb), str(root)])


def _fake_cpu_files(root: Path) -> None:
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(CPUINFO)
    cpu = root / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online", "kernel_max"):
        (cpu / name).write_text("0\n")


def _install_wheels(root: Path) -> None:
    site = root / "usr" / "lib" / "python3" / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    # pip takes an exact platform list: every manylinux tag the userland's glibc can load
    platforms = [f"--platform=manylinux_2_{m}_aarch64" for m in range(17, GLIBC[1] + 1)]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
           "--no-compile", "--target", str(site), *platforms, "--platform=manylinux2014_aarch64",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON,
           *(f"{name}=={ver}" for name, ver in WHEELS.items())]
    _step("pip install of the aarch64 wheels", cmd)


def _compile_bytecode(root: Path) -> None:
    """Byte-compile with the host when it is the same Python (bytecode does not depend on the CPU):
    emulated, compiling on every import would cost seconds per run."""
    if sys.version_info[:2] != tuple(int(p) for p in PYTHON.split(".")):
        return
    # some test files in the standard library do not compile on purpose: the return code is ignored
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    str(root / "usr" / "lib" / f"python{PYTHON}"), str(root / "usr" / "lib" / "python3")],
                   capture_output=True)


def smoke_test(qemu: str, root: Path) -> None:
    """Import what runner.py imports, emulated: a userland that cannot is not kept."""
    code = "import numpy, onnxruntime, ncnn; from ai_edge_litert.interpreter import Interpreter; print('ok')"
    got = subprocess.run([qemu, "-cpu", QEMU_CPU, "-L", str(root), str(root) + guest_python(), "-c", code],
                         capture_output=True, text=True, env=guest_env())
    if got.returncode != 0 or "ok" not in got.stdout:
        tail = [ln for ln in got.stderr.splitlines() if ln.strip()]
        raise TargetError(f"building the arm64 userland: the emulated python cannot import the runtimes: "
                          f"{tail[-1][:300] if tail else 'exit code ' + str(got.returncode)}")


def ensure_userland(qemu: str) -> Path:
    """The userland's root directory, built on first use (about a minute; then cached)."""
    root = userland_root()
    if (root / "manifest.json").is_file():
        return root
    with build_lock("userland"):
        if (root / "manifest.json").is_file():  # another process finished it while we waited
            return root
        for stale in root.parent.glob(".build-*"):  # left by a killed build (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise TargetError("building the arm64 userland needs Debian's apt-get and dpkg (a Debian/Ubuntu host)")
        print(f"building the emulated arm64 userland in {root} (once) ...", file=sys.stderr)
        t0 = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
        try:
            new = tmp / "root"
            _download_debs(tmp / "debs")
            _unpack(tmp / "debs", new)
            _fake_cpu_files(new)
            _install_wheels(new)
            _compile_bytecode(new)
            smoke_test(qemu, new)
            manifest = {"python": PYTHON, "debs": list(DEBS), "wheels": WHEELS, "qemu_cpu": QEMU_CPU,
                        "build_seconds": round(time.monotonic() - t0, 1)}
            (new / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            shutil.rmtree(root, ignore_errors=True)  # an unfinished one cannot be there, but never rename onto it
            os.replace(new, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"built the arm64 userland in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return root
