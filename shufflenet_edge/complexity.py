"""Per-layer and total complexity: MACs, parameters, activations, memory access cost.

MACs are multiply-adds of conv and fc layers only (both papers' "FLOPs"). Memory access cost
follows the v2 paper: input + output feature maps + weights of each op, in elements (bytes at
fp32). BatchNorm is left out of memory access because every exporter folds it into the conv.
Counting runs on the ``meta`` device, so no arithmetic is done and big models cost nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .models import create_model, get_spec, parse_input_size, stem_for
from .models.common import Add, ChannelShuffle, Concat, GlobalAvgPool

_FREE = (nn.Identity, nn.Dropout, nn.Flatten, nn.BatchNorm2d)


@dataclass
class LayerStat:
    name: str
    kind: str
    out_shape: list[int]
    macs: int
    params: int
    activations: int
    memory_access: int


@dataclass
class Complexity:
    model: str
    input_size: list[int]
    num_classes: int
    macs: int
    params: int
    activations: int
    memory_access: int
    memory_access_bytes: int
    layers: list[LayerStat] = field(default_factory=list)

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for layer in self.layers:
            agg = out.setdefault(layer.kind, {"count": 0, "macs": 0, "memory_access": 0})
            agg["count"] += 1
            agg["macs"] += layer.macs
            agg["memory_access"] += layer.memory_access
        return out

    def to_dict(self, layers: bool = True) -> dict:
        d = asdict(self)
        if not layers:
            d.pop("layers")
        d["by_kind"] = self.by_kind()
        return d


def conv_kind(m: nn.Conv2d) -> str:
    """The categories the v2 paper's Figure 2 and the per-op profiler use."""
    if m.groups == m.in_channels and m.groups > 1:
        return "dwconv"
    if m.kernel_size == (1, 1):
        return "gconv1x1" if m.groups > 1 else "conv1x1"
    return "conv"


def _kind(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return conv_kind(m)
    if isinstance(m, nn.Linear):
        return "fc"
    if isinstance(m, ChannelShuffle):
        return "shuffle"
    if isinstance(m, Concat):
        return "concat"
    if isinstance(m, Add):
        return "add"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, GlobalAvgPool)):
        return "pool"
    if isinstance(m, (nn.ReLU, nn.ReLU6)):
        return "relu"
    return type(m).__name__.lower()


def _macs(m: nn.Module, out: torch.Tensor) -> int:
    per_image = out.numel() // out.shape[0]
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        return per_image * (m.in_channels // m.groups) * kh * kw
    if isinstance(m, nn.Linear):
        return per_image * m.in_features
    return 0


def measure(model: nn.Module, input_size=None, name: str | None = None, in_channels: int = 3) -> Complexity:
    """Count ``model`` (any nn.Module) for one image; ``input_size`` defaults to its edge_meta."""
    meta = getattr(model, "edge_meta", {})
    h, w = parse_input_size(input_size if input_size is not None else meta.get("input_size", 224))
    device = next(model.parameters()).device
    layers: list[LayerStat] = []
    seen_params: set[int] = set()
    names = {id(m): n for n, m in model.named_modules()}
    hooks = []

    def hook(m, inputs, out):
        if not isinstance(out, torch.Tensor) or isinstance(m, _FREE):
            return
        own = 0
        if id(m) not in seen_params:
            seen_params.add(id(m))
            own = sum(p.numel() for p in m.parameters(recurse=False))
        weights = sum(p.numel() for p in m.parameters(recurse=False) if p.dim() > 1)
        in_elems = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        out_elems = out.numel()
        layers.append(LayerStat(names.get(id(m), "?"), _kind(m), list(out.shape[1:]), _macs(m, out), own, out_elems,
                                in_elems + out_elems + weights))

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, h, w, device=device))
    finally:
        for handle in hooks:
            handle.remove()
    mem = sum(layer.memory_access for layer in layers)
    return Complexity(
        model=name or meta.get("name", type(model).__name__), input_size=[h, w],
        num_classes=meta.get("num_classes", 0),
        macs=sum(layer.macs for layer in layers), params=sum(p.numel() for p in model.parameters()),
        activations=sum(layer.activations for layer in layers), memory_access=mem, memory_access_bytes=mem * 4,
        layers=layers)


def complexity(name: str, input_size=None, num_classes: int = 1000) -> Complexity:
    """Complexity of a registered model, built on the meta device (no weights, no arithmetic)."""
    spec = get_spec(name)
    size = parse_input_size(input_size if input_size is not None else spec.default_input_size)
    with torch.device("meta"):
        model = spec.build(num_classes=num_classes, stem=stem_for(size))
    model.edge_meta = {"name": spec.name, "input_size": list(size), "num_classes": num_classes}
    return measure(model.eval(), size)


def conv1x1_memory_access(c1: int, c2: int, h: int, w: int, groups: int = 1) -> int:
    """The v2 paper's closed form for a 1x1 (group) conv: hw(c1 + c2) + c1*c2/g."""
    return h * w * (c1 + c2) + c1 * c2 // groups


__all__ = ["Complexity", "LayerStat", "measure", "complexity", "conv1x1_memory_access", "conv_kind", "create_model"]
