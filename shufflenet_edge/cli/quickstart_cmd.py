"""`edge quickstart`: the README's main job on built-in defaults."""
from __future__ import annotations

import click

from . import main


@main.command("quickstart")
@click.option("--model", default="v1_g3", show_default=True, help="The model to walk through.")
@click.pass_context
def quickstart_command(ctx, model):
    """Print the model table, then MODEL's complexity."""
    from .models_cmd import info_command, models_command

    click.echo("== 1/2 model zoo ==")
    ctx.invoke(models_command)
    click.echo(f"\n== 2/2 complexity of {model} ==")
    ctx.invoke(info_command, model=model)
