"""README figures quoted from committed results, checked against the files they came from.

A quoted figure is followed by a marker naming its file and key:

    7.2 ms<!-- from bench/results/host_x.json [model=v2_1.0x&format=onnx&precision=fp32&threads=1].latency_ms.p50 -->
    2.8x<!-- from bench/results/qemu_arm64.json [model=v2_1.0x&format=tflite&precision=fp32].instructions_per_inference
             / [model=v2_1.0x&format=tflite&precision=int8].instructions_per_inference -->

The path walks the JSON: ``.key`` enters a dict (``.0`` a list's first item), ``[k=v&k2=v2]`` picks the one list element whose
fields match (``[a key]``, without ``=``, enters a dict by a key with spaces) (a list value matches ``224x224``); ``A / B`` divides two values; ``/1e6`` scales; ``*100`` quotes a share as a percentage. The
number written just before the marker must equal the value rounded to as many decimals as it shows.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

MARKER = re.compile(r"<!--\s*from\s+(\S+)\s+(.*?)\s*-->", re.S)
NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:ms|x|M|%|GMAC/s)?\**\s*$")
_STEP = re.compile(r"\.([\w-]+)|\[([^\]]*)\]")


def _match(item, cond: str) -> bool:
    for pair in filter(None, (c.strip() for c in cond.split("&"))):
        k, _, v = pair.partition("=")
        got = item.get(k.strip()) if isinstance(item, dict) else None
        if isinstance(got, list):
            got = "x".join(map(str, got))
        if str(got) != v.strip():
            return False
    return True


def resolve(data, path: str):
    path = path.strip()
    if not path.startswith((".", "[")):
        path = "." + path
    pos = 0
    for m in _STEP.finditer(path):
        if m.start() != pos:
            raise KeyError(f"bad path {path!r} at {path[pos:]!r}")
        pos = m.end()
        if m.group(1) is not None:
            key = m.group(1)
            data = data[int(key)] if isinstance(data, list) and key.isdigit() else data[key]  # .0: an interval's low end
        elif isinstance(data, dict) and "=" not in m.group(2):  # [a key with spaces] enters a dict
            data = data[m.group(2)]
        else:
            hits = [x for x in data if _match(x, m.group(2))]
            if len(hits) != 1:
                raise KeyError(f"{len(hits)} elements match [{m.group(2)}]")
            data = hits[0]
    if pos != len(path):
        raise KeyError(f"bad path {path!r} at {path[pos:]!r}")
    return data


def _split_outside_brackets(expr: str) -> list[str]:
    """'A / B' -> ['A', 'B'], leaving a ' / ' inside [...] (a pair named 'AlexNet / 0.5x') alone."""
    parts, depth, cur, i = [], 0, "", 0
    while i < len(expr):
        c = expr[i]
        depth += (c == "[") - (c == "]")
        if depth == 0 and expr.startswith(" / ", i):
            parts.append(cur)
            cur, i = "", i + 3
            continue
        cur += c
        i += 1
    return parts + [cur]


def value(root: Path, file: str, expr: str) -> float:
    data = json.loads((root / file).read_text())
    scale = 1.0
    m = re.search(r"\s*/\s*(1e\d+)\s*$", expr)
    if m:
        scale, expr = float(m.group(1)), expr[:m.start()]
    m = re.search(r"\s*\*\s*(100)\s*$", expr)  # a share quoted as a percentage
    if m:
        scale, expr = 1.0 / float(m.group(1)), expr[:m.start()]
    parts = [p for p in _split_outside_brackets(expr) if p.strip()]
    v = float(resolve(data, parts[0]))
    for p in parts[1:]:
        v /= float(resolve(data, p))
    return v / scale


def check(text: str, root: Path) -> tuple[int, list[str]]:
    """(markers checked, one line per figure that disagrees with its file)."""
    problems, n = [], 0
    for m in MARKER.finditer(text):
        n += 1
        before = text[:m.start()]
        num = NUMBER.search(before)
        line = before.count("\n") + 1
        if not num:
            problems.append(f"README line {line}: no number before the marker for {m.group(1)}")
            continue
        shown = num.group(1).replace(",", "")
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        try:
            want = value(root, m.group(1), m.group(2))
        except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
            problems.append(f"README line {line}: {m.group(1)} {m.group(2)}: {exc}")
            continue
        if f"{want:.{decimals}f}" != f"{float(shown):.{decimals}f}":
            problems.append(f"README line {line}: shows {shown}, {m.group(1)} gives {want:.{decimals}f}")
    return n, problems


def update(text: str, root: Path) -> tuple[str, list[str]]:
    """``text`` with every marked figure rewritten from its file (same decimals); unresolvable markers listed."""
    out, pos, problems = [], 0, []
    for m in MARKER.finditer(text):
        before = text[pos:m.start()]
        num = NUMBER.search(before)
        try:
            want = value(root, m.group(1), m.group(2))
        except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
            problems.append(f"{m.group(1)} {m.group(2)}: {exc}")
            num = None
        if num:
            shown = num.group(1).replace(",", "")
            decimals = len(shown.split(".")[1]) if "." in shown else 0
            before = before[:num.start(1)] + f"{want:.{decimals}f}" + before[num.end(1):]
        out += [before, m.group(0)]
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), problems


if __name__ == "__main__":  # python tests/readme_results.py [--update]: check (or rewrite) README's quoted figures
    import sys

    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    text = readme.read_text()
    if "--update" in sys.argv:
        text, probs = update(text, root)
        readme.write_text(text)
    n, probs = check(text, root)
    print(f"{n} marked figures, {len(probs)} problem(s)")
    print("\n".join(probs))
    sys.exit(1 if probs else 0)
