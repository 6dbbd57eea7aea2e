"""`edge models` and `edge info`."""
from __future__ import annotations

import click

from .app import main
from .options import INPUT_SIZE, print_json
from ..tables import SECTION, Col, console, print_table, si, thousands


def _mega(x) -> str:
    return f"{x / 1e6:,.1f}"


# name and the numbers stay; the paper's source goes first, then family, on a narrow terminal
_MODEL_COLS = (Col("name"), Col("family", drop=2), Col("params M", _mega, number=True), Col("MACs M", _mega, number=True),
               Col("paper M", lambda v: f"{v:g}", number=True), Col("paper err %", lambda v: f"{v:.1f}", number=True),
               Col("source", drop=3))
_LAYER_COLS = (Col("layer"), Col("kind", drop=1), Col("output", drop=2),
               Col("MACs", thousands, si, number=True), Col("params", thousands, si, number=True),
               Col("activations", thousands, si, number=True, drop=3), Col("mem. access", thousands, si, number=True))


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--wide", is_flag=True, help="Show every column, however wide the table gets.")
def models_command(as_json, wide=False):
    """List every registered model with our MACs beside the paper's figures."""
    from ..zoo import model_table
    from ..models import UNBUILDABLE

    rows = model_table()
    if as_json:
        print_json(rows)
        return
    print_table(_MODEL_COLS, [(r["name"], r["family"], r["params"], r["macs"], r["paper_mflops"], r["paper_top1_err"],
                               r["paper_source"]) for r in rows],
                title="shufflenet-edge models (224x224, 1000 classes; paper M = MFLOPs)", wide=wide)
    for name, why in UNBUILDABLE.items():
        click.echo(f"not registered: {name}: {why}")


@main.command("info")
@click.argument("model")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="Input size H or HxW (default: the model's, 224).")
@click.option("--num-classes", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the per-layer table and totals as JSON.")
@click.option("--wide", is_flag=True, help="Show every column with exact counts, however wide the table gets.")
def info_command(model, input_size, num_classes, as_json, wide=False):
    """Per-layer complexity of MODEL: MACs, params, activations, memory access cost."""
    from ..complexity import complexity
    from ..models import get_spec, stem_for

    spec = get_spec(model)
    c = complexity(model, input_size, num_classes)
    stem = stem_for(c.input_size)
    if as_json:
        d = c.to_dict()
        d.update(stem=stem, paper=spec.paper.__dict__, config=spec.config)
        print_json(d)
        return
    rows = [(layer.name, layer.kind, "x".join(map(str, layer.out_shape)), layer.macs, layer.params, layer.activations,
             layer.memory_access) for layer in c.layers]
    rows += [SECTION, ("total", "", "", c.macs, c.params, c.activations, c.memory_access)]
    out = console()
    print_table(_LAYER_COLS, rows, title=f"{spec.name} @ {c.input_size[0]}x{c.input_size[1]} ({stem} stem), "
                                         f"{num_classes} classes", wide=wide, out=out)
    paper = spec.paper
    at = "" if list(c.input_size) == [224, 224] and num_classes == 1000 else " at 224x224, 1000 classes"
    out.print(f"MACs {c.macs / 1e6:.1f} M (paper {paper.mflops if paper.mflops is not None else '-'} MFLOPs{at}, "
              f"{paper.source or 'no paper figure'}); params {c.params / 1e6:.3f} M; "
              f"memory access {c.memory_access_bytes / 2**20:.1f} MiB at fp32", highlight=False)
    if spec.config:
        out.print("config: " + ", ".join(f"{k}={v}" for k, v in spec.config.items()), highlight=False)
