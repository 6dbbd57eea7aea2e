"""`edge export`: a thin layer over ``shufflenet_edge.export.export``."""
from __future__ import annotations

import click

from ..export.formats import FORMATS, INT8_POLICIES, LAYOUTS, PRECISIONS, WEIGHT_GRANULARITIES
from .app import main
from .options import INPUT_SIZE, print_json

# --batch and its help, from the table: which formats take a dynamic batch
_DYNAMIC = [f.name for f in FORMATS.values() if f.dynamic_batch]


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


@main.command("export")
@click.option("--model", default=None, help="Model name (optional with a project checkpoint, which names it).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="PyTorch checkpoint; without it, random weights.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), required=True,
              help=", ".join(f"{f.name} ({f.runtime})" for f in FORMATS.values()) + ".")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="fp16; int8 = static, calibrated (TFLite: int8 input/output); dynamic = int8 weights only.")
@click.option("--calib", default=None, help="Calibration data for int8: digits | npy:FILE | imagefolder:DIR | cifar10:DIR | tinyimagenet:DIR")
@click.option("--calib-size", type=click.IntRange(min=1), default=256, show_default=True, help="Calibration images.")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="H or HxW (default: the checkpoint's or the model's).")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Output classes (default: checkpoint's or 1000).")
@click.option("--batch", type=click.Choice(["1", "dynamic"]), default="1", show_default=True,
              help=f"dynamic: {', '.join(_DYNAMIC)} only.")
@click.option("--layout", type=click.Choice(LAYOUTS), default="nchw", show_default=True, help="Input layout of the file.")
@click.option("--out", type=click.Path(file_okay=False), default="exports", show_default=True, help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (path, size_bytes, seconds, parity, metadata ...).")
@click.option("--verbose", is_flag=True, help="Show the converters' own logs.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file of the same name (never done otherwise).")
@click.option("--name", default=None, help="File name stem instead of <name>_<H>[xW]_<precision>[_nhwc].")
@click.option("--keep-fp32", "keep_fp32", default=None, metavar="LAYER[,LAYER...]|auto",
              help="int8 (ONNX): leave these layers float (names as `edge quantize-report` / `edge info` print them); "
                   "auto: the most sensitive ones, as few as keep the top-1 drop on --data within --max-drop.")
@click.option("--max-drop", type=float, default=None, metavar="POINTS",
              help="With --keep-fp32 auto: the largest top-1 drop (points) accepted against fp32 [default: 1.0].")
@click.option("--data", default=None, help="With --keep-fp32 auto: labelled data whose test split the drop is measured on.")
@click.option("--int8-policy", type=click.Choice(INT8_POLICIES), default="fast", show_default=True,
              help="int8 (ONNX): fast leaves the layer kinds slower in int8 on onnxruntime (grouped 1x1 convs) float; "
                   "all quantizes them too.")
@click.option("--weight-granularity", type=click.Choice(WEIGHT_GRANULARITIES), default=WEIGHT_GRANULARITIES[0],
              show_default=True,
              help="int8 (" + ", ".join(f.name for f in FORMATS.values() if len(f.int8_granularities) > 1) + "): one "
                   "weight scale per output channel, or one per weight tensor (coarser: for runtimes that need it).")
def export_command(model, checkpoint, fmt, precision, calib, calib_size, input_size, num_classes, batch, layout, out,
                   as_json, verbose, overwrite, name, keep_fp32, max_drop, data, int8_policy, weight_granularity):
    """Export MODEL to ONNX or TFLite and check it against PyTorch in its own runtime.

    Writes OUT/<name>_<H>[xW]_<precision>[_nhwc].<suffix> (the format's files) plus a <file>.json sidecar. An
    existing file is never replaced without --overwrite (one holding this same export is up to date).
    """
    from ..errors import UsageError
    from ..export import export

    if model is None and checkpoint is None:
        raise UsageError("give --model NAME (and optionally --checkpoint FILE)")
    r = export(model=model, checkpoint=checkpoint, format=fmt, precision=precision, calib=calib, calib_size=calib_size,
               input_size=input_size, num_classes=num_classes, batch=batch, layout=layout, out=out, quiet=False,
               verbose=verbose, overwrite=overwrite, name=name, keep_fp32=keep_fp32, max_drop=max_drop, data=data,
               int8_policy=int8_policy, weight_granularity=weight_granularity)
    if as_json:
        print_json(r.to_dict())
        return r
    p = r.parity
    trained = "trained" if r.metadata["trained"] else "untrained"
    if r.up_to_date:
        click.echo(f"{r.path} is up to date (same model, checkpoint and settings); --overwrite exports it again")
    else:
        click.echo(f"{r.path}  {_size(r.size_bytes)}  {r.format} {r.precision}  {r.seconds:.1f} s  ({trained})")
    inputs = "calibration images" if (r.metadata.get("calibration") or calib) else "random inputs"
    click.echo(f"parity vs PyTorch ({p['engine']}, {p['n']} {inputs}): max abs diff {p['max_abs_diff']:.2e}  "
               f"cosine {p['cosine']:.6f}  top-1 agreement {p['top1_agreement']:.0%}"
               + (" (on random inputs, not accuracy: see edge eval)" if inputs == "random inputs"
                  and r.precision != "fp32" else ""))
    kept = r.metadata.get("kept_fp32")
    if kept:
        click.echo(f"kept float ({len(kept)}): {', '.join(kept[:6])}{' ...' if len(kept) > 6 else ''}")
    auto = r.metadata.get("keep_fp32_auto")
    if auto:
        click.echo(f"--keep-fp32 auto on {auto['data']} ({auto['images']} test images): top-1 fp32 {auto['fp32_top1']:.2%}, "
                   f"int8 {auto['int8_top1']:.2%} (drop {auto['drop_pts']:.2f} <= {auto['max_drop_pts']:g} points; "
                   f"{auto['int8_top1_plain']:.2%} before any layer was kept float), {len(auto['kept_fp32'])} of "
                   f"{auto['ranked_layers']} ranked layers float")
    if r.metadata.get("delegation"):  # .pte: which ops ExecuTorch runs outside XNNPACK
        from ..export.pte_export import delegation_line

        click.echo(delegation_line(r.metadata["delegation"]))
    iq = r.metadata.get("input_quantization")
    if iq:
        zp = iq["zero_point"]
        click.echo(f"input is {iq['dtype']}: q = round(x / {iq['scale']:.6g}) {'-' if zp < 0 else '+'} {abs(zp)} "
                   "(shufflenet_edge.runtime.open_engine does this for you)")
    return r  # the result, for commands that chain on it (quickstart)
