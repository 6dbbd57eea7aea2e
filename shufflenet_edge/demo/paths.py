"""Mapping URL paths to files without ever leaving the directory they belong to."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` if that is an existing file inside ``root`` (symlinks resolved), else None."""
    rel = unquote(relative)
    if "\x00" in rel or rel.startswith("/") or "\\" in rel:
        return None
    base = root.resolve()
    try:
        candidate = (base / rel).resolve()
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate
