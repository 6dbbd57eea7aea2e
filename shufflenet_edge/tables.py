"""Terminal tables that fit: never wider than the terminal (down to 80 columns), never a cut number.

A table is a list of ``Col`` (header, how to format a value in full and compactly, how
readily it is dropped) and rows of raw values. ``fit`` tries, in order: every column in full;
every column in compact units (``1.23M`` for ``1,234,567``); then drops the most droppable
columns one by one until the table fits, and says which ones ``--wide`` (or ``--json``) shows.
Number cells are never wrapped or cut; text cells fold onto a second line as a last resort,
never ending in "...". With ``wide`` every column is shown in full at whatever width it takes.

Width: the terminal's when stdout is one; when piped, ``$COLUMNS`` if set, else ``PIPE_WIDTH``
(wide enough that a file gets whole rows). Library code (``bench.report``) builds tables with it
too, so it lives beside the packages rather than in ``cli/`` (importing ``cli`` loads every command).
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

PIPE_WIDTH = 160
MIN_WIDTH = 40

SECTION = object()  # a row that is a separator line (e.g. before a total)


def terminal_width() -> int:
    cols = os.environ.get("COLUMNS", "").strip()
    if sys.stdout.isatty():
        return max(MIN_WIDTH, shutil.get_terminal_size((PIPE_WIDTH, 24)).columns)
    if cols.isdigit() and int(cols) > 0:
        return max(MIN_WIDTH, int(cols))
    return PIPE_WIDTH


def console(width: int | None = None):
    """A rich console as wide as ``terminal_width()`` (or ``width``), for tables and long lines."""
    from rich.console import Console

    return Console(width=width or terminal_width(), soft_wrap=False)


def _text(v) -> str:
    return "-" if v is None else str(v)


@dataclass(frozen=True)
class Col:
    """One column. ``fmt``/``compact`` turn a raw value into text (``compact`` for narrow
    terminals, e.g. ``si``); ``drop`` > 0 lets a narrow terminal hide it, highest first."""

    header: str
    fmt: Callable[[Any], str] = _text
    compact: Callable[[Any], str] | None = None
    number: bool = False
    drop: int = 0

    def text(self, value, compact: bool) -> str:
        if value is None:
            return "-"
        return (self.compact if compact and self.compact else self.fmt)(value)


def si(v) -> str:
    """1234 -> 1.23K, 144907992 -> 145M: three significant digits, never more than six characters."""
    if v is None:
        return "-"
    x = float(v)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            y = x / scale
            return (f"{y:.3g}" if abs(y) < 999.5 else f"{y:.0f}") + unit
    return f"{x:.3g}" if x != int(x) else str(int(x))


def thousands(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def _build(cols: Sequence[Col], rows, title, compact: bool, folding: bool):
    from rich import box
    from rich.table import Table

    cells = [r if r is SECTION else [c.text(v, compact) for c, v in r] for r in rows]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, c in enumerate(cols):
        longest = max([len(r[i]) for r in cells if r is not SECTION] + [len(c.header)])
        table.add_column(c.header, justify="right" if c.number else "left", no_wrap=c.number or not folding,
                         overflow="fold", min_width=longest if c.number else None)
    for r in cells:
        if r is SECTION:
            table.add_section()
        else:
            table.add_row(*r)
    return table


def _width(console_, table) -> int:
    from rich.measure import Measurement

    return Measurement.get(console_, console_.options.update(width=10**6), table).maximum


@dataclass
class Fitted:
    table: Any
    width: int  # columns the table needs
    hidden: list[str]
    compact: bool


def fit(cols: Sequence[Col], rows: Sequence, title: str | None = None, width: int | None = None,
        wide: bool = False) -> Fitted:
    """The fullest version of the table that fits ``width`` (see the module docstring)."""
    from rich.console import Console

    width = width or terminal_width()
    probe = Console(width=10**6)
    pairs = [r if r is SECTION else list(zip(cols, r)) for r in rows]

    def attempt(keep: list[Col], compact: bool, folding: bool = False) -> Fitted:
        idx = [cols.index(c) for c in keep]
        sub = [r if r is SECTION else [r[i] for i in idx] for r in pairs]
        t = _build(keep, sub, title, compact, folding)
        return Fitted(t, _width(probe, t), [c.header for c in cols if c not in keep], compact)

    full = attempt(list(cols), compact=False)
    if wide or full.width <= width:
        return full
    keep = list(cols)
    got = attempt(keep, compact=True)
    order = sorted((c for c in cols if c.drop > 0), key=lambda c: -c.drop)
    while got.width > width and order:
        keep.remove(order.pop(0))
        got = attempt(keep, compact=True)
    if got.width > width:  # long names: let text cells fold (numbers still whole)
        got = attempt(keep, compact=True, folding=True)
    return got


def print_table(cols: Sequence[Col], rows: Sequence, title: str | None = None, wide: bool = False,
                out=None) -> Fitted:
    """Print the fitted table and, if columns were hidden, one line naming them and ``--wide``."""
    out = out or console()
    got = fit(cols, rows, title, out.width, wide)
    if wide and got.width > out.width:
        from rich.console import Console

        out = Console(width=got.width, soft_wrap=False, file=out.file)
    out.print(got.table)
    if got.hidden:
        out.print(f"({len(got.hidden)} column(s) hidden to fit {out.width} columns: {', '.join(got.hidden)}; "
                  "--wide or --json shows them)", highlight=False)
    return got
