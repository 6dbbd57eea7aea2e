"""`edge quickstart`: the README's main job on built-in defaults."""
from __future__ import annotations

import click

from .app import main


@main.command("quickstart")
@click.option("--model", default="v1_g3", show_default=True, help="The model to walk through.")
@click.option("--out", type=click.Path(file_okay=False), default="exports", show_default=True, help="Where the export goes.")
@click.pass_context
def quickstart_command(ctx, model, out):
    """Print the model table, then MODEL's complexity, export it to TFLite and benchmark that file."""
    from .bench_cmd import bench_command
    from .export_cmd import export_command
    from .models_cmd import info_command, models_command

    click.echo("== 1/4 model zoo ==")
    ctx.invoke(models_command)
    click.echo(f"\n== 2/4 complexity of {model} ==")
    ctx.invoke(info_command, model=model)
    click.echo(f"\n== 3/4 export {model} to TFLite (checked against PyTorch in ai-edge-litert) ==")
    exported = ctx.invoke(export_command, model=model, fmt="tflite", out=out)
    click.echo("\n== 4/4 benchmark the exported file on this host (1 thread) ==")
    ctx.invoke(bench_command, artifact=str(exported.path), runs=50, warmup=5, rounds=5, threads="1")
