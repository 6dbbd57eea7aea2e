"""One registry: model name -> builder + the papers' metadata (as torchvision's weight ``meta``).

Paper figures are read from ``shared/reference/papers.md`` and the papers' tables; ``source``
names the table so a reader can check them.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from torch import nn

from ..errors import UsageError
from . import shufflenet_v1 as v1
from . import shufflenet_v2 as v2
from .baselines import MOBILENET_V1_WIDTHS, AlexNet, MobileNetV1, mobilenet_v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PaperMeta:
    mflops: float | None = None  # multiply-adds, millions, at 224x224 and 1000 classes
    params_m: float | None = None
    top1_err: float | None = None  # ImageNet top-1 error, %
    source: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    paper: PaperMeta = PaperMeta()
    aliases: tuple[str, ...] = ()
    default_input_size: int = 224
    config: dict = field(default_factory=dict)  # e.g. groups/scale, for display

    def build(self, num_classes: int, stem: str) -> nn.Module:
        return self.builder(num_classes=num_classes, stem=stem)


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
UNBUILDABLE: dict[str, str] = {}  # name -> why it is not registered


def register(spec: ModelSpec) -> None:
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name


def _fmt_scale(s: float) -> str:
    text = f"{s:g}"  # 0.25 -> "0.25", 0.75 -> "0.75", 1 -> "1.0"
    return text if "." in text else text + ".0"


# --- ShuffleNet v1 ---------------------------------------------------------------------------
# Table 1 complexity per g at 1x; Table 2 top-1 error at 1x/0.5x/0.25x (0.5x ~38, 0.25x ~13 MFLOPs).
_V1_T1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
_V1_T2_ERR = {1: (33.6, 45.1, 57.1), 2: (32.7, 44.4, 56.8), 3: (32.6, 43.2, 55.0), 4: (32.8, 41.6, 54.2), 8: (32.4, 42.3, 52.7)}
# megvii's official g=3 table (README) and the paper's Table 8 for 2x.
_V1_G3_EXTRA = {0.5: PaperMeta(38, 0.7, 43.2, "v1 Table 2/8; params megvii README"),
                1.0: PaperMeta(137, 1.9, 32.6, "v1 Table 1/2; params megvii README"),
                1.5: PaperMeta(292, 3.4, None, "megvii README"),
                2.0: PaperMeta(524, 5.4, 26.3, "v1 Table 8; params megvii README")}


def _v1_paper(g: int, s: float) -> PaperMeta:
    if g == 3 and s in _V1_G3_EXTRA:
        return _V1_G3_EXTRA[s]
    if s == 1.0:
        return PaperMeta(_V1_T1_MFLOPS[g], None, _V1_T2_ERR[g][0], "v1 Table 1/2")
    if s == 0.5:
        return PaperMeta(38, None, _V1_T2_ERR[g][1], "v1 Table 2")
    if s == 0.25:
        return PaperMeta(13, None, _V1_T2_ERR[g][2], "v1 Table 2")
    return PaperMeta(source="not in the paper")


for _g in v1.GROUPS:
    for _s in v1.SCALES:
        _name = f"v1_g{_g}" if _s == 1.0 else f"v1_g{_g}_{_fmt_scale(_s)}x"
        try:
            v1.check_plan(v1.channel_plan(_g, _s), _g)
        except UsageError as exc:
            UNBUILDABLE[_name] = str(exc)
            continue
        register(ModelSpec(
            _name, "shufflenet_v1", partial(v1.ShuffleNetV1, groups=_g, scale=_s), _v1_paper(_g, _s),
            aliases=(f"v1_g{_g}_1.0x", f"v1_g{_g}_1x") if _s == 1.0 else (),
            config={"groups": _g, "scale": _s, "channels": v1.channel_plan(_g, _s)}))

# --- ShuffleNet v2 (Table 5 complexity/params, Table 8 top-1 error) --------------------------
_V2_PAPER = {0.5: (41, 1.4, 39.7), 1.0: (146, 2.3, 30.6), 1.5: (299, 3.5, 27.4), 2.0: (591, 7.4, 25.1)}
for _s, (_mf, _pm, _err) in _V2_PAPER.items():
    register(ModelSpec(
        f"v2_{_fmt_scale(_s)}x", "shufflenet_v2", partial(v2.ShuffleNetV2, scale=_s), PaperMeta(_mf, _pm, _err, "v2 Table 5/8"),
        # torchvision's builder name is an alias: the state_dict is the same
        aliases=(("v2", "v2_1x") if _s == 1.0 else ()) + (f"shufflenet_v2_x{_fmt_scale(_s).replace('.', '_')}",),
        config={"scale": _s, "channels": list(v2.STAGE_CHANNELS[_s])}))

# --- Baselines -------------------------------------------------------------------------------
_MBV1_PAPER = {1.0: (569, 4.2, 29.4), 0.75: (325, 2.6, 31.6), 0.5: (149, 1.3, 36.3), 0.25: (41, 0.5, 49.4)}
for _w in MOBILENET_V1_WIDTHS:
    _mf, _pm, _err = _MBV1_PAPER[_w]
    register(ModelSpec(
        f"mobilenet_v1_{_fmt_scale(_w)}x", "mobilenet_v1", partial(MobileNetV1, width=_w),
        PaperMeta(_mf, _pm, _err, "MobileNet v1 Table 6/7"), config={"width": _w}))
register(ModelSpec("mobilenet_v2", "mobilenet_v2", mobilenet_v2, PaperMeta(300, 3.4, 28.0, "MobileNet v2 Table 4"),
                   aliases=("mobilenet_v2_1.0x",)))
register(ModelSpec("alexnet", "alexnet", AlexNet, PaperMeta(720, 61.0, 42.8, "v1 Table 8 (two-tower original)"),
                   config={"variant": "one-tower (Krizhevsky 2014, torchvision)"}))


def _spelling(name: str) -> str:
    """How users spell our names, brought to our spelling: ``ShuffleNetV2_x1_0`` -> ``v2_1.0x``,
    ``shufflenet_v1_g3`` -> ``v1_g3``, ``mobilenetv2`` -> ``mobilenet_v2``."""
    s = re.sub(r"[\s\-]+", "_", name.strip().lower())
    s = re.sub(r"^shuffle_?net_?", "", s)  # the family's own name: ours are v1_* and v2_*
    s = re.sub(r"([a-z])_?v(\d)", r"\1_v\2", s)  # mobilenetv2 -> mobilenet_v2
    s = re.sub(r"(?:^|_)x(\d+)(?:[_.](\d+))?(?=_|$)", lambda m: f"_{m[1]}.{m[2] or 0}x", s)  # _x1_0 -> _1.0x
    s = re.sub(r"(?:^|_)(\d+)x(?=_|$)", lambda m: f"_{m[1]}.0x", s)  # _2x -> _2.0x
    s = re.sub(r"_?g(\d)", r"_g\1", s)  # v1g3 -> v1_g3
    return re.sub(r"_+", "_", s).strip("_")


def _lookup(name: str) -> str | None:
    if name in _REGISTRY:
        return name
    return _ALIASES.get(name)


_FAMILY_DEFAULT = {"v1": "v1_g3", "v2": "v2_1.0x"}  # a family named without groups/scale: the papers' main model


def suggestions(name: str, n: int = 3) -> list[str]:
    """Registered names a mistyped ``name`` most likely meant (family and separators understood)."""
    spelled = _spelling(name)
    for guess in (spelled, _FAMILY_DEFAULT.get(spelled, ""), spelled + "_1.0x"):
        found = _lookup(guess)
        if found is not None:
            return [found]
    pool = {**{a: target for a, target in _ALIASES.items()}, **{k: k for k in _REGISTRY}}
    close = difflib.get_close_matches(spelled, list(pool), n=n * 2, cutoff=0.5)
    return list(dict.fromkeys(pool[c] for c in close))[:n]


def resolve_name(name: str) -> str:
    found = _lookup(name)
    if found is not None:
        return found
    if name in UNBUILDABLE:
        raise UsageError(f"model '{name}' cannot be built: {UNBUILDABLE[name]}")
    close = suggestions(name)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see `edge models`)"
    raise UsageError(f"unknown model '{name}'{hint}")


def get_spec(name: str) -> ModelSpec:
    return _REGISTRY[resolve_name(name)]


def list_models() -> list[str]:
    return list(_REGISTRY)


def model_specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())
