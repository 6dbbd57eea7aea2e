"""An exported artifact: the file a runtime opens, the other files of its format beside it,
and the ``<file>.json`` sidecar that makes it self-describing.

The sidecar is the artifact's commit mark: it is renamed into place last (``commit``), so a
folder holds a complete artifact exactly when its sidecar is there, and an artifact is
*verified* when that sidecar holds a passing parity result (``is_verified``).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .formats import Format, format_of
from .metadata import is_verified, parity_passed  # noqa: F401  (the one rule, re-exported)


@dataclass(frozen=True)
class Artifact:
    path: Path  # the file a runtime opens
    format: Format

    @classmethod
    def at(cls, path) -> Artifact:
        """The artifact whose runtime file is ``path`` (format from its suffix; UsageError if unknown)."""
        return cls(Path(path), format_of(path))

    @property
    def sidecar(self) -> Path:
        return Path(str(self.path) + ".json")

    @property
    def files(self) -> list[Path]:
        """Every file of the artifact except the sidecar, the runtime's file first."""
        stem = self.path.name[: -len(self.format.suffix)] if self.path.name.lower().endswith(self.format.suffix) \
            else self.path.stem
        return [self.path] + [self.path.with_name(stem + s) for s in self.format.files[1:]]

    def all_files(self) -> list[Path]:
        return [*self.files, self.sidecar]

    def exists(self) -> bool:
        return all(f.is_file() for f in self.files)

    def missing(self) -> list[Path]:
        return [f for f in self.files if not f.is_file()]

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def metadata(self) -> dict:
        from ..runtime.engines import load_sidecar

        return load_sidecar(self.path)

    def renamed(self, folder, stem: str) -> Artifact:
        """The same artifact's names as ``folder/<stem><suffix>``."""
        return Artifact(Path(folder) / f"{stem}{self.format.suffix}", self.format)

    def copy_to(self, dest: Artifact) -> list[Path]:
        """Copy every file (and the sidecar, where there is one) to ``dest``'s names; the copies' paths."""
        out = []
        for src, dst in zip(self.all_files(), dest.all_files()):
            if src.is_file():
                shutil.copyfile(src, dst)
                out.append(dst)
        return out


def commit(staged: Artifact, dest: Artifact) -> None:
    """Move a complete artifact (files and sidecar, written in a work folder) over ``dest``.

    The old sidecar goes first and the new one comes last: at every moment, the names hold
    either a whole artifact with its sidecar or files without one (never listed, cached or
    verified), never a new file under an old sidecar.
    """
    dest.sidecar.unlink(missing_ok=True)
    for src, dst in zip(staged.files, dest.files):
        os.replace(src, dst)
    os.replace(staged.sidecar, dest.sidecar)


def unverified_note(path, meta: dict | None = None) -> str | None:
    """The one-line note eval, bench and the demo give for a file that is not verified, else None."""
    if is_verified(meta if meta is not None else path):
        return None
    return (f"{Path(path).name} is not verified: an unverified file, its metadata holds no passing parity check "
            "against PyTorch (edge export writes verified files)")
