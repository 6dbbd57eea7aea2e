"""One table of export formats, the way Ultralytics' exporter keeps one: everything else
(CLI choices, validation, file names, the benchmark matrix) is derived from it."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8", "dynamic")
LAYOUTS = ("nchw", "nhwc")


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    converter: str  # module in this package with convert(job) -> dict
    runtime: str  # engine that runs the file for the parity check (shufflenet_edge.runtime)
    dynamic_batch: bool  # can the file take any batch size
    tool: str  # what does the conversion, for the sidecar
    companions: tuple[str, ...] = ()  # suffixes of the artifact's other files, written beside the main one
    layouts: tuple[str, ...] = LAYOUTS
    refusals: dict = None  # precision -> why it is not offered (one line, for the user)


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", PRECISIONS, "onnx_export", "onnxruntime", True,
                   "torch.onnx.export(dynamo) + onnxsim; onnxruntime.quantization"),
    "tflite": Format("tflite", ".tflite", PRECISIONS, "tflite_export", "litert", False,
                     "litert-torch; PT2E int8; ai-edge-quantizer fp16/dynamic"),
    "ncnn": Format("ncnn", ".param", ("fp32", "fp16"), "ncnn_export", "ncnn", False, "pnnx", companions=(".bin",),
                   layouts=("nchw",), refusals={"int8": "ncnn int8 needs ncnn2table and ncnn2int8, which are not in the "
                                                        "ncnn or pnnx wheels on PyPI; use --format tflite or pte for int8"}),
    "pte": Format("pte", ".pte", ("fp32", "int8"), "pte_export", "executorch", False,
                  "torch.export + ExecuTorch XnnpackPartitioner; PT2E XNNPACKQuantizer int8"),
}

# How each precision is produced, per format (shown by --help and the README).
RECIPES = {
    ("onnx", "fp32"): "float32, simplified with onnxsim",
    ("onnx", "fp16"): "float16 weights and compute, float32 inputs/outputs",
    ("onnx", "int8"): "static QDQ: uint8 activations, uint8 per-channel weights (no int16 saturation: same "
                      "results on every x86 CPU), calibrated",
    ("onnx", "dynamic"): "quantize_dynamic: int8 weights, activations quantized at run time (slow for convs)",
    ("tflite", "fp32"): "float32",
    ("tflite", "fp16"): "float16 weights, float32 compute (weight-only)",
    ("tflite", "int8"): "full integer: int8 per-channel weights, int8 activations and int8 input/output tensors",
    ("tflite", "dynamic"): "dynamic range: int8 weights, float32 activations",
    ("ncnn", "fp32"): "float32 (.param graph + .bin weights, via pnnx)",
    ("ncnn", "fp16"): "float16 weights in the .bin (ncnn fp16 storage)",
    ("pte", "fp32"): "float32, every ShuffleNet op delegated to XNNPACK",
    ("pte", "int8"): "PT2E XNNPACKQuantizer: int8 per-channel weights, int8 activations, float32 input/output",
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[str(name).lower()]
    except KeyError:
        raise UsageError(f"unknown format '{name}' (known: {', '.join(FORMATS)})") from None


def check_combo(fmt: Format, precision: str, batch, layout: str) -> None:
    if precision in (fmt.refusals or {}):
        raise UsageError(fmt.refusals[precision])
    if precision not in fmt.precisions:
        raise UsageError(f"precision '{precision}' is not available for {fmt.name} (choose from: {', '.join(fmt.precisions)})")
    if batch == "dynamic" and not fmt.dynamic_batch:
        raise UsageError(f"--batch dynamic is not available for {fmt.name} (its files have a fixed batch of 1)")
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout '{layout}' (choose from: {', '.join(LAYOUTS)})")
    if layout not in fmt.layouts:
        raise UsageError(f"--layout {layout} is not available for {fmt.name} (it takes: {', '.join(fmt.layouts)})")


def file_name(model: str, input_size, precision: str, layout: str, fmt: Format) -> str:
    """``<name>_<H>[x<W>]_<precision>[_nhwc]<suffix>``: 224 for square inputs, 480x640 otherwise."""
    h, w = input_size
    size = f"{h}" if h == w else f"{h}x{w}"
    return f"{model}_{size}_{precision}{'_nhwc' if layout == 'nhwc' else ''}{fmt.suffix}"


@dataclass
class ConvertJob:
    """What a converter gets: the model as the file should see it (NHWC wrapper applied), a
    sample input in the file's layout, where to write, and calibration data in that layout."""

    model: object  # torch.nn.Module, eval mode
    sample: object  # torch.Tensor, batch 1
    path: object  # pathlib.Path inside a private work directory
    precision: str
    batch: object  # 1 or "dynamic"
    calib: object = None  # np.ndarray N x (file layout) float32, for int8
    keep_fp32: tuple = ()  # int8: layers (as `edge quantize-report` names them) left in float
