"""The one table of export formats, the way Ultralytics' exporter keeps one.

A row says everything the toolkit knows about a format: the files of an artifact, the
precisions and how each is made (with a recipe version that keys the export cache), the
converter module, post-write hook, the arguments it accepts, the packages whose versions key
the cache, and the page runtime of the demo. CLI choices, validation, file names, the
benchmark's and the targets' format lists, the demo's listing and the cache derive from it;
which engines run a format comes from the engines themselves (``runtime/engines.py``).

Adding a format: one row here, one converter module ``export/<name>_export.py`` with
``convert(job) -> dict``, and an engine in ``runtime/engines.py`` if no existing one runs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import UsageError

LAYOUTS = ("nchw", "nhwc")


class Recipe(NamedTuple):
    how: str  # shown by --help and the README
    version: int = 1  # bump when the same inputs would now give a different file: the cache rebuilds


@dataclass(frozen=True)
class Format:
    name: str
    files: tuple[str, ...]  # suffixes of the artifact's files; files[0] is the one a runtime opens
    converter: str  # module in this package with convert(job) -> dict
    recipes: dict[str, Recipe]  # precision -> how it is made
    tool: str  # what does the conversion, for the sidecar
    packages: tuple[str, ...]  # distributions whose versions change the file (export cache key)
    batches: tuple = (1,)  # accepted --batch values ("dynamic": any batch size)
    layouts: tuple[str, ...] = LAYOUTS
    post_write: str | None = None  # function (path, sidecar) in the converter module, run before the parity check
    notes: dict[str, str] = field(default_factory=dict)  # precision -> warning printed on export
    browser_engine: str | None = None  # the demo page's runtime for these files
    refusals: dict = field(default_factory=dict)  # precision -> why it is not offered (one line, for the user)
    # layer kinds (edge info's names) slower in int8 than in fp32 on this format's engine: the int8 policy
    # "fast" leaves them float (measured per engine, see export/onnx_int8.py)
    int8_slow_kinds: tuple[str, ...] = ()
    # --weight-granularity values its int8 recipe can make (WEIGHT_GRANULARITIES); the first is the default
    int8_granularities: tuple[str, ...] = ("channel",)

    @property
    def suffix(self) -> str:
        return self.files[0]

    @property
    def companions(self) -> tuple[str, ...]:
        """Suffixes of the artifact's other files, written beside the one a runtime opens."""
        return self.files[1:]

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.recipes)

    @property
    def dynamic_batch(self) -> bool:
        return "dynamic" in self.batches

    @property
    def engines(self) -> tuple[str, ...]:
        """Engines that run this format, preferred first (registered in ``runtime/engines.py``)."""
        from ..runtime.engines import engines_for

        return engines_for(self.name)

    @property
    def runtime(self) -> str:
        """The engine the export's parity check runs the file in."""
        return self.engines[0]


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", (".onnx",), "onnx_export", {
        # version 2 of fp32/fp16/dynamic, 4 of int8: every Conv has a bias input (onnx_export._give_convs_biases)
        "fp32": Recipe("float32, simplified with onnxsim", version=2),
        "fp16": Recipe("float16 weights and compute, float32 inputs/outputs", version=2),
        "int8": Recipe("static QDQ: uint8 activations, uint8 per-channel weights (no int16 saturation: same "
                       "results on every x86 CPU), calibrated; --int8-policy fast (default) leaves grouped 1x1 "
                       "convs float (slower in int8 on onnxruntime), and every layer when the file is still slower than "
                       "fp32 on this CPU (timed at export)", version=5),
        "dynamic": Recipe("quantize_dynamic: int8 weights, activations quantized at run time (slow for convs)",
                          version=2),
    }, "torch.onnx.export(dynamo) + onnxsim; onnxruntime.quantization",
        packages=("torch", "onnx", "onnxscript", "onnxsim", "onnxruntime"), batches=(1, "dynamic"),
        post_write="embed_metadata", browser_engine="onnxruntime-web", int8_slow_kinds=("gconv1x1",),
        int8_granularities=("channel", "tensor"),
        notes={"dynamic": "dynamic-range ONNX runs convolutions as ConvInteger, several times slower than fp32 on "
                          "x86; prefer --precision int8"}),
    Format("tflite", (".tflite",), "tflite_export", {
        "fp32": Recipe("float32"),
        "fp16": Recipe("float16 weights, float32 compute (weight-only)"),
        # version 2: a padded max-pool after a ReLU is written as a zero pad + max-pool (xnnpack_rewrite)
        "int8": Recipe("full integer: int8 per-channel weights, int8 activations and int8 input/output tensors; "
                       "a padded max-pool after a ReLU as zero pad + max-pool (XNNPACK takes it)", version=2),
        "dynamic": Recipe("dynamic range: int8 weights, float32 activations"),
    }, "litert-torch; PT2E int8; ai-edge-quantizer fp16/dynamic",
        packages=("torch", "torchao", "litert-torch", "ai-edge-quantizer", "ai-edge-litert"),
        post_write="embed_metadata", browser_engine="tfjs-tflite", int8_granularities=("channel", "tensor")),
    Format("ncnn", (".param", ".bin"), "ncnn_export", {
        "fp32": Recipe("float32 (.param graph + .bin weights, via pnnx)"),
        "fp16": Recipe("float16 weights in the .bin (ncnn fp16 storage)"),
    }, "pnnx", packages=("torch", "pnnx", "ncnn"), layouts=("nchw",),
        refusals={"int8": "ncnn int8 needs ncnn2table and ncnn2int8, which are not in the ncnn or pnnx wheels on "
                          "PyPI; use --format tflite or pte for int8"}),
    Format("pte", (".pte",), "pte_export", {
        "fp32": Recipe("float32, every ShuffleNet op delegated to XNNPACK"),
        "int8": Recipe("PT2E XNNPACKQuantizer: int8 per-channel weights, int8 activations, float32 input/output"),
    }, "torch.export + ExecuTorch XnnpackPartitioner; PT2E XNNPACKQuantizer int8",
        packages=("torch", "torchao", "executorch")),
)}

# --int8-policy: "all" quantizes every layer the recipe can; "fast" leaves the format's int8_slow_kinds float.
INT8_POLICIES = ("fast", "all")


def int8_float_kinds(fmt: "Format", policy: str) -> tuple[str, ...]:
    """The layer kinds an int8 export under ``policy`` leaves float (what the cache key and sidecar record)."""
    if policy not in INT8_POLICIES:
        raise UsageError(f"unknown --int8-policy '{policy}' (choose from: {', '.join(INT8_POLICIES)})")
    return fmt.int8_slow_kinds if policy == "fast" else ()


# --weight-granularity: one int8 scale per output channel of a weight (the default, what accuracy needs where
# channels differ in range) or one per weight tensor (what some runtimes and accelerators take; a study setting).
WEIGHT_GRANULARITIES = ("channel", "tensor")


def int8_granularity(fmt: "Format", precision: str, granularity) -> str:
    """``granularity`` checked against the format (one-line usage errors); the value the sidecar records."""
    value = str(granularity or WEIGHT_GRANULARITIES[0]).lower()
    if value not in WEIGHT_GRANULARITIES:
        raise UsageError(f"unknown --weight-granularity '{granularity}' (choose from: {', '.join(WEIGHT_GRANULARITIES)})")
    if value != WEIGHT_GRANULARITIES[0] and precision != "int8":
        raise UsageError(f"--weight-granularity {value} applies to --precision int8")
    if precision == "int8" and value not in fmt.int8_granularities:
        offered = [f.name for f in FORMATS.values() if value in f.int8_granularities]
        raise UsageError(f"--weight-granularity {value} is not available for {fmt.name} int8 (its recipe is "
                         f"{', '.join(fmt.int8_granularities)}); use --format {' or '.join(offered)}")
    return value


# Derived views (kept for callers and --help).
PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys(p for f in FORMATS.values() for p in f.precisions))
RECIPES = {(f.name, p): r.how for f in FORMATS.values() for p, r in f.recipes.items()}
SUFFIXES = {s: f.name for f in FORMATS.values() for s in f.files[:1]}  # the file a runtime opens -> format


def get_format(name: str) -> Format:
    try:
        return FORMATS[str(name).lower()]
    except KeyError:
        raise UsageError(f"unknown format '{name}' (known: {', '.join(FORMATS)})") from None


def format_of(path) -> Format:
    """The format of an artifact, by the suffix of the file a runtime opens."""
    import os

    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"unknown artifact type '{suffix or path}': expected {' or '.join(SUFFIXES)}")
    return FORMATS[SUFFIXES[suffix]]


def check_combo(fmt: Format, precision: str, batch, layout: str) -> None:
    if precision in fmt.refusals:
        raise UsageError(fmt.refusals[precision])
    if precision not in fmt.precisions:
        raise UsageError(f"precision '{precision}' is not available for {fmt.name} (choose from: {', '.join(fmt.precisions)})")
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout '{layout}' (choose from: {', '.join(LAYOUTS)})")
    if batch not in fmt.batches:
        raise UsageError(f"--batch {batch} is not available for {fmt.name} (its files have a fixed batch of 1)")
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
    sample input in the file's layout, where to write, and calibration data in that layout.
    A format of several files writes the others beside ``path``, named by its ``files`` suffixes."""

    model: object  # torch.nn.Module, eval mode
    sample: object  # torch.Tensor, batch 1
    path: object  # pathlib.Path of the file a runtime opens, inside a private work directory
    precision: str
    batch: object  # 1 or "dynamic"
    calib: object = None  # np.ndarray N x (file layout) float32, for int8
    keep_fp32: tuple = ()  # int8: layers (as `edge quantize-report` names them) left in float
    float_kinds: tuple = ()  # int8: layer kinds left float by --int8-policy (formats.int8_float_kinds)
    policy: str = "fast"  # int8: the --int8-policy those kinds come from (recorded in the sidecar)
    granularity: str = "channel"  # int8: weight scales per output channel or per tensor (--weight-granularity)
    auto: object = None  # int8: onnx_mixed.AutoSpec for --keep-fp32 auto (accuracy-bounded float layers)
