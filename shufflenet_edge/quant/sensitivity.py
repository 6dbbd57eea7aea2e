"""Per-layer int8 sensitivity: which layer loses most when quantized?

For every quantized layer of the int8 file, its output in int8 against its fp32 output on
calibration images, two ways: with the layer quantized alone (everything else float: the error
the layer itself adds) and in the fully quantized network (what has piled up by that point).
SQNR in dB (10 log10 of signal power over error power; higher is better) and cosine. Layers are
ranked by SQNR alone, worst first, and named and typed as ``edge info`` names them.

>>> from shufflenet_edge.quant.sensitivity import quantize_report
>>> r = quantize_report("runs/v1_g3/best.pt", format="onnx", calib="digits", data="digits")
>>> r["layers"][0]["name"], r["layers"][0]["sqnr_alone_db"]
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import UsageError

REPORT_FORMATS = ("onnx",)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64).ravel()
    err = float(((ref - got.astype(np.float64).ravel()) ** 2).sum())
    signal = float((ref ** 2).sum())
    if err == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / err)


def cosine(ref: np.ndarray, got: np.ndarray) -> float:
    a, b = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def _finite(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None  # JSON has no inf: None means "no error at all"


def onnx_files(checkpoint, calib: str, calib_size: int, work: Path, model=None):
    """(fp32 path, int8 path, calibration images, model metadata) for a checkpoint, in ``work``."""
    from ..data import calibration_array
    from ..export import export
    from ..export import onnx_int8
    from ..models import create_model

    net = create_model(model, checkpoint=checkpoint)
    meta = net.edge_meta
    fp32 = Path(export(model=model, checkpoint=checkpoint, format="onnx", precision="fp32", out=work, quiet=True).path)
    x = calibration_array(calib, tuple(meta["input_size"]), int(calib_size), meta["preprocessing"])
    int8 = work / "full_int8.onnx"
    onnx_int8.quantize(fp32, int8, x)
    from .accuracy import copy_sidecar

    copy_sidecar(fp32, int8, precision="int8")
    return fp32, int8, x, meta


def onnx_layer_errors(fp32_path, int8_path, x: np.ndarray) -> list[dict]:
    """Per quantized layer: SQNR and cosine alone and in the full int8 network (graph order)."""
    import onnx

    from . import onnx_qdq

    fp32, qdq = onnx.load(str(fp32_path)), onnx.load(str(int8_path))
    layers = onnx_qdq.quantized_layers(qdq, fp32)
    if not layers:
        raise UsageError(f"{int8_path} has no quantized layers")
    ref = onnx_qdq.run(fp32, x, [layer["output"] for layer in layers])
    full_names = [onnx_qdq.dequantized_output(qdq, layer["output"]) for layer in layers]
    full = onnx_qdq.run(qdq, x, full_names)
    rows = []
    for layer, full_name in zip(layers, full_names):
        alone = onnx_qdq.only_quantized(qdq, fp32, set(layer["nodes"]))
        name = onnx_qdq.dequantized_output(alone, layer["output"])
        got = onnx_qdq.run(alone, x, [name])
        r, a, f = ref[layer["output"]], got[name], full[full_name]
        rows.append({"name": layer["name"], "kind": layer["kind"], "ops": sorted(set(layer["ops"])),
                     "sqnr_alone_db": _finite(sqnr_db(r, a)), "cosine_alone": round(cosine(r, a), 6),
                     "sqnr_full_db": _finite(sqnr_db(r, f)), "cosine_full": round(cosine(r, f), 6),
                     "logits_sqnr_alone_db": _finite(sqnr_db(ref[None], got[None]))})
    return rows


def rank(rows: list[dict]) -> list[dict]:
    """Worst first: lowest SQNR with the layer alone quantized (None = exact, last)."""
    key = (lambda r: (r["sqnr_alone_db"] is None, r["sqnr_alone_db"] if r["sqnr_alone_db"] is not None else 0.0,
                      r["sqnr_full_db"] if r["sqnr_full_db"] is not None else 1e9))
    ranked = sorted(rows, key=key)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked


def quantize_report(checkpoint, format: str = "onnx", calib: str = "digits", calib_size: int = 64, data: str | None = None,
                    n_images: int = 32, out=None, model=None) -> dict:
    """The ranked per-layer table (see module docstring); with ``data``, the fp32 and int8 top-1
    on its test split too. With ``out``, writes quantize_report.{json,md,png} there."""
    if format not in REPORT_FORMATS:
        raise UsageError(f"quantize-report supports --format {', '.join(REPORT_FORMATS)} (got '{format}')")
    if int(calib_size) < 1 or int(n_images) < 1:
        raise UsageError("--calib-size and the number of images must be >= 1")
    with tempfile.TemporaryDirectory(prefix="edge-qreport-") as tmp:
        fp32, int8, x, meta = onnx_files(checkpoint, calib, calib_size, Path(tmp), model=model)
        rows = rank(onnx_layer_errors(fp32, int8, x[:n_images]))
        report = {"model": meta["name"], "checkpoint": str(checkpoint), "format": format, "calibration":
                  {"source": calib, "n": int(len(x))}, "images": int(min(n_images, len(x))),
                  "ranked_by": "sqnr_alone_db (lowest first)", "layers": rows}
        if data:
            from .accuracy import file_accuracy

            report["accuracy"] = {"data": data, "fp32": file_accuracy(fp32, data), "int8": file_accuracy(int8, data)}
    if out is not None:
        write_report(report, Path(out))
    return report


def markdown(report: dict, top: int | None = None) -> str:
    def db(v):
        return "exact" if v is None else f"{v:.1f}"

    lines = [f"# int8 sensitivity of {report['model']} ({report['format']})", "",
             f"Calibration: {report['calibration']['source']}, {report['calibration']['n']} images; errors on "
             f"{report['images']} of them. Ranked by SQNR with the layer quantized alone, worst first.", ""]
    acc = report.get("accuracy")
    if acc:
        lines += [f"Top-1 on {acc['data']} (test split): fp32 {acc['fp32']:.2%}, int8 {acc['int8']:.2%}.", ""]
    lines += ["| rank | layer | kind | SQNR alone (dB) | cosine alone | SQNR in full int8 (dB) | cosine in full int8 |",
              "|---:|---|---|---:|---:|---:|---:|"]
    for r in report["layers"][:top]:
        lines.append(f"| {r['rank']} | {r['name']} | {r['kind']} | {db(r['sqnr_alone_db'])} | {r['cosine_alone']:.5f} "
                     f"| {db(r['sqnr_full_db'])} | {r['cosine_full']:.5f} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path, top: int = 30) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_path

    rows = [r for r in report["layers"] if r["sqnr_alone_db"] is not None][:top]
    fig, ax = plt.subplots(figsize=(9, 0.28 * max(len(rows), 4) + 1.2))
    labels = [f"{r['name']} ({r['kind']})" for r in rows][::-1]
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["sqnr_alone_db"] for r in rows][::-1], height=0.4, label="alone")
    ax.barh(y + 0.2, [r["sqnr_full_db"] or 0.0 for r in rows][::-1], height=0.4, label="in full int8")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("SQNR (dB), lower = more sensitive")
    ax.set_title(f"{report['model']} {report['format']} int8: layers worst first")
    ax.legend(loc="lower right", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(report: dict, out: Path) -> dict[str, Path]:
    from ..io_utils import write_json, write_text

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out}: {exc.strerror}") from None
    return {"json": write_json(out / "quantize_report.json", report),
            "md": write_text(out / "quantize_report.md", markdown(report)),
            "png": plot(report, out / "quantize_report.png")}
