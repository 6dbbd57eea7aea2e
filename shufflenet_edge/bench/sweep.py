"""``edge bench --model M --formats all``: every format x precision x engine the format table
allows, for one model, in one interleaved run.

Each file is exported once (the export cache), then each (file, engine) pair is checked against
PyTorch on the file's parity inputs *before* anything is timed (for random weights, against the
runtime that verified the file against PyTorch at export): a pair that fails the bar of its
precision (``export/parity.py``) is listed as wrong and never timed, so it can never be "fast".
With ``data`` every verified pair is also evaluated on it; the last line names the fastest file
whose accuracy is within one point of fp32.

>>> from shufflenet_edge.bench.sweep import sweep
>>> s = sweep("v2_1.0x", checkpoint="run/best.pt", data="digits")
>>> s["fastest_within_1pt"], s["records"][0]
"""
from __future__ import annotations

from ..errors import RuntimeFailure, UsageError

ACCURACY_POINT = 0.01  # "within 1 point of fp32": top-1 as a fraction


def _parse(value, known: tuple[str, ...], what: str) -> list[str]:
    if value in (None, "", "all"):
        return list(known)
    items = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise UsageError(f"bad {what} '{value}': choose from all, {', '.join(known)}")
    return items


def plan(formats="all", precisions=None) -> list[tuple[str, str]]:
    """(format, precision) pairs the table offers, in table order."""
    from ..export.formats import FORMATS, PRECISIONS

    fmts = _parse(formats, tuple(FORMATS), "--formats")
    precs = _parse(precisions, PRECISIONS, "--precisions")
    return [(f, p) for f in fmts for p in FORMATS[f].precisions if p in precs]


def engines_for(fmt: str) -> list[str]:
    """Installed engines that run format ``fmt``."""
    from ..runtime import engines as rt

    have = rt.available_engines()
    return [name for name in rt.engines_for(fmt) if name in have]


def sweep(model: str | None = None, checkpoint=None, formats="all", precisions=None, data: str | None = None,
          calib: str | None = None, input_size=None, num_classes: int | None = None, runs: int | None = None,
          max_seconds: float | None = None, quiet: bool = False, progress=None) -> dict:
    """Export, check, evaluate and time; returns {"records": [...sorted by p50], "fastest_within_1pt": ...}."""
    from ..evaluate import evaluate
    from ..export.formats import get_format
    from ..export.parity import engine_check
    from ..models import create_model
    from ..runtime import open_engine, timing
    from ..runtime.engines import load_sidecar
    from ..runtime.runner import bench_input
    from .cache import cached_export

    say = progress or (lambda msg: None)
    pairs = plan(formats, precisions)
    net = create_model(model, num_classes=num_classes, checkpoint=checkpoint, input_size=input_size)
    trained = net.edge_meta.get("checkpoint_sha256", "untrained") != "untrained"
    calib = calib or (data if trained else None)
    rows, cases = [], []
    for fmt, precision in pairs:
        say(f"export {fmt} {precision}")
        try:
            path = cached_export(model, fmt, precision, checkpoint=checkpoint, input_size=input_size,
                                 num_classes=num_classes, calib=calib if precision == "int8" else None, quiet=True)
        except RuntimeFailure as exc:  # one converter that fails is a listed row; the other files are still timed
            rows.append({"model": model, "format": fmt, "precision": precision, "engine": "-", "artifact": None,
                         "size_bytes": None, "accuracy": None, "latency_ms": {"p50": None}, "output": "error",
                         "error": f"conversion failed: {' '.join(str(exc).split())[:280]}"})
            continue
        meta = load_sidecar(path)
        size = sum(p.stat().st_size for p in [path, *(path.with_suffix(s) for s in _companions(fmt))])
        for engine in engines_for(fmt):
            row = {"model": meta.get("model"), "format": fmt, "precision": precision, "engine": engine,
                   "artifact": str(path), "size_bytes": size, "accuracy": None, "latency_ms": {"p50": None}}
            say(f"check {fmt} {precision} on {engine}")
            # A checkpoint's module has the file's weights: compare with PyTorch itself. Random weights
            # differ per construction, so there the reference is the runtime that verified the file
            # against PyTorch at export (its sidecar's parity).
            reference = net if trained else get_format(fmt).runtime
            try:
                parity = engine_check(path, engine, meta, reference)
            except Exception as exc:  # an engine that cannot run the file is listed, not fatal
                row.update(output="error", error=" ".join(str(exc).split())[:300])
                rows.append(row)
                continue
            row["parity"] = {k: parity[k] for k in ("cosine", "max_abs_diff", "top1_agreement", "passed", "reference")}
            row["output"] = "ok" if parity["passed"] else "wrong"
            if parity["passed"]:
                if data:
                    row["accuracy"] = evaluate(artifact=path, data=data, engine=engine)["top1"]
                eng = open_engine(path, engine=engine, threads=1, metadata=meta)
                row["runtime_version"] = eng.runtime_version
                cases.append((row, eng))
            rows.append(row)
    if cases:
        say(f"timing {len(cases)} file/engine pairs, interleaved")
        timed = timing.time_cases([(e.invoke, e.prepare(bench_input(e, 1))) for _, e in cases], runs,
                                  warmup=10, max_seconds=max_seconds, threads=[1] * len(cases))
        for (row, eng), res in zip(cases, timed):
            row.update(latency_ms=res["latency_ms"], stability=res.get("stability"), runs=res.get("runs"))
            eng.close()
    fastest = min((r["latency_ms"]["p50"] for r in rows if r["latency_ms"]["p50"]), default=None)
    for r in rows:
        p50 = r["latency_ms"]["p50"]
        r["x_fastest"] = round(p50 / fastest, 3) if p50 and fastest else None
    rows.sort(key=lambda r: (r["latency_ms"]["p50"] is None, r["latency_ms"]["p50"] or 0))
    return {"records": rows, "fastest_within_1pt": _fastest_within(rows, data), "threads": 1}


def _companions(fmt: str) -> tuple[str, ...]:
    from ..export.formats import get_format

    return get_format(fmt).companions


def _fastest_within(rows: list[dict], data) -> dict | None:
    """The fastest verified row whose accuracy is within a point of the best fp32 row's (without
    data: the fastest verified row)."""
    timed = [r for r in rows if r.get("output") == "ok" and r["latency_ms"]["p50"]]
    if data:
        fp32 = [r["accuracy"] for r in timed if r["precision"] == "fp32" and r["accuracy"] is not None]
        if not fp32:
            return None
        floor = max(fp32) - ACCURACY_POINT - 1e-9
        timed = [r for r in timed if r["accuracy"] is not None and r["accuracy"] >= floor]
    return min(timed, key=lambda r: r["latency_ms"]["p50"], default=None)


def table_lines(result: dict) -> list[str]:
    """The sweep as text: one row per (file, engine), fastest first, then the verdict line."""
    head = ["format", "precision", "engine", "size", "cosine", "accuracy", "p50 ms", "x fastest"]
    body = []
    for r in result["records"]:
        size = r["size_bytes"]
        par = r.get("parity") or {}
        wrong = r.get("output") != "ok"
        body.append([r["format"], r["precision"], r["engine"],
                     "-" if size is None else f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB",
                     f"{par['cosine']:.4f}" if par.get("cosine") is not None else "-",
                     f"{r['accuracy']:.2%}" if r.get("accuracy") is not None else "-",
                     ("WRONG" if r.get("output") == "wrong" else "ERROR") if wrong else f"{r['latency_ms']['p50']:.3f}",
                     f"{r['x_fastest']:.2f}x" if r.get("x_fastest") else "-"])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda vals: "  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    lines = [fmt(head)] + [fmt(b) for b in body]
    for r in result["records"]:
        if r.get("output") == "error":
            lines.append(f"{r['format']} {r['precision']} on {r['engine']}: {r['error']}")
    best = result["fastest_within_1pt"]
    if best is None:
        lines.append("no verified file to name")
    else:
        within = "within 1 point of fp32 accuracy" if best.get("accuracy") is not None else "verified against PyTorch"
        lines.append(f"fastest file {within}: {best['artifact']} on {best['engine']} "
                     f"({best['latency_ms']['p50']:.3f} ms p50, 1 thread)")
    return lines
