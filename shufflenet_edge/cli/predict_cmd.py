"""`edge predict`, `edge predict fit`, `edge predict validate`: thin layers over ``shufflenet_edge.predict``."""
from __future__ import annotations

import shlex
import sys

import click

from ..export.formats import FORMATS, PRECISIONS
from ..tables import SECTION, Col, console, print_table, si, thousands
from .app import main
from .options import INPUT_SIZE, print_json


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.3f}"


def _share(v) -> str:
    return "" if v is None else f"{v:.0%}"


def _cols(unit: str) -> tuple:
    """The breakdown's columns; the cost column in the profile's unit (ms, or instructions per inference)."""
    cost = (Col("predicted", _ms, number=True) if unit == "ms"
            else Col("predicted", thousands, compact=si, number=True))
    return (Col("kernel"), Col("count", number=True, drop=2),
            Col("MACs M", lambda v: "" if v is None else f"{v / 1e6:,.1f}", number=True, drop=1),
            cost, Col("share", _share, number=True, drop=3))


def _cost(v, unit: str) -> str:
    return _ms(v) + " ms" if unit == "ms" else f"{thousands(v)} instructions"


def _print(r: dict, every_kernel: bool, wide: bool) -> None:
    unit = r["unit"]
    if every_kernel:
        rows = [(k["name"] + f" ({k['kind']})", 1, k["macs"], k["cost"], k["cost"] / r["predicted"]) for k in r["kernels"]]
    else:
        rows = [(kind, a["count"], a["macs"], a["cost"], a["share"]) for kind, a in r["by_kind"].items()]
    laws = r["laws"]
    flops = laws.get("flops") or {}
    rows += [SECTION, ("fixed cost per inference", None, None, r["fixed_cost"], r["fixed_cost"] / r["predicted"]),
             ("kernel predictor", len(r["kernels"]), r["macs"], r["predicted"], None),
             (f"FLOPs law a*MACs^{flops.get('k', float('nan')):.2f}", None, r["macs"], r["proxies"]["flops"], None),
             ("MACs + memory law", None, r["macs"], r["proxies"]["macs_memory"], None)]
    h, w = r["input_size"]
    out = console()
    what = "ms" if unit == "ms" else f"aarch64 instructions per inference ({r.get('target') or 'emulated'})"
    print_table(_cols(unit), rows, title=f"{r['model']} @ {h}x{w}: predicted {what}, {r['engine']['name']} "
                                         f"{r['engine'].get('version', '')} {r['precision']}, {r['threads']} thread(s)",
                wide=wide, out=out)
    out.print(f"profile: {r['profile'] or '(given as data)'}; proxies fitted on {laws.get('fitted_on') or '-'}",
              highlight=False)
    cal = r["calibration"]
    if cal.get("fitted"):
        out.print(f"calibrated on {cal['n']} composite networks: compute kernels x{cal['compute']:.2f}, memory-bound "
                  f"x{cal['memory']:.2f} (uncalibrated sum {_cost(r['uncalibrated'], unit)})", highlight=False)
    for note in r["notes"]:
        out.print(f"note: {note}", highlight=False)


@main.group("predict", invoke_without_command=True)
@click.option("--model", default=None, help="A registered model name, or an .onnx file (read from its graph).")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="H or HxW (default: the model's, 224; a file's own).")
@click.option("--device-profile", type=click.Path(dir_okay=False), default=None,
              help="A profile from `edge predict fit` [default: host_onnxruntime_fp32_t1.json in the user cache "
                   "(~/.cache/shufflenet-edge/predict), else the committed bench/results/predict/<ISA>/, this host's "
                   "ISA first].")
@click.option("--json", "as_json", is_flag=True, help="Print the prediction, every kernel and the proxies as JSON.")
@click.option("--per-kernel", "every_kernel", is_flag=True, help="One row per kernel instead of one per kernel kind.")
@click.option("--wide", is_flag=True, help="Show every column, however wide the table gets.")
@click.pass_context
def predict_group(ctx, model, input_size, device_profile, as_json, every_kernel, wide):
    """Predict latency from a device profile, without running the model (`edge predict --model M`);
    `fit` makes a profile, `validate` measures how good it is."""
    from ..errors import UsageError

    if ctx.invoked_subcommand is not None:
        if model or input_size or device_profile:
            raise UsageError(f"--model, --input-size and --device-profile go without a subcommand "
                             f"(`edge predict --model M`), not before `{ctx.invoked_subcommand}`")
        return
    if not model:
        raise UsageError("give --model NAME (or an .onnx file), or a subcommand: fit, validate (see `edge predict --help`)")
    from ..predict import predict

    r = predict(model, input_size, device_profile)
    if as_json:
        print_json(r)
        return
    _print(r, every_kernel, wide)


@predict_group.command("fit")
@click.option("--device", type=click.Choice(["host", "arm"]), default="host", show_default=True)
@click.option("--target", default=None, help="--device arm: the ARM target; qemu (the default, and the only one so "
                                              "far) counts instructions per inference instead of timing.")
@click.option("--format", "fmt", type=click.Choice(tuple(FORMATS)), default="onnx", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--budget-min", type=click.FloatRange(min=0, min_open=True), default=15.0, show_default=True,
              help="Minutes the whole fit may take (fractions allowed).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for <device>_<engine>_<precision>_t<threads>.json [default: ~/.cache/shufflenet-edge/"
                   "predict, or $EDGE_CACHE_DIR/predict]; the committed results live in bench/results/predict/.")
@click.option("--kernels", default=None, help="Only these kernel kinds (comma list), e.g. conv1x1,dwconv.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=0.3, show_default=True,
              help="Timing budget per micro-model.")
def fit_command(device, target, fmt, precision, threads, budget_min, out, kernels, max_seconds):
    """Time micro-models of every kernel kind the zoo uses and write a device profile (--device arm:
    count their instructions per inference under qemu)."""
    from ..predict import fit_profile

    path = fit_profile(device=device, target=target, fmt=fmt, precision=precision, threads=threads,
                       budget_min=budget_min, out=out, kinds=kernels, max_seconds=max_seconds,
                       command="edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    click.echo(f"profile: {path}")


@predict_group.command("validate")
@click.option("--device-profile", type=click.Path(dir_okay=False), default=None,
              help="The profile to validate [default: as `edge predict`].")
@click.option("--models", default=None, help="Comma list instead of the fixed validation set.")
@click.option("--sizes", default="224,480x640", show_default=True, help="Input sizes, comma list.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Timing budget per model (measured until stable, as `edge bench`).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for validate_<profile>.json and .png [default: the user cache's predict/].")
@click.option("--passes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Time the whole set this many times over (host): each model keeps its fastest pass, and "
                   "the result says how far the passes disagreed (the measurements' own noise).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def validate_command(device_profile, models, sizes, max_seconds, out, passes, as_json):
    """Predict and measure a fixed validation set; report +-5% / +-10% shares and RMSPE per predictor."""
    from ..models import parse_input_size
    from ..predict import validate
    from ..predict.validate import LABELS, VALIDATION_MODELS

    names = tuple(m.strip() for m in models.split(",") if m.strip()) if models else VALIDATION_MODELS
    size_list = tuple(parse_input_size(s.strip()) for s in sizes.split(",") if s.strip())
    res = validate(device_profile, names, size_list, out=out, max_seconds=max_seconds, passes=passes,
                   command="edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    if as_json:
        print_json(res)
        return
    cols = (Col("predictor"), Col("n", number=True), Col("within +-5%", _share, number=True),
            Col("within +-10%", _share, number=True), Col("RMSPE", _share, number=True))
    print_table(cols, [(LABELS[k], s["n"], s["within_5"], s["within_10"], s["rmspe"]) for k, s in res["summary"].items()],
                title=f"edge predict validate: {len(res['rows'])} measured, {len(res['failures'])} failed")
    rep = res.get("repeatability")
    if rep:
        click.echo(f"repeatability ({rep['passes']} passes): {_share(rep['within_5'])} of the models' passes agree "
                   f"within 5%, {_share(rep['within_10'])} within 10% (median spread {_share(rep['median_spread'])}, "
                   f"largest {_share(rep['max_spread'])})")
    acc = res["acceptance"]
    noise = acc.get("noise") or {"judgeable": True}
    unjudged = "" if noise["judgeable"] else (
        f" (but the measurements are too noisy to judge it: {'; '.join(noise['reasons'])}; fit and validate "
        "again with nothing else running)")
    click.echo(f"acceptance ({acc['goal']}): {'met' if acc['met'] else 'not met'}{unjudged}")
    click.echo(f"results: {res['path']}" + (f"; plot: {res['plot']}" if res.get("plot") else ""))
