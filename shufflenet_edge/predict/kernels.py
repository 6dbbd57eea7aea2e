"""A model as the list of kernels an engine runs: ``edge info``'s layers, in order, plus the ops a
forward calls outside any layer (v2's channel split, torchvision's functional residual add and
global pool), which ``edge info`` cannot see but an engine runs all the same.

The counting is ``complexity.measure``'s (MACs, weights, memory access of each layer); this
module adds what a latency model needs besides: input and output shapes, kernel size, stride,
groups, and which op produced each input (the fusion rules are about producer -> consumer pairs).
Everything runs on the meta device: no weights, no arithmetic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

CONV_KINDS = ("conv1x1", "gconv1x1", "dwconv", "conv")
# A clamped activation (ReLU6, Hardtanh; ONNX Clip) is not a ReLU to an engine: ONNX Runtime fuses both into
# an NCHWc conv, but a ReLU runs free in the conv's own loop and a Clip as a pass over its output (measured
# here, AMD EPYC: MobileNet v2's 16 -> 96 expansion at 112x112 took 0.37 ms with ReLU, 0.47 with ReLU6, its
# depthwise conv 0.086 and 0.119). One kind for both put MobileNet v2 at 224 15-19% under.
CLAMPED = "relu6"
# Every kernel type the predictor fits one regressor for.
KERNEL_KINDS = CONV_KINDS + ("relu", CLAMPED, "add", "concat", "split", "shuffle", "maxpool", "avgpool", "gap", "fc")

# torch functions called outside any layer that an engine runs as a kernel of their own
_IMPLICIT = {"chunk": "split", "split": "split", "tensor_split": "split", "__add__": "add", "add": "add",
             "__iadd__": "add", "add_": "add", "cat": "concat", "concat": "concat", "adaptive_avg_pool2d": "gap",
             "mean": "gap", "relu": "relu", "relu_": "relu", "relu6": CLAMPED, "hardtanh": CLAMPED,
             "max_pool2d": "maxpool", "avg_pool2d": "avgpool", "linear": "fc"}


@dataclass
class Op:
    """One kernel-sized op: a layer of ``edge info`` (``layer`` names it) or an implicit op (``layer`` None)."""

    name: str
    kind: str  # one of KERNEL_KINDS, or "other" (no kernel model: costs nothing in a prediction)
    cin: int
    cout: int
    h: int  # input map
    w: int
    oh: int  # output map
    ow: int
    k: int = 1
    stride: int = 1
    groups: int = 1
    pad: int = 0
    c2: int = 0  # concat: channels of the second input
    macs: int = 0
    weights: int = 0
    in_elems: int = 0
    out_elems: int = 0
    layer: str | None = None
    inputs: list[int] = field(default_factory=list)  # producing ops (index into the list; -1: model input)

    def spec(self) -> dict:
        """What ``micro.build`` needs to rebuild this op alone (and what a profile point stores)."""
        d = {"kind": self.kind, "cin": self.cin, "cout": self.cout, "h": self.h, "w": self.w}
        if self.kind in CONV_KINDS or self.kind in ("maxpool", "avgpool"):
            d.update(k=self.k, stride=self.stride, pad=self.pad)
        if self.kind in CONV_KINDS or self.kind == "shuffle":
            d["groups"] = self.groups
        if self.kind == "concat":
            d["c2"] = self.c2
        if self.kind == "avgpool" and (self.oh, self.ow) != out_hw(d):
            d["out"] = [self.oh, self.ow]  # adaptive pooling to a fixed size (AlexNet's 6x6)
        return d

    def to_dict(self) -> dict:
        return asdict(self)


# ONNX Runtime's x86 kernels run a conv or pool in their blocked NCHWc layout (channels in blocks of 8
# floats on AVX2, 16 on AVX-512: the engine's block, read from the engine by ``layout.block_size`` and kept
# in the profile) or as a plain NCHW kernel, by its channel counts alone: the same in a one-op model as
# inside a network (read from the optimized graphs of micro-models, onnxruntime 1.32: a 58-channel conv
# after an NCHWc conv still runs NCHW). A dense conv needs input channels in multiples of 4 whatever the
# block (its output is padded to the block; a stem's image channels count), a depthwise conv the same of
# its channels, a grouped conv whole blocks per group on both sides, a pool whole blocks (on AVX-512 a
# 24-channel pool and v1 g3's 120-channel grouped convs run NCHW, on AVX2 NCHWc). The speeds differ: a
# depthwise conv did 4.4 M MACs per ms in NCHWc and 1.1 in NCHW (first host profile, medians of 24 and 219
# points). The zoo's channel counts mostly qualify, the fit's random draws mostly do not, so each layout
# gets its own law.
NCHWC_BLOCK = 8  # the block of a timed profile that does not name its own (those were fitted on AVX2 hosts)
NCHWC_CHANNELS = 4  # a dense or depthwise conv's channel multiple, on either block
BLOCKED_KINDS = ("conv1x1", "gconv1x1", "dwconv", "conv", "maxpool", "avgpool")


def blocked(spec: dict, block: int = NCHWC_BLOCK) -> bool:
    """Whether ONNX Runtime runs ``spec`` in its NCHWc layout of ``block`` channels (the rules above;
    block 0: an engine without one)."""
    kind, cin, cout = spec["kind"], int(spec["cin"]), int(spec["cout"])
    if not block or kind not in BLOCKED_KINDS:
        return False
    if kind in ("maxpool", "avgpool"):
        return cin % block == 0
    if kind == "dwconv":
        return cin % NCHWC_CHANNELS == 0
    if kind == "gconv1x1":
        g = max(1, int(spec.get("groups", 1)))
        return (cin // g) % block == 0 and (cout // g) % block == 0
    return cin % NCHWC_CHANNELS == 0 or (kind == "conv" and cin < NCHWC_CHANNELS)


def padded(spec: dict, block: int = NCHWC_BLOCK) -> dict:
    """``spec`` with the channels a blocked conv computes: whole blocks of ``block`` (its NCHWc tensors
    hold ceil(C / block) blocks, the padding included), so a 24 -> 24 1x1 conv on AVX-512 does the work
    of a 32 -> 32 one. The image channels of a stem are read as they are; grouped convs and pools run
    blocked only on whole blocks (``blocked``). Anything else comes back unchanged."""
    kind = spec["kind"]
    if kind not in ("conv1x1", "conv", "dwconv") or not blocked(spec, block):
        return spec
    up = lambda c: -(-int(c) // block) * block  # noqa: E731
    if kind == "dwconv":
        c = up(spec["cin"])
        return {**spec, "cin": c, "cout": c, "groups": c}
    cin = spec["cin"] if kind == "conv" and int(spec["cin"]) < NCHWC_CHANNELS else up(spec["cin"])
    return {**spec, "cin": cin, "cout": up(spec["cout"])}


def out_hw(spec: dict) -> tuple[int, int]:
    """Output map of a spec (convs and pools: the usual floor formula; global pool and fc: 1x1)."""
    kind, h, w = spec["kind"], int(spec["h"]), int(spec["w"])
    if kind in ("gap", "fc"):
        return 1, 1
    if "out" in spec:
        return int(spec["out"][0]), int(spec["out"][1])
    if kind in CONV_KINDS or kind in ("maxpool", "avgpool"):
        k, s, p = int(spec.get("k", 1)), int(spec.get("stride", 1)), int(spec.get("pad", 0))
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return h, w


def spec_counts(spec: dict) -> dict:
    """MACs, weights and element counts of a spec, the same way ``complexity.measure`` counts a layer."""
    kind, cin, cout = spec["kind"], int(spec["cin"]), int(spec["cout"])
    h, w = int(spec["h"]), int(spec["w"])
    oh, ow = out_hw(spec)
    k, g = int(spec.get("k", 1)), int(spec.get("groups", 1))
    macs = weights = 0
    in_elems, out_elems = cin * h * w, cout * oh * ow
    if kind in CONV_KINDS:
        weights = cout * (cin // g) * k * k
        macs = out_elems * (cin // g) * k * k
    elif kind == "fc":
        weights = macs = cin * cout
        in_elems, out_elems = cin, cout
    elif kind == "add":
        in_elems = 2 * cin * h * w
    elif kind == "concat":
        in_elems = (cin + int(spec.get("c2", 0))) * h * w
        out_elems = (cin + int(spec.get("c2", 0))) * h * w
    return {"macs": macs, "weights": weights, "in_elems": in_elems, "out_elems": out_elems, "oh": oh, "ow": ow}


def _dims(t) -> tuple[int, int, int]:
    """(channels, h, w) of a feature map or (features, 1, 1) of a vector."""
    s = list(t.shape)
    if len(s) >= 4:
        return int(s[1]), int(s[2]), int(s[3])
    return int(s[-1]) if s else 1, 1, 1


def _module_op(name: str, m, ins: list, out, stat) -> Op:
    from torch import nn

    from ..complexity import conv_kind

    c, h, w = _dims(ins[0])
    co, oh, ow = _dims(out)
    weights = stat.memory_access - sum(t.numel() for t in ins) - out.numel()
    base = dict(name=name, cin=c, cout=co, h=h, w=w, oh=oh, ow=ow, macs=stat.macs, weights=max(0, weights),
                in_elems=sum(t.numel() for t in ins), out_elems=out.numel(), layer=name)
    if isinstance(m, nn.Conv2d):
        return Op(kind=conv_kind(m), k=m.kernel_size[0], stride=m.stride[0], groups=m.groups, pad=m.padding[0], **base)
    kind = stat.kind if stat.kind in ("fc", "shuffle", "concat", "add", "relu") else None
    if kind == "relu" and isinstance(m, nn.Hardtanh):  # ReLU6 is one: clamped, a kernel of its own (CLAMPED)
        kind = "relu6"
    if kind == "shuffle":
        return Op(kind=kind, groups=int(getattr(m, "groups", 1)), **base)
    if kind == "concat":
        return Op(kind=kind, **{**base, "cin": _dims(ins[0])[0]}, c2=sum(_dims(t)[0] for t in ins[1:]))
    if kind is not None:
        return Op(kind=kind, **base)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        pk = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        ps = m.stride if isinstance(m.stride, int) else m.stride[0]
        pp = m.padding if isinstance(m.padding, int) else m.padding[0]
        return Op(kind="maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool", k=pk, stride=ps, pad=pp, **base)
    if stat.kind == "pool":  # global or adaptive average pooling
        return Op(kind="gap" if (oh, ow) == (1, 1) else "avgpool", k=max(1, h // max(1, oh)),
                  stride=max(1, h // max(1, oh)), **base)
    return Op(kind="other", **base)


def _implicit_op(name: str, kind: str, ins: list, outs: list) -> Op:
    c, h, w = _dims(ins[0])
    co, oh, ow = _dims(outs[0])
    in_elems = sum(t.numel() for t in ins)
    out_elems = sum(t.numel() for t in outs)
    if kind == "split":
        co = c
    if kind == "gap":
        oh = ow = 1
    if kind == "fc":
        return Op(name, kind, c, co, 1, 1, 1, 1, macs=c * co, weights=c * co, in_elems=in_elems, out_elems=out_elems)
    return Op(name, kind, c, co, h, w, oh, ow, c2=sum(_dims(t)[0] for t in ins[1:]) if kind == "concat" else 0,
              in_elems=in_elems, out_elems=out_elems)


def trace_ops(model, input_size, in_channels: int = 3) -> list[Op]:
    """The ops of ``model`` (an nn.Module, ideally on the meta device) for one image of ``input_size``.

    Leaf modules are ``complexity.measure``'s layers (same filter, same order); torch functions
    called outside every leaf module are implicit ops when an engine runs them as kernels
    (``_IMPLICIT``) and pass their input through otherwise (flatten, view, getitem).
    """
    import torch
    from torch.overrides import TorchFunctionMode

    from ..complexity import measure

    h, w = input_size
    stats = measure(model, (h, w), in_channels=in_channels).layers
    leaves = {id(m): n for n, m in model.named_modules() if not list(m.children())}
    events: list[tuple] = []  # ("module", name, module, inputs, outputs) or ("fn", kind|None, inputs, outputs)
    keep: list = []  # every tensor seen stays alive, so id() names one tensor for the whole trace
    depth = [0]

    def tensors(x) -> list:
        if isinstance(x, torch.Tensor):
            return [x]
        if isinstance(x, (list, tuple)):
            return [t for item in x for t in tensors(item)]
        return []

    def pre(m, inputs):
        depth[0] += 1

    def post(m, inputs, out):
        depth[0] -= 1
        ins, outs = tensors(inputs), tensors(out)
        keep.extend(ins + outs)
        events.append(("module", leaves[id(m)], m, ins, outs))

    class Implicit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if depth[0] == 0:
                ins, outs = tensors(list(args) + list((kwargs or {}).values())), tensors(out)
                if ins and outs:
                    kind = _IMPLICIT.get(getattr(func, "__name__", ""))
                    if kind in ("add", "concat") and len(ins) < 2:
                        kind = None  # x + 1, a one-tensor cat: no kernel of its own
                    keep.extend(ins + outs)
                    events.append(("fn", kind, ins, outs))
            return out

    hooks = []
    for m in model.modules():
        if id(m) in leaves:
            hooks.append(m.register_forward_pre_hook(pre))
            hooks.append(m.register_forward_hook(post))
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, h, w, device=device)
    keep.append(x)
    try:
        with torch.no_grad(), Implicit():
            model(x)
    finally:
        for handle in hooks:
            handle.remove()
    return _ops_from_events(events, stats, id(x))


def _ops_from_events(events: list, stats: list, input_id: int) -> list[Op]:
    ops: list[Op] = []
    producer: dict[int, int] = {input_id: -1}
    si = 0
    n_implicit = 0
    for ev in events:
        if ev[0] == "module":
            _, name, m, ins, outs = ev
            real = si < len(stats) and stats[si].name == name and outs
            if not real or not ins:  # a free layer (BN, identity, dropout, flatten): output = its input
                src = producer.get(id(ins[0]), -1) if ins else -1
                for t in outs:
                    producer[id(t)] = src
                continue
            op = _module_op(name, m, ins, outs[0], stats[si])
            si += 1
        else:
            _, kind, ins, outs = ev
            if kind is None:
                src = producer.get(id(ins[0]), -1)
                for t in outs:
                    producer[id(t)] = src
                continue
            n_implicit += 1
            prev = ops[-1].name if ops else "input"
            op = _implicit_op(f"{prev}>{kind}", kind, ins, outs)
        op.inputs = [producer.get(id(t), -1) for t in ins]
        for t in outs:
            producer[id(t)] = len(ops)
        ops.append(op)
    if si != len(stats):
        missing = stats[si].name if si < len(stats) else "?"
        raise RuntimeError(f"kernel decomposition lost edge info's layer {missing}")
    return ops


def model_ops(name: str, input_size=None, num_classes: int = 1000) -> list[Op]:
    """The ops of a registered model at ``input_size`` (default: its own), built on the meta device."""
    import torch

    from ..models import get_spec, parse_input_size, stem_for

    spec = get_spec(name)
    size = parse_input_size(input_size if input_size is not None else spec.default_input_size)
    with torch.device("meta"):
        model = spec.build(num_classes=num_classes, stem=stem_for(size))
    return trace_ops(model.eval(), size)


def totals(ops: list[Op]) -> dict:
    """MACs and memory access (elements, bytes at fp32) over ops, as ``complexity`` sums them."""
    macs = sum(o.macs for o in ops)
    mem = sum(o.in_elems + o.out_elems + o.weights for o in ops)
    return {"macs": macs, "memory_access": mem, "memory_access_bytes": 4 * mem}
