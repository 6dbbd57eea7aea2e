"""How benchmark records are shown: a rich table on the terminal and a markdown table for
committed results (with the machine, versions and date, so a number can be traced)."""
from __future__ import annotations

COLUMNS = ("model", "format", "precision", "engine", "threads", "p50 ms", "mean ms", "p90 ms", "cv", "spread",
           "GMAC/s", "% peak", "RSS MB", "size", "target", "95% CI", "verdict")

SPREAD_NOTE = ("spread = how far apart the medians of the interleaved rounds are (max/min - 1): load that comes and "
               "goes shows there; +-CI = half-width of the median's 95% bootstrap confidence interval")


def _size(n) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _ms(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def row(rec: dict) -> list[str]:
    lat = rec["latency_ms"]
    dev = rec.get("device", {})
    target = dev.get("target", "?") + (" (EMULATED)" if dev.get("emulated") else "")
    frac = rec.get("fraction_of_peak")
    return [str(rec.get("model")), str(rec.get("format")), str(rec.get("precision")), str(rec.get("engine")),
            str(rec.get("threads")), _ms(lat.get("p50")), _ms(lat.get("mean")), _ms(lat.get("p90")),
            f"{lat['cv']:.1%}" if lat.get("cv") is not None else "-", f"{rec.get('rounds', {}).get('spread', 0):.1%}" if rec.get("rounds") else "-",
            f"{rec['gmacs_per_s']:.2f}" if rec.get("gmacs_per_s") else "-", f"{frac:.0%}" if frac else "-",
            f"{rec['peak_rss_mb']:.0f}" if rec.get("peak_rss_mb") is not None else "-", _size(rec.get("size_bytes")),
            target, _ci(rec), _verdict(rec)]


def _ci(rec: dict) -> str:
    st = rec.get("stability") or {}
    return f"+-{st['ci_halfwidth']:.1%}" if st.get("ci_halfwidth") is not None else "-"


def _verdict(rec: dict) -> str:
    if rec.get("output") == "wrong":
        return "WRONG"
    v = (rec.get("stability") or {}).get("verdict")
    return "NOISY" if v == "noisy" else (v or "-")


def noisy(records: list[dict]) -> list[dict]:
    return [r for r in records if (r.get("stability") or {}).get("verdict") == "noisy"]


def terminal_rows(records: list[dict]) -> tuple[list, list[list]]:
    """Columns (``shufflenet_edge.tables.Col``) and rows of the bench table for a terminal: the figures that
    decide whether to trust a row; ``--json`` / ``--wide`` show the rest. A noisy row's model
    starts with '!' and its verdict says NOISY."""
    from ..tables import Col

    pct1 = lambda v: f"{v:.1%}"  # noqa: E731
    cols = [Col("model"), Col("file"), Col("engine", drop=2), Col("thr", number=True),
            Col("p50 ms", lambda v: f"{v:.3f}", number=True), Col("+-CI", pct1, number=True),
            Col("spread", pct1, number=True), Col("GMAC/s", lambda v: f"{v:.2f}", number=True, drop=3),
            Col("%peak", lambda v: f"{v:.0%}", number=True, drop=1), Col("verdict")]
    rows = []
    for r in records:
        st = r.get("stability") or {}
        bad = st.get("verdict") == "noisy"
        rows.append([("! " if bad else "") + str(r.get("model")), f"{r.get('format')} {r.get('precision')}",
                     r.get("engine"), r.get("threads"), r["latency_ms"].get("p50"), st.get("ci_halfwidth"),
                     (r.get("rounds") or {}).get("spread"), r.get("gmacs_per_s"), r.get("fraction_of_peak"),
                     _verdict(r)])
    return cols, rows


_CAUSE = {"ci_halfwidth": "wide CI", "spread": "rounds disagree", "cv": "high cv", "freq_change": "clock changed"}


def noisy_causes(records: list[dict]) -> str:
    """'other processes used up to 77% of the cores, rounds disagree, load 4.0 on 2 cores'."""
    keys = {k for r in records for k in (r.get("stability") or {}).get("exceeded", [])}
    st = [r.get("stability") or {} for r in records]
    parts = []
    shares = [x["others_cpu_share"] for x in st if x.get("others_cpu_share") is not None]
    if "others_cpu_share" in keys:
        parts.append(f"other processes used up to {max(shares):.0%} of the cores")
    parts += [v for k, v in _CAUSE.items() if k in keys]
    loads = [v for x in st for v in (x.get("load_1min") or []) if v is not None]
    if loads:
        cores = (records[0].get("device") or {}).get("cores")
        parts.append(f"load average up to {max(loads):.1f}" + (f" on {cores} cores" if cores else ""))
    return ", ".join(parts)


def summary_lines(records: list[dict]) -> list[str]:
    """How each figure was measured, how many rows are noisy and why, and what to do about it."""
    out = []
    stops = [r.get("measure") or {} for r in records]
    ci = sum(1 for m in stops if m.get("stopped") == "ci")
    budget = [m for m in stops if m.get("stopped") == "budget"]
    if ci or budget:
        m0 = next(m for m in stops if m.get("mode") == "adaptive")
        out.append(f"measured until the median's 95% CI was within +-{m0['target_ci']:.0%} or {m0['max_seconds']:g} s "
                   f"per file were spent (--max-seconds): {ci} row(s) reached the CI, {len(budget)} spent the budget")
    elif records:
        out.append(f"fixed run count (--runs {records[0].get('runs')}); without --runs, bench measures until stable")
    bad = noisy(records)
    if bad:
        out.append(f"{len(bad)} of {len(records)} row(s) NOISY ({noisy_causes(bad)}): the machine was busy while "
                   "measuring. Close other work and rerun, pin to an idle core with --cpus, or give it longer with "
                   "--max-seconds; compare only stable rows")
    elif records and all(r.get("stability") for r in records):
        out.append(f"all {len(records)} row(s) stable")
    out.append(SPREAD_NOTE)
    return out


def rich_table(records: list[dict], title: str | None = None):
    from rich.table import Table

    emulated = any(r.get("device", {}).get("emulated") for r in records)
    table = Table(title=title)
    for c in COLUMNS:
        table.add_column(c, justify="right" if c not in ("model", "format", "precision", "engine", "target") else "left")
    if emulated:
        table.add_column("insns/inference", justify="right")
    for r in records:
        extra = [f"{r['instructions_per_inference']:,}" if r.get("instructions_per_inference") else "-"] if emulated else []
        table.add_row(*row(r), *extra)
    return table


def machine_line(records: list[dict]) -> str:
    from ..runtime.timing import machine_summary

    r = records[0]
    d = r.get("device", {})
    peaks = {}
    for x in records:
        if x.get("cpu_peak_gmacs"):
            peaks.setdefault(x.get("cpu_peak_precision") or "fp32", x["cpu_peak_gmacs"])
    peak_s = ", ".join(f"{p} {g} GMAC/s" for p, g in peaks.items()) or "-"
    return (f"{machine_summary(d)}, governor {d.get('governor') or 'n/a'}, "
            f"{d.get('system', '')}, Python {d.get('python', '')}; single-thread GEMM peak {peak_s}")


def markdown(records: list[dict], title: str, how: str, versions: dict | None = None) -> str:
    """A committed results table: what ran where, when, with what, and how to run it again."""
    import datetime as dt

    lines = [f"# {title}", "", f"- machine: {machine_line(records)}",
             f"- date: {dt.date.today().isoformat()}"]
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    lines += [f"- reproduce: `{how}`", ""]
    if any(r.get("device", {}).get("emulated") for r in records):
        lines += ["Rows marked EMULATED ran under qemu-aarch64: their times say nothing about ARM speed; "
                  "instructions per inference are a deterministic ARM-ISA cost figure.", ""]
    head = list(COLUMNS) + ["insns/inference"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in records:
        ipi = r.get("instructions_per_inference")
        lines.append("| " + " | ".join(row(r) + [f"{ipi:,}" if ipi else "-"]) + " |")
    lines += [""] + [f"- {x}" for x in summary_lines(records)]
    return "\n".join(lines) + "\n"


def versions() -> dict:
    """The toolkit, Python and every converter/runtime version: what a committed figure came from."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("shufflenet-edge", "torch", "onnxruntime", "ai-edge-litert", "litert-torch", "onnx", "numpy",
                "onnxsim", "onnxscript", "ai-edge-quantizer", "torchao"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
