"""`edge quickstart`: the README's main job on built-in defaults."""
from __future__ import annotations

import click

from . import main


@main.command("quickstart")
@click.option("--model", default="v1_g3", show_default=True, help="The model to walk through.")
@click.option("--out", type=click.Path(file_okay=False), default="exports", show_default=True, help="Where the export goes.")
@click.pass_context
def quickstart_command(ctx, model, out):
    """Print the model table, then MODEL's complexity, then export it to TFLite."""
    from .export_cmd import export_command
    from .models_cmd import info_command, models_command

    click.echo("== 1/3 model zoo ==")
    ctx.invoke(models_command)
    click.echo(f"\n== 2/3 complexity of {model} ==")
    ctx.invoke(info_command, model=model)
    click.echo(f"\n== 3/3 export {model} to TFLite (checked against PyTorch in ai-edge-litert) ==")
    ctx.invoke(export_command, model=model, fmt="tflite", out=out)
