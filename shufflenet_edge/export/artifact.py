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


def parity_passed(parity: dict | None, precision: str | None) -> bool:
    """Did this parity result pass the export's gate? fp32 must match PyTorch within the
    allclose-style bound; other precisions must have run and given finite figures."""
    import math

    if not isinstance(parity, dict):
        return False
    if parity.get("passed") is False:
        return False

    def finite(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not finite(parity.get("max_abs_diff")) or not all(finite(parity[k]) for k in ("cosine", "top1_agreement")
                                                         if k in parity):
        return False
    if parity.get("passed") is True:
        return True
    if precision == "fp32":
        from .parity import fp32_tolerance

        return parity["max_abs_diff"] <= fp32_tolerance(parity)
    return True


def is_verified(meta) -> bool:
    """An artifact is verified when its sidecar holds a passing parity result.

    ``meta`` is the sidecar's content (dict), or the path of an artifact or of its sidecar.
    """
    if not isinstance(meta, dict):
        from ..runtime.engines import EngineError, load_sidecar

        path = str(meta)
        try:
            meta = load_sidecar(path[: -len(".json")] if path.endswith(".json") else path)
        except EngineError:
            return False
    return parity_passed(meta.get("parity"), meta.get("precision"))


def unverified_note(path, meta: dict | None = None) -> str | None:
    """The one-line note eval, bench and the demo give for a file that is not verified, else None."""
    if is_verified(meta if meta is not None else path):
        return None
    return (f"{Path(path).name} is not verified (its sidecar holds no passing parity check against PyTorch); "
            "edge export writes verified files")
