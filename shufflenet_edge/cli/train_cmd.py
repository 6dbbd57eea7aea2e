"""`edge train`: a thin layer over ``shufflenet_edge.train.train`` (and torchrun for ``--nproc``)."""
from __future__ import annotations

import sys

import click

from .app import main
from .options import INPUT_SIZE, print_json
from ..train.recipes import recipes_help

_HELP = f"""Train MODEL on a data spec; writes best.pt, last.pt, log.jsonl, summary.json and curves.png to --out.

Unset hyper-parameters come from the data's recipe (--batch-size is the global batch):

\b
{recipes_help()}

With --nproc N (or under torchrun: `torchrun --nproc_per_node N -m shufflenet_edge.train ...`)
the run is data-parallel (DistributedDataParallel; NCCL on GPUs, gloo on CPUs); rank 0 writes.
"""


def _forwarded_argv(ctx: click.Context) -> list[str]:
    """This command's flags as given, minus --nproc: what every torchrun process runs."""
    argv = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name == "nproc":
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value is False:
            continue
        flag = param.opts[0]
        if param.is_flag:
            argv.append(flag)
        elif isinstance(value, tuple):  # --input-size
            argv += [flag, "x".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


@main.command("train", help=_HELP)
@click.option("--model", required=True, help="Model name (see `edge models`), e.g. v1_g3 or v2_1.0x.")
@click.option("--data", default="digits", show_default=True,
              help="digits | npy:X.npy,Y.npy | cifar10:DIR | tinyimagenet:DIR | imagefolder:DIR")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Default: the data's recipe.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Global batch (all processes together).")
@click.option("--lr", type=float, default=None)
@click.option("--momentum", type=float, default=None)
@click.option("--weight-decay", type=float, default=None)
@click.option("--schedule", type=click.Choice(["step", "cosine", "linear"]), default=None)
@click.option("--label-smoothing", type=float, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--deterministic", is_flag=True, help="Deterministic kernels: a resumed run ends bit-identical.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--threads", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="torch CPU threads per process (as in every command: 1 unless you ask for more).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory (default runs/<model>_<data>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out (otherwise refused).")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="Override the data's input size (H or HxW).")
@click.option("--subset", type=click.IntRange(min=2), default=None, help="Train on this many training images only.")
@click.option("--nproc", type=click.IntRange(min=1), default=None,
              help="Processes on this machine (runs torchrun; one per GPU, or CPU processes with gloo).")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across processes (distributed runs).")
@click.option("--amp", is_flag=True, help="Mixed precision: bf16 autocast on CPU, fp16 on CUDA (see --amp-dtype).")
@click.option("--amp-dtype", type=click.Choice(["bf16", "fp16"]), default=None, help="Autocast dtype for --amp.")
@click.option("--channels-last", is_flag=True, help="Train in channels_last memory format.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def train_command(ctx, model, data, epochs, batch_size, lr, momentum, weight_decay, schedule, label_smoothing, seed,
                  deterministic, workers, threads, out, resume, overwrite, input_size, subset, nproc, sync_bn, amp,
                  amp_dtype, channels_last, as_json):
    from .. import distributed
    from ..errors import UsageError

    if nproc is not None:
        if distributed.launched_by_torchrun():
            raise UsageError("--nproc starts torchrun itself: under torchrun, leave it out")
        from ..train.launch import launch

        try:
            launch(nproc, _forwarded_argv(ctx), threads)
        except Exception as exc:
            if getattr(exc, "quiet", False):  # a rank already printed its error line
                sys.exit(exc.exit_code)
            raise
        return
    if amp_dtype and not amp:
        raise UsageError("--amp-dtype needs --amp")
    from ..train import train

    try:
        s = train(model, data, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                  schedule=schedule, label_smoothing=label_smoothing, seed=seed, deterministic=deterministic,
                  workers=workers, out=out, resume=resume, overwrite=overwrite, input_size=input_size, subset=subset,
                  sync_bn=sync_bn, amp=(amp_dtype or True) if amp else None, channels_last=channels_last,
                  threads=threads)
    except Exception as exc:
        # in a torchrun job every rank meets a config error: rank 0 alone says it; a rank that lost
        # its peers says nothing, torchrun names the rank that failed
        if getattr(exc, "quiet", False) or (getattr(exc, "all_ranks", False) and distributed.env_rank() != 0):
            sys.exit(getattr(exc, "exit_code", 1))
        raise
    except KeyboardInterrupt as exc:
        if distributed.launched_by_torchrun():  # torchrun stopping the job (SIGTERM) or Ctrl-C: it reports
            sys.exit(getattr(exc, "exit_code", 130))
        raise
    if distributed.env_rank() != 0:
        return
    if as_json:
        print_json(s)
        return
    _print_summary(s)


def _print_summary(s: dict) -> None:
    from ..train.report import next_commands

    test = f", test top-1 {s['test_acc']:.2%} (n={s['test_n']})" if "test_acc" in s else ""
    click.echo(f"{s['model']} on {s['data']}: best val {s['best_val_acc']:.2%} at epoch {s['best_epoch']}{test}; "
               f"{s['train_seconds']:.0f}s training on {s['device']}")
    click.echo(f"checkpoints: {s['best']} (best), {s['last']} (last)")
    for note in s.get("notes", []):
        click.echo(f"note: {note}")
    if s.get("curves"):
        click.echo(f"curves: {s['curves']}")
    click.echo("next:")
    for cmd in next_commands(s):
        click.echo(f"  {cmd}")
