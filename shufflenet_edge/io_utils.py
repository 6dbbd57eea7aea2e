"""Atomic file writes: a reader never sees a half-written file, and a failure leaves none.

Every temporary this package creates beside a destination is named by ``make_temp``:
``.NAME.<pid>.tmp`` (``.NAME.<pid>-<n>.tmp`` when the process already has one), so a left-over
one is recognisable (``is_temp_name``: listings hide it) and says which process owned it
(``temp_owner``): a later run removes those whose process is gone (``remove_stale_temps``; SIGKILL
runs no cleanup) and never a concurrent run's live one. SIGTERM unwinds like Ctrl-C
(``sigterm_unwinds``), so ``finally`` blocks remove the temporaries.

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
import sys
import threading
from pathlib import Path

from .errors import RuntimeFailure

_TEMP = re.compile(r"\A\.(?P<name>.+)\.(?P<pid>\d+)(?:-\d+)?\.tmp\Z")
# errors that mean "this place cannot take the file", as opposed to a bug in the writer
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR,
                 errno.EISDIR, errno.ENAMETOOLONG}


class WriteFailure(RuntimeFailure):
    """The output could not be written (full disk, read-only folder, no permission): one line, exit 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same cleanup runs; the CLI exits 143."""

    exit_code = 143


def make_temp(target: str | os.PathLike, directory: bool = False) -> Path:
    """Create (exclusively) and return a fresh temporary file or folder beside ``target``.

    The one place that names and creates temporaries: the caller renames it over ``target`` when
    complete, or removes it (``remove_temp``) when not.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    for n in range(10_000):
        tmp = target.parent / f".{target.name}.{pid}{'' if n == 0 else f'-{n}'}.tmp"
        try:
            if directory:
                tmp.mkdir()
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies, as for any file
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def remove_temp(tmp: str | os.PathLike) -> None:
    """Remove a temporary from ``make_temp`` (file or folder); already gone is fine."""
    tmp = Path(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def temp_owner(path: str | os.PathLike) -> int | None:
    """The process id in a ``make_temp`` name, or None for any other name."""
    m = _TEMP.match(Path(path).name)
    return int(m.group("pid")) if m else None


def is_temp_name(name: str) -> bool:
    """True for a temporary name this toolkit makes (never to be listed, served or trusted)."""
    return temp_owner(name) is not None


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
        pid = temp_owner(entry.name)
        if pid is None or _pid_alive(pid):
            continue
        remove_temp(entry.path)
        removed.append(Path(entry.path))
    return removed


def write_error(path: str | os.PathLike, exc: OSError) -> WriteFailure | None:
    """The one-line error for an OSError that says the place cannot take the file, else None."""
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRNOS:
        return None
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or type(exc).__name__)
    if exc.strerror and exc.strerror != os.strerror(exc.errno) and exc.strerror not in why:
        why = f"{why} ({exc.strerror})"  # our own detail, e.g. how much space is free
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
    """Prove a file can be written in ``folder`` (or, if it does not exist yet, in the folder it
    would be made in) and that ``need_bytes`` fit, before any long work: a read-only folder or a
    full disk fails now, in one line, and nothing is created."""
    folder = Path(folder)
    label = what or str(folder)
    base = folder
    while not base.exists() and base != base.parent:  # probe where the folder would be made; make nothing
        base = base.parent
    with reported_write_errors(label):
        if not base.is_dir():
            raise OSError(errno.ENOTDIR, f"{base} is not a folder")
        probe = make_temp(base / "write-check")
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * min(4096, max(1, need_bytes)))
                f.flush()
                os.fsync(f.fileno())
        finally:
            remove_temp(probe)
        if need_bytes:
            st = os.statvfs(base)
            free = st.f_bavail * st.f_frsize
            if free < need_bytes:
                raise OSError(errno.ENOSPC, f"{free / 1e6:.1f} MB free, about {need_bytes / 1e6:.1f} MB needed")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    with reported_write_errors(target):
        remove_stale_temps(target.parent)
        tmp = make_temp(target, directory=directory)
    try:
        with reported_write_errors(target):
            yield tmp
            os.replace(tmp, target)
    except BaseException:
        remove_temp(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike):
    """A private work folder beside ``target`` (pid-tagged, removed afterwards whatever happens);
    leftovers of killed runs in that folder are removed first."""
    target = Path(target)
    with reported_write_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target.parent)
        work = make_temp(target, directory=True)
    try:
        with reported_write_errors(target):
            yield work
    finally:
        remove_temp(work)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# A SIGTERM whose Terminated has not yet unwound a sigterm_unwinds block. Python runs a signal
# handler at the next bytecode, which can be inside a gc callback or a __del__ (jax registers one
# and its import chain triggers it): an exception raised there is reported as "unraisable" and
# dropped, and the run would finish as if never signalled. So the first SIGTERM also starts a
# thread that repeats the signal until the block sees Terminated go through it.
_pending = threading.Event()
_stop_resend = threading.Event()
RESEND_S = 0.25


def _resend(main_ident: int) -> None:
    while not _stop_resend.wait(RESEND_S):
        signal.pthread_kill(main_ident, signal.SIGTERM)


def _raise_terminated(signum, frame):
    if _pending.is_set() and isinstance(sys.exc_info()[1], Terminated):
        return  # a repeat landing in an except/finally that a Terminated is already unwinding through
    if not _pending.is_set():
        _pending.set()
        _stop_resend.clear()
        threading.Thread(target=_resend, args=(threading.main_thread().ident,), daemon=True,
                         name="sigterm-resend").start()
    raise Terminated()


def _settle() -> None:
    _pending.clear()
    _stop_resend.set()


def _quiet_terminated(previous_hook):
    """An unraisable hook that drops a Terminated without its traceback: the repeat will deliver
    it where it can unwind, so "Exception ignored in __del__ ... Traceback" is noise a user of a
    one-line error should not see. Anything else goes to the hook that was there."""
    def hook(unraisable):
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, Terminated):
            return
        previous_hook(unraisable)
    return hook


@contextlib.contextmanager
def sigterm_unwinds():
    """While the block runs, SIGTERM raises ``Terminated`` (a KeyboardInterrupt) so every
    ``finally`` and ``atomic_*`` cleanup runs as for Ctrl-C; the previous handler comes back after.
    Outside the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_terminated(previous_hook)
    try:
        yield
        if _pending.is_set():  # every repeat was swallowed too: stop here rather than report success
            raise Terminated()
    except Terminated:
        raise
    except BaseException as exc:
        # a library that catches everything re-raised the Terminated as its own error (a TFLite export
        # ended "conversion ... failed: Encountered an error while initializing the extension", exit 1,
        # in 1 of 14 SIGTERMs on a loaded host): the run was still stopped by the signal, and says so
        if _pending.is_set():
            raise Terminated() from exc
        raise
    finally:
        # whatever leaves the block (Terminated, another error it became, or none) ends the repeats: one
        # after the handler goes back would kill the process with the default action instead of reporting it
        _settle()
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        sys.unraisablehook = previous_hook
