"""Data specs: one string names a data source for train, eval and export calibration.

``digits`` | ``npy:X.npy[,Y.npy]`` | ``cifar10:DIR`` | ``tinyimagenet:DIR`` | ``imagefolder:DIR``
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

KINDS = ("digits", "npy", "cifar10", "tinyimagenet", "imagefolder")


@dataclass(frozen=True)
class DataSpec:
    kind: str
    path: Path | None = None
    labels_path: Path | None = None  # npy only
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.kind


def parse_spec(spec: str | DataSpec) -> DataSpec:
    if isinstance(spec, DataSpec):
        return spec
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise UsageError(f"unknown data spec '{text}': expected one of digits, npy:X.npy[,Y.npy], cifar10:DIR, "
                         "tinyimagenet:DIR, imagefolder:DIR")
    if kind == "digits":
        if rest:
            raise UsageError(f"data spec 'digits' takes no argument (got '{text}')")
        return DataSpec("digits", text="digits")
    if not rest:
        raise UsageError(f"data spec '{kind}:' needs a path, e.g. {kind}:{'X.npy' if kind == 'npy' else 'DIR'}")
    if kind == "npy":
        parts = rest.split(",")
        if len(parts) > 2 or not all(parts):
            raise UsageError(f"bad data spec '{text}': expected npy:X.npy or npy:X.npy,Y.npy")
        return DataSpec("npy", Path(parts[0]).expanduser(), Path(parts[1]).expanduser() if len(parts) == 2 else None, text)
    return DataSpec(kind, Path(rest).expanduser(), text=text)
