"""Per-layer int8 sensitivity: which layer loses most when quantized?

For every quantized layer of the int8 file, its output in int8 against its fp32 output on
calibration images, two ways: with the layer quantized alone (everything else float: the error
the layer itself adds) and in the fully quantized network (what has piled up by that point).
SQNR in dB (10 log10 of signal power over error power; higher is better) and cosine. Layers are
ranked by SQNR alone, worst first, and named and typed as ``edge info`` names them. TFLite files
(``tflite_layers.py``) have no "alone" variant: they are ranked by the dB each layer loses inside
the fully quantized network.

>>> from shufflenet_edge.quant.sensitivity import quantize_report
>>> r = quantize_report("runs/v1_g3/best.pt", format="onnx", calib="digits", data="digits")
>>> r["layers"][0]["name"], r["layers"][0]["sqnr_alone_db"]
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .layer_errors import cosine, onnx_layer_errors, rank, sqnr_db  # noqa: F401 (the report's API)

REPORT_FORMATS = ("onnx", "tflite")
RANKED_BY = {"onnx": "sqnr_alone_db (lowest first)",
             "tflite": "sqnr_added_db (dB the layer loses inside the fully quantized network; highest first)"}


def report_files(format: str, checkpoint, calib: str, x: np.ndarray, work: Path, model=None):
    """(fp32 path, int8 path) for a checkpoint, exported through the toolkit into ``work`` (``x``:
    its calibration images). ONNX: the int8 file quantizes every layer (the recipe without
    --int8-policy), so every layer is ranked."""
    from ..export import export

    fp32 = Path(export(model=model, checkpoint=checkpoint, format=format, precision="fp32", out=work, quiet=True).path)
    if format == "tflite":
        return fp32, Path(export(model=model, checkpoint=checkpoint, format=format, precision="int8", calib=calib,
                                 calib_size=len(x), out=work, quiet=True).path)
    from ..export import onnx_int8
    from .accuracy import copy_sidecar

    int8 = work / "full_int8.onnx"
    onnx_int8.quantize(fp32, int8, x)
    copy_sidecar(fp32, int8, precision="int8")
    return fp32, int8


def quantize_report(checkpoint, format: str = "onnx", calib: str = "digits", calib_size: int = 64, data: str | None = None,
                    n_images: int = 32, out=None, model=None, files=None) -> dict:
    """The ranked per-layer table (see module docstring); with ``data``, the fp32 and int8 top-1
    on its test split too. With ``out``, writes quantize_report.{json,md,png} there. ``files``:
    (fp32, int8) files of ``format`` already exported from this checkpoint (skips the exports)."""
    from ..data import calibration_array
    from ..models import create_model

    if format not in REPORT_FORMATS:
        raise UsageError(f"quantize-report supports --format {', '.join(REPORT_FORMATS)} (got '{format}')")
    if int(calib_size) < 1 or int(n_images) < 1:
        raise UsageError("--calib-size and the number of images must be >= 1")
    net = create_model(model, checkpoint=checkpoint)
    meta = net.edge_meta
    x = calibration_array(calib, tuple(meta["input_size"]), int(calib_size), meta["preprocessing"])
    with tempfile.TemporaryDirectory(prefix="edge-qreport-") as tmp:
        fp32, int8 = files or report_files(format, checkpoint, calib, x, Path(tmp), model=model)
        if format == "onnx":
            rows = rank(onnx_layer_errors(fp32, int8, x[:n_images]))
        else:
            from ..complexity import measure
            from .tflite_layers import layer_errors, rank_added

            kinds = {layer.name: layer.kind for layer in measure(net).layers}
            rows = rank_added(layer_errors(fp32, int8, x[:n_images], kinds))
        report = {"model": meta["name"], "checkpoint": str(checkpoint), "format": format, "calibration":
                  {"source": calib, "n": int(len(x))}, "images": int(min(n_images, len(x))),
                  "ranked_by": RANKED_BY[format], "layers": rows}
        if data:
            from .accuracy import file_accuracy

            report["accuracy"] = {"data": data, "fp32": file_accuracy(fp32, data), "int8": file_accuracy(int8, data)}
    if out is not None:
        write_report(report, Path(out))
    return report


def markdown(report: dict, top: int | None = None) -> str:
    def db(v):
        return "exact" if v is None else f"{v:.1f}"

    tflite = report["format"] == "tflite"
    how = ("Ranked by the dB of SQNR each layer loses inside the fully quantized network (a TFLite file cannot "
           "quantize one layer alone), worst first." if tflite else
           "Ranked by SQNR with the layer quantized alone, worst first.")
    lines = [f"# int8 sensitivity of {report['model']} ({report['format']})", "",
             f"Calibration: {report['calibration']['source']}, {report['calibration']['n']} images; errors on "
             f"{report['images']} of them. {how}", ""]
    acc = report.get("accuracy")
    if acc:
        lines += [f"Top-1 on {acc['data']} (test split): fp32 {acc['fp32']:.2%}, int8 {acc['int8']:.2%}.", ""]
    first = "dB lost in the layer" if tflite else "SQNR alone (dB) | cosine alone"
    lines += [f"| rank | layer | kind | {first} | SQNR in full int8 (dB) | cosine in full int8 |",
              "|---:|---|---|" + ("---:|" if tflite else "---:|---:|") + "---:|---:|"]
    for r in report["layers"][:top]:
        own = ("-" if r["sqnr_added_db"] is None else f"{r['sqnr_added_db']:.1f}") if tflite else \
            f"{db(r['sqnr_alone_db'])} | {r['cosine_alone']:.5f}"
        lines.append(f"| {r['rank']} | {r['name']} | {r['kind']} | {own} | {db(r['sqnr_full_db'])} | {r['cosine_full']:.5f} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path, top: int = 30) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_path

    tflite = report["format"] == "tflite"
    own, own_label = ("sqnr_added_db", "lost in the layer") if tflite else ("sqnr_alone_db", "alone")
    rows = [r for r in report["layers"] if r[own] is not None][:top]
    fig, ax = plt.subplots(figsize=(9, 0.28 * max(len(rows), 4) + 1.2))
    labels = [f"{r['name']} ({r['kind']})" for r in rows][::-1]
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r[own] for r in rows][::-1], height=0.4, label=own_label)
    ax.barh(y + 0.2, [r["sqnr_full_db"] or 0.0 for r in rows][::-1], height=0.4, label="SQNR in full int8")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("dB lost in the layer (higher = more sensitive); SQNR in full int8 (dB)" if tflite else
                  "SQNR (dB), lower = more sensitive")
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
