"""Atomic file writes: a reader never sees a half-written file, and a failure leaves none.

Temporary names are recognisable and carry the owning process id,
``.<final name>.<pid>-<random>.tmp`` (a file or a work folder), so that

- listings (the demo) can hide them: ``is_temp_name``;
- a later run can remove what a killed run left (SIGKILL runs no cleanup) without touching a
  concurrent run's live folder: ``remove_stale_temps`` removes only those whose process is gone;
- SIGTERM unwinds like Ctrl-C (``sigterm_unwinds``), so ``finally`` blocks remove the temporaries.

A full disk or a read-only folder becomes one line naming the path (``WriteFailure``), and
``check_writable`` finds it before long work starts.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .errors import RuntimeFailure

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]{8}\.tmp$")
# errors that mean "this place cannot take the file", as opposed to a bug in the writer
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR,
                 errno.EISDIR, errno.ENAMETOOLONG}


class WriteFailure(RuntimeFailure):
    """The output could not be written (full disk, read-only folder, no permission): one line, exit 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same cleanup runs; the CLI exits 143."""

    exit_code = 143


def temp_prefix(final_name: str) -> str:
    return f".{final_name}.{os.getpid()}-"


def is_temp_name(name: str) -> bool:
    """True for a temporary name this toolkit makes (never to be listed, served or trusted)."""
    return _TEMP.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries in ``folder`` whose owning process has exited; returns what was removed.

    A live owner (a concurrent export) keeps its folder. A recycled pid keeps the leftover too:
    that errs on the safe side, and the next run after that process ends removes it."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if not m or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def write_error(path: str | os.PathLike, exc: OSError) -> WriteFailure | None:
    """The one-line error for an OSError that says the place cannot take the file, else None."""
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRNOS:
        return None
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or type(exc).__name__)
    return WriteFailure(f"cannot write {path}: {why}; free space or choose another output folder")


@contextlib.contextmanager
def reported_write_errors(path: str | os.PathLike):
    """Turn a full disk / read-only folder inside the block into a one-line WriteFailure naming ``path``."""
    try:
        yield
    except OSError as exc:
        err = write_error(path, exc)
        if err is None:
            raise
        raise err from None


def check_writable(folder: str | os.PathLike, need_bytes: int = 0, what: str | None = None) -> Path:
    """Create ``folder`` if needed and prove a file can be written there (and ``need_bytes`` fit),
    before any long work: a read-only folder or a full disk fails now, in one line."""
    folder = Path(folder)
    label = what or str(folder)
    with reported_write_errors(label):
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("write-check"), suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"\0" * min(4096, max(1, need_bytes)))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
        if need_bytes:
            st = os.statvfs(folder)
            free = st.f_bavail * st.f_frsize
            if free < need_bytes:
                raise OSError(errno.ENOSPC, f"{free / 1e6:.1f} MB free, about {need_bytes / 1e6:.1f} MB needed")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    with reported_write_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would survive the rename
        except BaseException:
            os.unlink(tmp)
            raise
    try:
        with reported_write_errors(target):
            yield Path(tmp)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike):
    """A private work folder beside ``target`` (pid-tagged, removed afterwards whatever happens);
    leftovers of killed runs in that folder are removed first."""
    target = Path(target)
    with reported_write_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target.parent)
        work = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent))
    try:
        with reported_write_errors(target):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_unwinds():
    """While the block runs, SIGTERM raises ``Terminated`` (a KeyboardInterrupt) so every
    ``finally`` and ``atomic_*`` cleanup runs as for Ctrl-C; the previous handler comes back after.
    Outside the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
