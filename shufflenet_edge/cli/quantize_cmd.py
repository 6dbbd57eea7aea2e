"""`edge quantize-report`: a thin layer over ``shufflenet_edge.quant.sensitivity``."""
from __future__ import annotations

import click

from ..quant.sensitivity import REPORT_FORMATS
from .app import main
from .options import print_json


@main.command("quantize-report")
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True, help="Trained PyTorch checkpoint.")
@click.option("--model", default=None, help="Model name (optional: the checkpoint names it).")
@click.option("--format", "fmt", type=click.Choice(list(REPORT_FORMATS)), default="onnx", show_default=True,
              help="File format whose int8 recipe is analysed.")
@click.option("--calib", required=True, help="Calibration data: digits | npy:FILE | imagefolder:DIR | cifar10:DIR | tinyimagenet:DIR")
@click.option("--calib-size", type=click.IntRange(min=1), default=64, show_default=True, help="Calibration images.")
@click.option("--images", type=click.IntRange(min=1), default=32, show_default=True,
              help="Calibration images the layer errors are measured on.")
@click.option("--data", default=None, help="Also report fp32 and int8 top-1 on this data's test split.")
@click.option("--out", type=click.Path(file_okay=False), default="quantize_report", show_default=True,
              help="Directory for quantize_report.json, .md and .png.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rows printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def quantize_report_command(checkpoint, model, fmt, calib, calib_size, images, data, out, top, as_json):
    """Rank the layers of CHECKPOINT's int8 file by how much quantization hurts them.

    Per quantized layer: SQNR (dB) and cosine of its int8 output against fp32, quantized alone
    and inside the fully quantized network (TFLite: inside it only, ranked by the dB each layer
    loses); worst first. Writes a table, JSON and a bar chart.
    """
    from ..quant.sensitivity import markdown, quantize_report

    r = quantize_report(checkpoint, format=fmt, calib=calib, calib_size=calib_size, data=data, n_images=images,
                        out=out, model=model)
    if as_json:
        print_json(r)
        return
    click.echo(markdown(r, top=top), nl=False)
    click.echo(f"wrote {out}/quantize_report.json, .md, .png")
