"""`edge eval`: a thin layer over ``shufflenet_edge.evaluate.evaluate``."""
from __future__ import annotations

import click

from ..export.formats import SUFFIXES
from ..runtime.engines import ENGINES
from .app import main
from .options import INPUT_SIZE, print_json
from ..tables import Col, console, print_table

_CLASS_COLS = (Col("class"), Col("accuracy", lambda v: f"{v:.2%}", number=True), Col("n", number=True))


@main.command("eval")
@click.option("--model", default=None, help="Model name (optional with a project checkpoint, which names it).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="PyTorch checkpoint (.pt).")
@click.option("--artifact", type=click.Path(dir_okay=False), default=None,
              help=f"Exported {' or '.join(SUFFIXES)} file.")
@click.option("--data", default="digits", show_default=True,
              help="digits | npy:X.npy,Y.npy | cifar10:DIR | tinyimagenet:DIR | imagefolder:DIR")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--engine", default=None,
              help=f"Runtime for --artifact ({', '.join(n for n in ENGINES if n != 'torch')}).")
@click.option("--inference-precision", type=click.Choice(["f32", "bf16"]), default=None,
              help="OpenVINO only: f32 (pinned by default) or bf16 where the CPU has it.")
@click.option("--threads", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="CPU threads of the runtime (or of torch, for a checkpoint), as in every command.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (top1, top5, n, per_class, confusion, ...).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the confusion matrix as a PNG.")
@click.option("--wide", is_flag=True, help="Never fold long class names, however wide the table gets.")
@click.option("--input-size", type=INPUT_SIZE, default=None,
              help="H or HxW for an --artifact whose metadata (sidecar or embedded) does not give it.")
@click.option("--preprocessing", default=None,
              help="For an --artifact without metadata: digits | cifar10 | imagenet | JSON {\"mean\": [..], \"std\": [..]}.")
def eval_command(model, checkpoint, artifact, data, split, batch_size, engine, threads, as_json, plot,
                 inference_precision, wide=False, input_size=None, preprocessing=None):
    """Top-1/top-5, per-class accuracy and confusion of a checkpoint or exported file."""
    from ..errors import UsageError
    from ..evaluate import evaluate

    if artifact is None and checkpoint is None:
        raise UsageError("give --model NAME --checkpoint FILE, or --artifact FILE")
    if artifact is not None and checkpoint is not None:
        raise UsageError("give --checkpoint or --artifact, not both")
    r = evaluate(model=model, checkpoint=checkpoint, artifact=artifact, data=data, split=split, batch_size=batch_size,
                 engine=engine, threads=threads, plot=plot, input_size=input_size, preprocessing=preprocessing,
                 inference_precision=inference_precision)
    if as_json:
        print_json(r)
        return
    src = r.get("artifact") or r.get("checkpoint")
    out = console()
    say = lambda text: out.print(text, highlight=False, markup=False)  # wrapped at the terminal's width
    say(f"{src} on {r['data']} ({r['split']}, n={r['n']}): top-1 {r['top1']:.2%}  top-5 {r['top5']:.2%}")
    if len(r["per_class"]) <= 50:
        print_table(_CLASS_COLS, [(name, v["accuracy"], v["n"]) for name, v in r["per_class"].items()],
                    title="per-class accuracy", wide=wide, out=out)
    if r["most_confused"]:
        say("most confused (actual -> predicted): " +
            ", ".join(f"{p['actual']} -> {p['predicted']} ({p['count']})" for p in r["most_confused"]))
    for note in r.get("notes", []):
        say(f"note: {note}")
    if plot:
        say(f"confusion matrix: {r['plot']}")
