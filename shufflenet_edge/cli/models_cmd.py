"""`edge models` and `edge info`."""
from __future__ import annotations

import click

from .app import main
from .options import INPUT_SIZE, console, print_json


def _m(x) -> str:
    return "-" if x is None else f"{x / 1e6:,.1f}"


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models_command(as_json):
    """List every registered model with our MACs beside the paper's figures."""
    from ..zoo import model_table
    from ..models import UNBUILDABLE

    rows = model_table()
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="shufflenet-edge models (224x224, 1000 classes)")
    for col, kw in (("name", {}), ("family", {}), ("params (M)", {"justify": "right"}), ("MACs (M)", {"justify": "right"}),
                    ("paper MFLOPs", {"justify": "right"}), ("paper top-1 err %", {"justify": "right"}), ("source", {})):
        table.add_column(col, **kw)
    for r in rows:
        table.add_row(r["name"], r["family"], _m(r["params"]), _m(r["macs"]),
                      "-" if r["paper_mflops"] is None else f"{r['paper_mflops']:g}",
                      "-" if r["paper_top1_err"] is None else f"{r['paper_top1_err']:.1f}", r["paper_source"])
    console().print(table)
    for name, why in UNBUILDABLE.items():
        click.echo(f"not registered: {name}: {why}")


@main.command("info")
@click.argument("model")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="Input size H or HxW (default: the model's, 224).")
@click.option("--num-classes", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the per-layer table and totals as JSON.")
def info_command(model, input_size, num_classes, as_json):
    """Per-layer complexity of MODEL: MACs, params, activations, memory access cost."""
    from ..complexity import complexity
    from ..models import get_spec, layout_for

    spec = get_spec(model)
    c = complexity(model, input_size, num_classes)
    if as_json:
        d = c.to_dict()
        d.update(layout=layout_for(c.input_size), paper=spec.paper.__dict__, config=spec.config)
        print_json(d)
        return
    from rich.table import Table

    table = Table(title=f"{spec.name} @ {c.input_size[0]}x{c.input_size[1]} ({layout_for(c.input_size)} layout), "
                        f"{num_classes} classes")
    for col in ("layer", "kind", "output", "MACs", "params", "activations", "mem. access"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "output") else "right")
    for layer in c.layers:
        table.add_row(layer.name, layer.kind, "x".join(map(str, layer.out_shape)), f"{layer.macs:,}", f"{layer.params:,}",
                      f"{layer.activations:,}", f"{layer.memory_access:,}")
    table.add_section()
    table.add_row("total", "", "", f"{c.macs:,}", f"{c.params:,}", f"{c.activations:,}", f"{c.memory_access:,}")
    out = console()
    out.print(table)
    paper = spec.paper
    out.print(f"MACs {c.macs / 1e6:.1f} M (paper {paper.mflops if paper.mflops is not None else '-'} MFLOPs, "
                  f"{paper.source or 'no paper figure'}); params {c.params / 1e6:.3f} M; "
                  f"memory access {c.memory_access_bytes / 2**20:.1f} MiB at fp32")
    if spec.config:
        out.print("config: " + ", ".join(f"{k}={v}" for k, v in spec.config.items()))
