"""`edge train`: a thin layer over ``shufflenet_edge.train.train``."""
from __future__ import annotations

import click

from .app import main
from .options import INPUT_SIZE, print_json


@main.command("train")
@click.option("--model", required=True, help="Model name (see `edge models`), e.g. v1_g3 or v2_1.0x.")
@click.option("--data", default="digits", show_default=True,
              help="digits | npy:X.npy,Y.npy | cifar10:DIR | tinyimagenet:DIR | imagefolder:DIR")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Default: the data's recipe.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=float, default=None)
@click.option("--momentum", type=float, default=None)
@click.option("--weight-decay", type=float, default=None)
@click.option("--schedule", type=click.Choice(["step", "cosine", "linear"]), default=None)
@click.option("--label-smoothing", type=float, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--deterministic", is_flag=True, help="Deterministic kernels: a resumed run ends bit-identical.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--threads", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="torch CPU threads (as in every command: 1 unless you ask for more).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory (default runs/<model>_<data>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="Override the data's input size (H or HxW).")
@click.option("--subset", type=click.IntRange(min=2), default=None, help="Train on this many training images only.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def train_command(model, data, epochs, batch_size, lr, momentum, weight_decay, schedule, label_smoothing, seed,
                  deterministic, workers, threads, out, resume, input_size, subset, as_json):
    """Train MODEL on a data spec; writes best.pt, last.pt, log.jsonl and summary.json to --out.

    Unset hyper-parameters come from the data's recipe (digits: 15 epochs, SGD 0.1 cosine;
    cifar10: the seed tutorial's; ImageNet-sized data: megvii's)."""
    from ..train import train

    s = train(model, data, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
              schedule=schedule, label_smoothing=label_smoothing, seed=seed, deterministic=deterministic,
              workers=workers, out=out, resume=resume, input_size=input_size, subset=subset, threads=threads)
    if as_json:
        print_json(s)
        return
    test = f", test top-1 {s['test_acc']:.2%} (n={s['test_n']})" if "test_acc" in s else ""
    click.echo(f"{s['model']} on {s['data']}: best val {s['best_val_acc']:.2%} at epoch {s['best_epoch']}{test}; "
               f"{s['train_seconds']:.0f}s training on {s['device']}")
    click.echo(f"checkpoints: {s['best']} (best), {s['last']} (last)")
