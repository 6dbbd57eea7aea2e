"""The device profile: everything a prediction needs, as data.

One JSON file per (device, engine, precision, threads), named
``<device>_<engine>_<precision>_t<threads>.json``. It holds the machine's identity, the engine
and package versions, the fixed per-inference cost, every measured point of every kernel kind
(with its stability verdict, its phase and, for held-out points, the fit's error on it), the
fusion rules with the timings that decided them, the composite networks' timings and the two
proxy laws. The regressors are not stored: they are refitted from the points when the profile is
loaded (deterministic, a second or so), so a profile is plain data and never unpickled code.

Where profiles live: ``edge predict fit`` writes to ``--out`` (default: the user cache,
``$EDGE_CACHE_DIR/predict`` or ``~/.cache/shufflenet-edge/predict``); a prediction without
``--device-profile`` takes the matching file from there, else from the repository's committed
``bench/results/predict/`` (host profiles in a folder per ISA, this host's first: ``committed_folders``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import UsageError
from .kernels import KERNEL_KINDS

SCHEMA = "shufflenet-edge/predict-profile"
VERSION = 1
COST_UNITS = ("ms", "instructions")
FIX = "make a new one with `edge predict fit`"
# Share of disturbed timings (``profiling.noisy_share``) above which a fit, every prediction from it and
# every validation of it say so. Measured on the 2-core VMs: fits in quiet windows had 1.3-3.2%; fits whose
# validations missed widely had 5.3% (56% within +-10%) and 10% (62%, refitted in a noisy window with
# a canary 15-50% apart within half a minute).
NOISY_WARN = 0.05


def fitted_busy(prof: dict) -> bool:
    """Whether ``prof`` was timed on a busy machine (over ``NOISY_WARN`` of its timings disturbed). Never for
    counted instructions: they do not depend on the load, and a disagreement there is the engine's."""
    return prof.get("cost_unit", "ms") == "ms" and (prof.get("noisy") or {}).get("share", 0.0) > NOISY_WARN


def file_name(device: str, engine: str, precision: str, threads: int) -> str:
    return f"{device}_{engine}_{precision}_t{int(threads)}.json"


def user_dir() -> Path:
    from ..user_cache import cache_root

    return cache_root() / "predict"


def committed_dir() -> Path:
    """``bench/results/predict/`` of the source tree this package runs from (absent in a wheel)."""
    return Path(__file__).resolve().parents[2] / "bench" / "results" / "predict"


def committed_folders(device: str = "host") -> list[Path]:
    """Where committed profiles of ``device`` may be, best first. Host profiles are kept per ISA
    (``bench/results/predict/<isa tag>/``: a profile is one machine's, and an AVX-512 host runs other
    kernels, in other layouts, than an AVX2 one): this host's ISA first, then the others; emulated
    ARM ones at the top."""
    root = committed_dir()
    if device != "host":
        return [root]
    from ..runtime.timing import isa_features, isa_tag

    own = root / isa_tag(isa_features())
    others = sorted(p for p in root.glob("*/") if p.is_dir() and p != own) if root.is_dir() else []
    return [own, *others, root]


def find(device: str = "host", engine: str = "onnxruntime", precision: str = "fp32", threads: int = 1) -> Path | None:
    name = file_name(device, engine, precision, threads)
    for folder in (user_dir(), *committed_folders(device)):
        if (folder / name).is_file():
            return folder / name
    return None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def problem(p) -> str | None:
    """Why ``p`` is not a usable profile (None when it is): the first bad field, named."""
    if not isinstance(p, dict):
        return "not a JSON object"
    if p.get("schema") != SCHEMA:
        return f"schema is {json.dumps(p.get('schema'))[:60]}, not {SCHEMA!r}"
    if p.get("version") != VERSION:
        return f"version {json.dumps(p.get('version'))[:20]} (this toolkit reads version {VERSION})"
    eng = p.get("engine")
    if not (isinstance(eng, dict) and isinstance(eng.get("name"), str)):
        return "engine must be an object with a name"
    if not isinstance(p.get("precision"), str) or not _count(p.get("threads")):
        return "precision must be a string and threads an integer >= 1"
    if p.get("cost_unit") not in COST_UNITS:
        return f"cost_unit must be one of {', '.join(COST_UNITS)}"
    if not (isinstance(p.get("overhead"), dict) and _finite(p["overhead"].get("cost"))):
        return "overhead.cost must be a number"
    kernels = p.get("kernels")
    if not isinstance(kernels, dict):
        return "kernels must be an object (kind -> points)"
    for kind, entry in kernels.items():
        if kind not in KERNEL_KINDS:
            return f"unknown kernel kind {kind!r}"
        pts = entry.get("points") if isinstance(entry, dict) else None
        if not isinstance(pts, list):
            return f"kernels.{kind}.points must be a list"
        for i, pt in enumerate(pts):
            spec = pt.get("spec") if isinstance(pt, dict) else None
            if not (isinstance(spec, dict) and spec.get("kind") == kind
                    and all(_count(spec.get(k)) for k in ("cin", "cout", "h", "w")) and _finite(pt.get("cost"))):
                return f"kernels.{kind}.points[{i}] needs a spec (kind {kind}, cin, cout, h, w >= 1) and a cost"
    rules = p.get("fusion")
    if not isinstance(rules, list) or not all(
            isinstance(r, dict) and isinstance(r.get("first"), str) and isinstance(r.get("second"), str)
            and _finite(r.get("saving")) and isinstance(r.get("fused"), bool) for r in rules):
        return "fusion must be a list of {first, second, saving, fused}"
    if p.get("proxies") is not None and not isinstance(p["proxies"], dict):
        return "proxies must be an object"
    cal = p.get("calibration")
    if cal is not None and not (isinstance(cal, dict) and _finite(cal.get("compute")) and _finite(cal.get("memory"))):
        return "calibration must be an object with numbers compute and memory"
    return None


def nchwc_block(prof: dict) -> int:
    """The NCHWc block of the engine a profile was fitted on (``kernels.blocked``): its own record, else
    the AVX2 block for a timed profile (fitted before the block was recorded, all on AVX2 hosts) and
    none for counts (qemu's ARM build has no NCHWc)."""
    from .kernels import NCHWC_BLOCK

    block = prof.get("nchwc_block")
    if isinstance(block, int) and not isinstance(block, bool) and block >= 0:
        return block
    return NCHWC_BLOCK if prof.get("cost_unit", "ms") == "ms" else 0


def load(path) -> dict:
    """The profile in ``path``, or one UsageError line naming the file, the problem and the fix."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"device profile {path} is a folder: give the JSON file `edge predict fit` wrote in it")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"device profile not found: {path} ({FIX}, or give another --device-profile)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read device profile {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        raise UsageError(f"bad device profile {path}: not JSON ({str(exc)[:80]}); {FIX}") from None
    why = problem(data)
    if why:
        raise UsageError(f"bad device profile {path}: {why}; {FIX}")
    data["_path"] = str(path)
    return data


def save(profile: dict, out) -> Path:
    from ..io_utils import check_writable, write_json

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out}: {exc.strerror}") from None
    check_writable(out, what=f"--out {out}")
    path = out / file_name(profile["device"], profile["engine"]["name"], profile["precision"], profile["threads"])
    why = problem(profile)
    if why:  # a bug, not the user's: never write a file this toolkit would refuse to read
        raise RuntimeError(f"refusing to write an unreadable profile: {why}")
    return write_json(path, {k: v for k, v in profile.items() if not k.startswith("_")})


def resolve(profile=None, device: str = "host", engine: str = "onnxruntime", precision: str = "fp32",
            threads: int = 1) -> dict:
    """A loaded profile: ``profile`` itself (a dict or a path), else the default matching file."""
    if isinstance(profile, dict):
        why = problem(profile)
        if why:
            raise UsageError(f"bad device profile: {why}; {FIX}")
        return profile
    if profile is not None:
        return load(profile)
    found = find(device, engine, precision, threads)
    if found is None:
        name = file_name(device, engine, precision, threads)
        raise UsageError(f"no device profile {name} in {user_dir()} or {committed_dir()}: run `edge predict fit` "
                         "first (about 15 minutes), or give --device-profile FILE")
    return load(found)
