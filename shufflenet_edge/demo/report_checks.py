"""The report endpoint's boundary: a POST body becomes a checked dict or a one-line refusal.

Everything a browser sends is checked for type, range and finiteness here, before any record is
built: a latency of 1e308 ms or 1e300 threads is finite but would make ``Infinity`` statistics,
so every number also has an upper bound. JSON is parsed only after a cheap scan has bounded its
nesting (100k nested brackets made ``json.loads`` die with RecursionError) and NaN/Infinity
literals are refused.
"""
from __future__ import annotations

import json
import math
import re

from ..errors import UsageError

MAX_DEPTH = 8  # a report is an object holding a list of lists
MAX_SAMPLES = 100_000
MAX_LATENCY_MS = 3_600_000.0  # one hour per inference
MAX_THREADS = 256
MAX_WARMUP = 1_000_000
MAX_CORES = 4096
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


class ReportError(UsageError):
    """A report the server refuses (answered with HTTP 400 and this one line)."""


def _depth(body: bytes) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', body)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a report may hold")


def parse_report(body: bytes):
    """JSON text -> Python objects, refusing deep nesting and NaN/Infinity."""
    if _depth(body) > MAX_DEPTH:
        raise ReportError(f"not JSON a report can be: nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body or b"null", parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ReportError(f"not JSON: {str(exc).splitlines()[0][:200]}") from None


def number(value, what: str, lo: float, hi: float) -> float:
    """A finite JSON number in [lo, hi] (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ReportError(f"bad {what}: {str(value)[:40]!r} (a finite number from {lo:g} to {hi:g})")
    return float(value)


def whole(value, what: str, lo: int, hi: int) -> int:
    v = number(value, what, lo, hi)
    if v != int(v):
        raise ReportError(f"bad {what}: {value!r} (a whole number)")
    return int(v)


def text(report: dict, key: str, limit: int = 512) -> str:
    value = report.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise ReportError(f"bad {key}: expected a string of at most {limit} characters")
    return value


def check_report(report) -> dict:
    """Every field of a parsed report, checked: {artifact, engine, runtime_version, threads,
    warmup, rounds_ms, user_agent, platform, hardware_concurrency, cross_origin_isolated}."""
    if not isinstance(report, dict):
        raise ReportError("the report must be a JSON object")
    rounds = report.get("rounds_ms")
    if not isinstance(rounds, list) or not rounds or not all(isinstance(r, list) and r for r in rounds):
        raise ReportError("rounds_ms must be a non-empty list of non-empty lists of milliseconds")
    if sum(len(r) for r in rounds) > MAX_SAMPLES:
        raise ReportError(f"too many samples (at most {MAX_SAMPLES})")
    cores = report.get("hardware_concurrency")
    return {
        "artifact": text(report, "artifact", 1000), "engine": text(report, "engine"),
        "runtime_version": text(report, "runtime_version", 64),
        "threads": whole(report.get("threads", 1), "threads", 1, MAX_THREADS),
        "warmup": whole(report.get("warmup", 0), "warmup", 0, MAX_WARMUP),
        "rounds_ms": [[number(v, "latency sample", 1e-6, MAX_LATENCY_MS) for v in r] for r in rounds],
        "user_agent": text(report, "user_agent"), "platform": text(report, "platform", 128),
        "hardware_concurrency": None if cores is None else whole(cores, "hardware_concurrency", 1, MAX_CORES),
        "cross_origin_isolated": report.get("cross_origin_isolated") is True,
    }
