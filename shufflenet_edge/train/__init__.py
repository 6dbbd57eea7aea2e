"""``edge train``: resumable SGD training on a data spec, checkpoints in the project format.

Every epoch writes ``last.pt`` (model, optimizer, scheduler, epoch, RNG states, config, history)
and, when validation accuracy improves, ``best.pt``; both atomically, both loadable with
``torch.load(weights_only=True)``. Randomness (shuffling, augmentation) is reseeded from
(seed, epoch[, rank]) at the start of each epoch, so ``--resume`` after a crash anywhere in an
epoch replays that epoch from the last finished one and ends on the same weights as an
uninterrupted run (bit-exact with ``--deterministic``).

Under torchrun (``torchrun --nproc_per_node N -m shufflenet_edge.train ...``, or
``edge train --nproc N``) the same run is data-parallel: DistributedDataParallel over NCCL or
gloo, ``--batch-size`` is the global batch, and only rank 0 writes, in the same format.
"""
from __future__ import annotations

import os

from .. import distributed
from ..errors import EdgeError, RuntimeFailure, UsageError
from ..io_utils import sigterm_unwinds
from ..loops import default_device
from . import report
from .recipes import RECIPES, SCHEDULES, TrainConfig, default_out, lr_factor, recipe
from .rng import rng_state, seed_everything, set_deterministic, set_rng_state
from .steps import TrainingDiverged, announce, build, final_test, fit_one_epoch, resolve_config, save_state

__all__ = ["train", "RECIPES", "SCHEDULES", "TrainConfig", "TrainingDiverged", "recipe", "default_out", "lr_factor",
           "rng_state", "set_rng_state", "seed_everything", "set_deterministic", "default_device"]


class JobLost(RuntimeFailure):
    """This rank's collective failed because another rank is gone: torchrun reports that rank."""

    quiet = True


def _reraise_one_line(exc: UsageError):
    # a DataLoader worker re-raises with the worker's traceback in the message: keep the cause
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if "UsageError:" in ln), lines[-1] if lines else "")
    return UsageError(last.split("UsageError:", 1)[-1].strip())


def train(model: str, data: str = "digits", *, epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, momentum: float | None = None, weight_decay: float | None = None,
          schedule: str | None = None, label_smoothing: float | None = None, no_bn_decay: bool | None = None,
          warmup_epochs: int | None = None, clip_grad: float | None = None, seed: int = 0, deterministic: bool = False,
          workers: int = 0, out: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
          input_size=None, subset: int | None = None, sync_bn: bool = False, amp: bool | str | None = None,
          channels_last: bool = False, device: str | None = None, threads: int | None = None,
          quiet: bool = False) -> dict:
    """Train ``model`` on ``data``; returns the run summary (also written to ``<out>/summary.json``).

    Unset hyper-parameters come from the data spec's recipe (``RECIPES``). ``threads``: torch's
    intra-op CPU threads for this run (default: torch's own choice). ``batch_size`` is the global
    batch (split over the processes under torchrun). ``amp``: True (bf16 on CPU, fp16 on CUDA),
    "bf16" or "fp16". ``overwrite``: replace the run already in ``out`` (else it is refused)."""
    if threads is not None:
        if int(threads) < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        # On a small shared CPU, torch's default pool (one thread per core) spins against other
        # processes; small-batch CPU training there ran ~10x faster with 1 thread. The setting is
        # process-wide, so torch_threads gives an API caller its own back afterwards.
        params = {k: v for k, v in locals().items() if k != "threads"}  # nothing else is bound yet
        from ..bench.torch_engine import torch_threads

        with torch_threads(threads):
            return train(**params)

    joined = distributed.launched_by_torchrun() and not distributed.context().distributed
    ctx = distributed.init(device)
    dev = distributed.device_for(ctx, device)
    show = not quiet and ctx.is_main
    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                 schedule=schedule, label_smoothing=label_smoothing, no_bn_decay=no_bn_decay,
                 warmup_epochs=warmup_epochs, clip_grad=clip_grad)
    try:
        plan = resolve_config(model, data, given, seed=seed, deterministic=deterministic, workers=workers, out=out,
                              resume=resume, overwrite=overwrite, input_size=input_size, subset=subset, sync_bn=sync_bn,
                              amp=amp, channels_last=channels_last, ctx=ctx, dev=dev)
        run = build(plan, ctx, dev)
    except EdgeError as exc:
        exc.all_ranks = True  # every rank checks the same flags and files: rank 0 alone reports
        raise
    announce(run, show)
    progress = report.Progress(show, run.steps_per_epoch * (run.cfg.epochs - run.start_epoch), run.start_epoch,
                               run.cfg.epochs)
    try:
        with sigterm_unwinds():  # SIGTERM (torchrun stopping a job) cleans up like Ctrl-C
            for epoch in range(run.start_epoch, run.cfg.epochs):
                record, val_acc = fit_one_epoch(run, epoch, progress)
                improved = save_state(run, epoch, record, val_acc)
                progress.write(report.epoch_line(record, improved))
    except UsageError as exc:
        raise _reraise_one_line(exc) from None
    except RuntimeError as exc:
        if ctx.distributed:  # a collective failed: another rank died; torchrun names it
            raise JobLost(f"rank {ctx.rank}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc!r}") from None
        raise
    finally:
        progress.close()
    summary = final_test(run)
    if joined:
        distributed.shutdown()
    return summary
