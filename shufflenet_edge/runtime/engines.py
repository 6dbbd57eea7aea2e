"""One engine per runtime, behind one interface.

Self-contained on purpose (standard library + numpy + the runtime itself): this file is copied
to boards and emulated userlands and run there. Callers always pass float32 NCHW input that is
already preprocessed; an engine converts it to what the file wants (NHWC layout, int8 input
quantized with the input tensor's own scale and zero point) in ``prepare`` and back to float32
logits in ``finish``, so timing loops can time ``invoke`` alone.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import weakref

import numpy as np

if __package__:  # inside the toolkit: one error base for everything a user can meet
    from ..errors import RuntimeFailure as _ErrorBase
else:  # copied to a board and run as a plain module: standard library only
    _ErrorBase = Exception


class EngineError(_ErrorBase):
    """The file cannot be opened or run by this runtime (one line, for the user)."""


def load_sidecar(path) -> dict:
    """The ``<file>.json`` metadata written beside every export (checked), or {} when there is none."""
    side = str(path) + ".json"
    if not os.path.isfile(side):
        return {}
    try:
        with open(side) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read metadata {side}: {_first_line(exc)}") from None
    return check_metadata(meta, side)


MAX_SIDE = 8192  # the largest input height/width metadata may name


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _triple(v, positive: bool = False) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_is_finite(x) and (x > 0 or not positive) for x in v)


# key -> (test of a present, non-null value, what a valid one looks like)
_FIELDS = {
    "input_size": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) and 1 <= x <= MAX_SIDE for x in v),
                   f"[H, W], integers 1..{MAX_SIDE}"),
    "input_shape": (lambda v: isinstance(v, list) and len(v) == 4 and all(_is_int(x) and x >= -1 for x in v),
                    "[N, C, H, W] or [N, H, W, C] integers (-1: any batch)"),
    "layout": (lambda v: v in ("nchw", "nhwc"), '"nchw" or "nhwc"'),
    "num_classes": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "macs": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "params": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "labels": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of class names"),
    "model": (lambda v: isinstance(v, str), "a string"),
    "format": (lambda v: isinstance(v, str), "a string"),
    "precision": (lambda v: isinstance(v, str), "a string"),
    "parity": (lambda v: isinstance(v, dict), "an object"),
    "input_quantization": (lambda v: isinstance(v, dict) and _is_finite(v.get("scale")) and v["scale"] > 0
                           and _is_int(v.get("zero_point")) and isinstance(v.get("dtype"), str),
                           '{"scale": > 0, "zero_point": integer, "dtype": name}'),
    "preprocessing": (lambda v: isinstance(v, dict) and _triple(v.get("mean", [0, 0, 0]))
                      and _triple(v.get("std", [1, 1, 1]), positive=True)
                      and _is_finite(v.get("pixel_scale", 255.0)) and v.get("pixel_scale", 255.0) > 0
                      and str(v.get("channel_order", "RGB")).upper() in ("RGB", "BGR"),
                      '{"channel_order": "RGB"|"BGR", "pixel_scale": > 0, "mean": [3 numbers], '
                      '"std": [3 numbers > 0]}'),
}


def check_metadata(meta, source: str) -> dict:
    """``meta`` if every field a runtime or a report reads has the right type and range, else one
    EngineError naming the field (a std of 0 would make every input NaN; a string size, a crash)."""
    fix = f"fix {source} or export the file again"
    if not isinstance(meta, dict):
        raise EngineError(f"bad metadata in {source}: expected a JSON object, got {json.dumps(meta)[:40]}; {fix}")
    for key, (ok, want) in _FIELDS.items():
        value = meta.get(key)
        if value is not None and not ok(value):
            raise EngineError(f"bad metadata in {source}: {key} {json.dumps(value)[:80]} (want {want}); {fix}")
    labels, k = meta.get("labels"), meta.get("num_classes")
    if labels and k and len(labels) != k:
        raise EngineError(f"bad metadata in {source}: {len(labels)} labels for num_classes {k}; {fix}")
    return meta


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


@contextlib.contextmanager
def _no_native_info():
    """TFLite's C++ prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on fd 2 when
    it applies the delegate (in allocate_tensors), on every run: keep that off the user's terminal.
    Failures still surface, as the Python exception raised inside."""
    import sys

    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreter): nothing to hide
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _fixed(d) -> bool:
    """A known dimension (ONNX gives names or None for dynamic ones, TFLite -1)."""
    return _is_int(d) and d > 0


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


ENGINES: dict[str, type] = {}  # name -> Engine class, in order of preference


def register(cls):
    """Class decorator: make an engine known by its ``name`` (registration order is preference)."""
    ENGINES[cls.name] = cls
    return cls


class Engine:
    """Interface: prepare(float NCHW) -> native input, invoke(native) -> raw output, finish(raw) -> float logits.

    A subclass declares ``name``, the ``formats`` it runs (format name -> suffix of the file it
    opens: this module's own copy of the export table's suffixes, tested to agree) and the
    ``module`` whose presence makes it available, and is registered with ``@register``.
    """

    name = "engine"
    formats: dict[str, str | None] = {}  # None: the engine runs a model, not a file (torch)
    precisions: tuple[str, ...] | None = None  # None: every precision of its formats
    module = ""
    runtime_version = ""

    def __init__(self, path, threads: int = 1, metadata: dict | None = None):
        self.path = str(path)
        self.threads = int(threads)
        self.metadata = metadata if metadata is not None else load_sidecar(path)
        self.layout = (self.metadata.get("layout") or "nchw").lower()
        self.batch_fixed: int | None = None

    def prepare(self, x: np.ndarray):
        raise NotImplementedError

    def invoke(self, native):
        raise NotImplementedError

    def finish(self, raw) -> np.ndarray:
        return np.asarray(raw, dtype=np.float32)

    def _to_layout(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if self.layout == "nhwc" else x

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 NCHW batch; files with a fixed batch of 1 run image by image."""
        x = np.asarray(x, dtype=np.float32)
        if self.batch_fixed == 1 and x.shape[0] != 1:
            return np.concatenate([self.predict(x[i:i + 1]) for i in range(x.shape[0])], axis=0)
        return self.finish(self.invoke(self.prepare(x)))

    def input_shape(self) -> list:
        raise NotImplementedError

    def _check_io(self, name: str, dtype: str, allowed: tuple, out_shape) -> None:
        """Refuse, in one line naming the signature, a file whose input is not one image batch
        this toolkit can feed ([N,3,H,W] or [N,H,W,3]; float32 or a quantized integer type), or
        whose metadata contradicts it; settle the layout from the shape when metadata is silent."""
        shape = list(self._shape)
        sig = f"'{name}' {dtype}[{','.join(str(d) if _fixed(d) else '?' for d in shape)}]"
        want = "edge runs image classifiers with one [N,3,H,W] or [N,H,W,3] input, " + " or ".join(allowed)
        if len(shape) != 4 or dtype not in allowed:
            raise EngineError(f"{self.path} has input {sig}: {want}")
        if not self.metadata.get("layout") and shape[3] == 3 and shape[1] != 3:
            self.layout = "nhwc"
        channels = shape[3] if self.layout == "nhwc" else shape[1]
        if _fixed(channels) and channels != 3:
            raise EngineError(f"{self.path} has input {sig} ({self.layout}): {channels} channel(s), but edge feeds "
                              "RGB images (3 channels)")
        hw = shape[1:3] if self.layout == "nhwc" else shape[2:4]
        meta_hw = self.metadata.get("input_size")
        if meta_hw and all(_fixed(d) for d in hw) and list(meta_hw) != list(hw):
            raise EngineError(f"{self.path} has input {sig} but its metadata says input_size {list(meta_hw)} "
                              f"({self.layout}): fix or delete the metadata")
        labels = self.metadata.get("labels")
        k = out_shape[-1] if out_shape else None
        if labels and _fixed(k) and len(labels) != k:
            raise EngineError(f"{self.path} has {k} outputs but its metadata names {len(labels)} labels: "
                              "fix or delete the metadata")

    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images the file takes: from its metadata, else its fixed input shape."""
        meta_hw = self.metadata.get("input_size")
        if meta_hw:
            return int(meta_hw[0]), int(meta_hw[1])
        hw = self._shape[1:3] if self.layout == "nhwc" else self._shape[2:4]
        if not all(_fixed(d) for d in hw):
            raise EngineError(f"{self.path}: its input has no fixed height and width and no metadata gives them: "
                              "give --input-size H or HxW")
        return int(hw[0]), int(hw[1])

    def companions(self) -> list[str]:
        """The other files of the artifact this engine reads beside ``path`` (a two-file format's
        weights, say); none for single-file formats."""
        return []

    def close(self):
        pass


@register
class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    formats = {"onnx": ".onnx"}
    module = "onnxruntime"

    def __init__(self, path, threads=1, metadata=None, profile: bool = False, profile_prefix: str | None = None):
        super().__init__(path, threads, metadata)
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineError("onnxruntime is not installed") from None
        self.runtime_version = ort.__version__
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if self.threads == 1:
            # one thread means one thread: no spinning pool competing with the measured one
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if profile:
            opts.enable_profiling = True
            if profile_prefix:
                opts.profile_file_prefix = profile_prefix
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EngineError(f"onnxruntime cannot load {self.path}: {_first_line(exc)}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._shape = list(inp.shape)
        if _fixed(self._shape[0] if self._shape else None):
            self.batch_fixed = self._shape[0]
        dtype = {"tensor(float)": "float32"}.get(inp.type, inp.type.removeprefix("tensor(").rstrip(")"))
        self._check_io(inp.name, dtype, ("float32",), list(self.session.get_outputs()[0].shape))

    def input_shape(self):
        return self._shape

    def prepare(self, x):
        return {self.input_name: self._to_layout(x)}

    def invoke(self, native):
        return self.session.run(self.output_names, native)[0]

    def end_profiling(self) -> str:
        return self.session.end_profiling()


class _TFLiteEngine(Engine):
    """ai-edge-litert and tflite-runtime share the Interpreter API; only the import differs."""

    formats = {"tflite": ".tflite"}

    package = ""  # the pip name, for the error when it is missing

    def _interpreter_class(self):
        import importlib

        try:
            top = importlib.import_module(self.module)
            interpreter = importlib.import_module(f"{self.module}.interpreter").Interpreter
        except ImportError:
            raise EngineError(f"{self.package} is not installed") from None
        self.runtime_version = getattr(top, "__version__", "")
        return interpreter

    def __init__(self, path, threads=1, metadata=None):
        super().__init__(path, threads, metadata)
        cls = self._interpreter_class()
        try:
            self.interp = cls(model_path=self.path, num_threads=self.threads)
            with _no_native_info():
                self.interp.allocate_tensors()
        except Exception as exc:
            raise EngineError(f"{self.name} cannot load {self.path}: {_first_line(exc)}") from None
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self._shape = [int(d) for d in self.inp.get("shape_signature", self.inp["shape"])]
        self.batch_fixed = int(self.inp["shape"][0]) if len(self._shape) else None
        self._check_io(self.inp.get("name", "input"), np.dtype(self.inp["dtype"]).name, ("float32", "int8", "uint8"),
                       [int(d) for d in self.out["shape"]])
        self._shape = [int(d) for d in self.inp["shape"]]
        self.in_q = self.inp["quantization"] if np.issubdtype(self.inp["dtype"], np.integer) else None
        self.out_q = self.out["quantization"] if np.issubdtype(self.out["dtype"], np.integer) else None

    def input_shape(self):
        return self._shape

    def prepare(self, x):
        x = self._to_layout(x)
        if self.in_q is not None:
            scale, zp = self.in_q
            x = quantize(x, scale, zp, self.inp["dtype"])
        else:
            x = x.astype(self.inp["dtype"], copy=False)
        if list(x.shape) != self._shape:
            raise EngineError(f"input shape {list(x.shape)} does not match the file's {self._shape}")
        return x

    def invoke(self, native):
        self.interp.set_tensor(self.inp["index"], native)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"])

    def finish(self, raw):
        if self.out_q is not None:
            scale, zp = self.out_q
            return dequantize(raw, scale, zp)
        return np.asarray(raw, dtype=np.float32)


@register
class LiteRTEngine(_TFLiteEngine):
    name = "litert"
    module, package = "ai_edge_litert", "ai-edge-litert"


@register
class TFLiteRuntimeEngine(_TFLiteEngine):
    name = "tflite-runtime"
    module, package = "tflite_runtime", "tflite-runtime"


def engines_for(fmt: str) -> tuple[str, ...]:
    """Registered engines that run format ``fmt``, preferred first."""
    return tuple(name for name, cls in ENGINES.items() if fmt in cls.formats)


def suffix_formats() -> dict[str, str]:
    """Suffix of the file an engine opens -> format name, from the registered engines."""
    return {suffix: fmt for cls in ENGINES.values() for fmt, suffix in cls.formats.items() if suffix}


@register
class NcnnEngine(Engine):
    """ncnn (Tencent) on a pnnx-converted ``.param`` + ``.bin`` pair: one image per call (ncnn
    Mats have no batch axis). Options default to what measured fastest and correct here (see
    ``NCNN_OPTIONS``); fp32 files run with fp16/bf16 storage off, so fp32 means fp32."""

    name = "ncnn"
    formats = {"ncnn": ".param"}
    module = "ncnn"
    # use_sgemm_convolution off: 5-8% faster on x86 (toolchain.md; re-measure with bench/ncnn_options.py);
    # packing layout on: off was 7-29% slower.
    NCNN_OPTIONS = {"use_sgemm_convolution": False, "use_packing_layout": True}

    def __init__(self, path, threads=1, metadata=None, options: dict | None = None):
        super().__init__(path, threads, metadata)
        try:
            import ncnn
        except ImportError:
            raise EngineError("ncnn is not installed (pip install ncnn)") from None
        self.runtime_version = getattr(ncnn, "__version__", "")
        weights = self.companions()[0]
        if not os.path.isfile(weights):
            raise EngineError(f"ncnn weights not found: {weights} (a .param needs its .bin beside it)")
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.num_threads = self.threads
        half = (self.metadata.get("precision") or "fp32") == "fp16"
        opt.use_fp16_storage = opt.use_fp16_packed = half
        opt.use_fp16_arithmetic = opt.use_bf16_storage = False
        opt.use_int8_inference = False
        for key, value in {**self.NCNN_OPTIONS, **(options or {})}.items():
            setattr(opt, key, bool(value))
        self.options = {k: bool(getattr(opt, k)) for k in self.NCNN_OPTIONS}
        if self.net.load_param(self.path) != 0:
            raise EngineError(f"ncnn cannot load {self.path}: not a valid ncnn .param file")
        if self.net.load_model(weights) != 0:
            raise EngineError(f"ncnn cannot load {weights}: not the weights of {os.path.basename(self.path)}")
        self.input_name = self.net.input_names()[0]
        self.output_name = self.net.output_names()[0]
        size = self.metadata.get("input_size")
        self._shape = [1, 3, int(size[0]), int(size[1])] if size else [1, 3, -1, -1]
        self.batch_fixed = 1
        self._mat = ncnn.Mat

    def companions(self):
        return [os.path.splitext(self.path)[0] + ".bin"]

    def input_shape(self):
        return self._shape

    def prepare(self, x):
        x = np.ascontiguousarray(x[0], dtype=np.float32)
        return x, self._mat(x)  # the Mat wraps x's memory: keep x alive with it

    def invoke(self, native):
        ex = self.net.create_extractor()
        ex.input(self.input_name, native[1])
        ret, out = ex.extract(self.output_name)
        if ret != 0:
            raise EngineError(f"ncnn failed to run {os.path.basename(self.path)} (code {ret})")
        return np.array(out)

    def finish(self, raw):
        return np.asarray(raw, dtype=np.float32).reshape(1, -1)

    def close(self):
        self.net.clear()


# ExecuTorch engines holding a loaded program in this process (they pin the threadpool's size)
_EXECUTORCH_LOADED = weakref.WeakSet()


@register
class ExecuTorchEngine(Engine):
    """ExecuTorch's runtime (``executorch.runtime``) on a ``.pte`` program. Its pybindings link
    libtorch, so it takes and gives torch tensors.

    Threads: XNNPACK runs on ExecuTorch's threadpool, one per process, and each XNNPACK runtime
    keeps the pool it was created with when its method loads. So the pool is resized to
    ``threads`` *before* the program loads (resizing it under a loaded program leaves that
    program on a freed pool: executorch 1.5.1 aborts in glibc's tpp.c), and while a program is
    loaded in this process no other thread count can be had (one-line EngineError).
    ``runner.run`` times several thread counts of such an engine one after another."""

    name = "executorch"
    formats = {"pte": ".pte"}
    module = "executorch"
    one_pool_per_process = True

    def __init__(self, path, threads=1, metadata=None):
        super().__init__(path, threads, metadata)
        try:
            import executorch
            import torch
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError:
            raise EngineError("executorch is not installed (pip install executorch)") from None
        from importlib.metadata import PackageNotFoundError, version

        try:
            self.runtime_version = version("executorch")
        except PackageNotFoundError:
            self.runtime_version = getattr(executorch, "__version__", "")
        self._torch = torch
        self.pool_threads = self._size_pool(portable_lib)  # what XNNPACK really uses
        try:
            program = Runtime.get().load_program(self.path)
            self.method = program.load_method("forward")
        except Exception as exc:
            raise EngineError(f"executorch cannot load {self.path}: {_first_line(exc)}") from None
        self.program = program
        _EXECUTORCH_LOADED.add(self)
        size = self.metadata.get("input_size")
        h, w = (int(size[0]), int(size[1])) if size else (-1, -1)
        self._shape = [1, h, w, 3] if self.layout == "nhwc" else [1, 3, h, w]
        self.batch_fixed = 1

    def _size_pool(self, lib) -> int:
        """Resize the process's threadpool to ``threads`` while no program holds it."""
        current = lib._threadpool_get_thread_count()
        if current == self.threads:
            return current
        if len(_EXECUTORCH_LOADED):
            import gc

            gc.collect()  # engines dropped but kept by a reference cycle
        if len(_EXECUTORCH_LOADED):
            raise EngineError(f"executorch runs every .pte of a process on one threadpool, sized {current} by a "
                              f"loaded program: {self.threads} thread(s) need that program closed first "
                              "(or another process)")
        lib._unsafe_reset_threadpool(self.threads)
        return lib._threadpool_get_thread_count()

    def input_shape(self):
        return self._shape

    def prepare(self, x):
        return self._torch.from_numpy(self._to_layout(x))

    def invoke(self, native):
        try:
            return self.method.execute([native])[0]
        except Exception as exc:
            raise EngineError(f"executorch failed to run {os.path.basename(self.path)}: {_first_line(exc)}") from None

    def finish(self, raw):
        return raw.detach().numpy().astype(np.float32, copy=False)

    def close(self):
        """Free the program (and its XNNPACK runtimes): the threadpool may be resized again."""
        self.method = self.program = None
        _EXECUTORCH_LOADED.discard(self)


def _openvino():
    """Import OpenVINO with its telemetry off: ``import openvino`` otherwise loads
    openvino_telemetry, sends an "import" event and writes a client id under ~/intel. OpenVINO
    falls back to its own no-op stub when that package cannot be imported, which is what a
    ``None`` entry in sys.modules makes it do (nothing written, nothing sent)."""
    import sys

    if "openvino" not in sys.modules:
        for mod in ("openvino_telemetry", "openvino_telemetry.backend"):
            sys.modules.setdefault(mod, None)
    import openvino

    return openvino


@register
class OpenVINOEngine(Engine):
    """OpenVINO's CPU plugin on the toolkit's ONNX files. Its default precision on CPUs with
    AMX or AVX-512 BF16 is bf16, silently: here f32 is pinned unless bf16 is asked for, and bf16
    is refused where the CPU has no bf16 support (OpenVINO would emulate nothing, only drop to f32)."""

    name = "openvino"
    formats = {"onnx": ".onnx"}
    module = "openvino"
    INFERENCE_PRECISIONS = ("f32", "bf16")

    def __init__(self, path, threads=1, metadata=None, inference_precision: str | None = None):
        super().__init__(path, threads, metadata)
        try:
            ov = _openvino()
        except ImportError:
            raise EngineError("openvino is not installed (pip install openvino)") from None
        self.runtime_version = ov.__version__.split("-")[0]
        precision = (inference_precision or "f32").lower()
        if precision not in (*self.INFERENCE_PRECISIONS, "default"):  # default: OpenVINO's own choice (peers)
            raise EngineError(f"unknown inference precision '{precision}' (choose from: f32, bf16)")
        core = ov.Core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineError("--inference-precision bf16 needs a CPU with bf16 support (AVX-512 BF16 or AMX); "
                              "this CPU has none: run f32")
        self.inference_precision = precision
        try:
            model = core.read_model(self.path)
            config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                      "ENABLE_CPU_PINNING": False}
            if precision != "default":
                config["INFERENCE_PRECISION_HINT"] = precision
            self.compiled = core.compile_model(model, "CPU", config)
            self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        except Exception as exc:
            raise EngineError(f"openvino cannot load {self.path}: {_first_line(exc)}") from None
        self.request = self.compiled.create_infer_request()
        shape = self.compiled.input(0).get_partial_shape()
        self._shape = [d.get_length() if d.is_static else -1 for d in shape]
        if self._shape and self._shape[0] > 0:
            self.batch_fixed = self._shape[0]
        if not self.metadata.get("layout") and len(self._shape) == 4 and self._shape[-1] == 3 and self._shape[1] != 3:
            self.layout = "nhwc"

    def input_shape(self):
        return self._shape

    def prepare(self, x):
        return self._to_layout(x)

    def invoke(self, native):
        return self.request.infer({0: native})[self.compiled.output(0)]


def available_engines() -> list[str]:
    import importlib.util

    return [name for name, cls in ENGINES.items() if cls.module and importlib.util.find_spec(cls.module) is not None]


def default_engine(path) -> str:
    """The first installed engine that runs this file type (ai-edge-litert before tflite-runtime)."""
    suffix = os.path.splitext(str(path))[1].lower()
    known = suffix_formats()
    if suffix not in known:
        raise EngineError(f"unknown artifact type '{suffix or path}': expected {' or '.join(known)}")
    wanted = engines_for(known[suffix])
    have = available_engines()
    for name in wanted:
        if name in have:
            return name
    raise EngineError(f"no runtime for {suffix} files is installed (need one of: {', '.join(wanted)})")


def open_engine(path, engine: str | None = None, threads: int = 1, **kwargs) -> Engine:
    if not os.path.isfile(str(path)):
        raise EngineError(f"artifact not found: {path}")
    name = engine or default_engine(path)
    if name not in ENGINES:
        raise EngineError(f"unknown engine '{name}' (known: {', '.join(ENGINES)})")
    return ENGINES[name](path, threads=threads, **kwargs)
