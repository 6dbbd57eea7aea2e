"""How benchmark records are shown: a rich table on the terminal and a markdown table for
committed results (with the machine, versions and date, so a number can be traced)."""
from __future__ import annotations

COLUMNS = ("model", "format", "precision", "engine", "threads", "p50 ms", "mean ms", "p90 ms", "cv", "spread",
           "GMAC/s", "% peak", "RSS MB", "size", "target")


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
            target]


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
    r = records[0]
    d = r.get("device", {})
    return (f"{d.get('cpu')} ({d.get('machine')}, {d.get('cores')} cores, governor {d.get('governor') or 'n/a'}), "
            f"{d.get('system', '')}, Python {d.get('python', '')}; single-thread sgemm peak "
            f"{r.get('cpu_peak_gmacs') or '-'} GMAC/s")


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
    return "\n".join(lines) + "\n"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("shufflenet-edge", "torch", "onnxruntime", "ai-edge-litert", "litert-torch", "onnx", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
