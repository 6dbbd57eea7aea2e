"""The steps of one training run: resolve config, build, fit one epoch, save state, final test.

The same steps run in one process and in every process of a torchrun job; what differs is
confined to the data sharding (DistributedSampler, strided evaluation shards), the model wrapper
(DistributedDataParallel) and who writes (rank 0 only).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import data_preprocessing, default_input_size, load_split, make_dataset, parse_spec
from ..errors import RuntimeFailure, UsageError
from ..io_utils import check_writable, write_json, write_text
from ..loops import accuracy_of, logits_of, make_loader
from . import report
from .recipes import TrainConfig, check_hyper_parameters, default_out, describe, lr_factor, param_groups, resolve_recipe
from .rng import augment_seed, epoch_seed, rng_state, seed_everything, set_deterministic, set_rng_state

# the files that make a folder "a run": another run is never written over without --overwrite
RUN_MARKERS = ("last.pt", "best.pt", "summary.json", "log.jsonl")
RUN_FILES = (*RUN_MARKERS, "config.json", "curves.png")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDiverged(RuntimeFailure):
    """The loss became NaN or infinite: every rank stops; the last finished epoch's files stay."""


@dataclass
class Plan:
    """Everything decided before a tensor is built: config, data splits, what to resume."""

    cfg: TrainConfig
    spec: object
    train_split: object
    val_split: object
    preprocessing: dict | None
    lr_how: str
    given: list[str]
    resume_state: dict | None
    overwrite: bool

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out)


@dataclass
class Run:
    plan: Plan
    ctx: distributed.Context
    dev: torch.device
    net: nn.Module  # the model itself: what is saved and evaluated
    model: nn.Module  # what is trained: ``net``, or ``net`` inside DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object  # fp16 GradScaler, else None
    loss_fn: nn.Module
    train_ds: object
    val_ds: object
    steps_per_epoch: int
    start_epoch: int = 0
    best_acc: float = -1.0
    best_epoch: int = -1
    history: list = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def cfg(self) -> TrainConfig:
        return self.plan.cfg


# --- resolve config ------------------------------------------------------------------------------
def resolve_amp(amp, dev: torch.device) -> str | None:
    """``--amp``: bf16 autocast on CPU, fp16 (or bf16) on CUDA; None when off."""
    if amp in (None, False, "", "off", "none"):
        return None
    name = ("fp16" if dev.type == "cuda" else "bf16") if amp in (True, "auto") else str(amp)
    if name not in AMP_DTYPES:
        raise UsageError(f"unknown --amp-dtype '{amp}': expected bf16 or fp16")
    if dev.type == "cpu" and name == "fp16":
        raise UsageError("--amp fp16 needs CUDA: on CPU use bf16 (the default there)")
    if dev.type == "cpu":
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1))
        except RuntimeError as exc:
            raise UsageError(f"--amp bf16 is not supported by this CPU build of torch: {str(exc).splitlines()[0][:120]}") from None
    return name


def holds_run(out_dir: Path) -> str | None:
    return next((name for name in RUN_MARKERS if (out_dir / name).exists()), None)


def resolve_config(model: str, data, given: dict, *, seed, deterministic: bool, workers: int, out, resume: bool,
                   overwrite: bool, input_size, subset, sync_bn: bool, amp, channels_last: bool,
                   ctx: distributed.Context, dev: torch.device) -> Plan:
    from ..models import get_spec, parse_input_size

    spec = parse_spec(data)
    name = get_spec(model).name
    rec, lr_how = resolve_recipe(spec.kind, given)
    check_hyper_parameters(rec, seed)
    if subset is not None and subset < 2:
        raise UsageError(f"--subset must be >= 2, got {subset}")
    if rec["batch_size"] % ctx.world_size:
        raise UsageError(f"--batch-size {rec['batch_size']} is the global batch: it must divide evenly over "
                         f"{ctx.world_size} processes")
    amp_name = resolve_amp(amp, dev)
    if sync_bn and ctx.distributed and dev.type != "cuda":
        raise UsageError("--sync-bn needs GPUs: torch's SyncBatchNorm does not run on CPU tensors (leave it out with gloo)")
    if resume and overwrite:
        raise UsageError("give --resume (continue the run) or --overwrite (replace it), not both")
    out_dir = Path(out if out is not None else default_out(name, spec))
    last_path = out_dir / "last.pt"
    state = None
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
    elif not resume and not overwrite and (found := holds_run(out_dir)):
        raise UsageError(f"{out_dir} already holds a run ({found}): pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --out")
    check_writable(out_dir, need_bytes=8 << 20, what=f"--out {out_dir}")  # full or read-only: say so before training

    train_split = load_split(spec, "train")
    if train_split.labels is None:
        raise UsageError(f"data {spec} has no labels: training needs npy:X.npy,Y.npy")
    size = parse_input_size(input_size) if input_size is not None else default_input_size(spec, train_split)
    cfg = TrainConfig(model=name, data=str(spec), seed=int(seed), deterministic=bool(deterministic), workers=int(workers),
                      out=str(out_dir), input_size=list(size), subset=subset, world_size=ctx.world_size,
                      sync_bn=bool(sync_bn) and ctx.distributed, amp=amp_name, channels_last=bool(channels_last), **rec)
    if state is not None:
        old, new = state.get("config") or {}, cfg.to_dict()
        diff = [k for k in TrainConfig.RESUME_KEYS if old.get(k) != new[k]]
        if diff:
            k = diff[0]
            raise UsageError(f"--resume: {last_path} was trained with {k}={old.get(k)!r}, not {new[k]!r}")
    if subset is not None:
        pick = np.sort(np.random.default_rng(seed).choice(len(train_split), min(subset, len(train_split)), replace=False))
        train_split = train_split.subset(pick)
    val_split = load_split(spec, "val")
    return Plan(cfg, spec, train_split, val_split, data_preprocessing(spec), lr_how,
                [k for k, v in given.items() if v is not None], state, overwrite)


# --- build ---------------------------------------------------------------------------------------
def _train_loader(run_or_ds, cfg: TrainConfig, ctx: distributed.Context, epoch: int, workers: int):
    """Shuffled from (seed, epoch) like the single-process run; a distributed run shards it by rank."""
    if not ctx.distributed:
        return make_loader(run_or_ds, cfg.batch_size, workers, True, epoch_seed(cfg.seed, epoch), drop_last=True)
    sampler = torch.utils.data.DistributedSampler(run_or_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                                  seed=epoch_seed(cfg.seed, epoch))
    return make_loader(run_or_ds, cfg.batch_size // ctx.world_size, workers, seed=augment_seed(cfg.seed, epoch, ctx.rank),
                       drop_last=True, sampler=sampler)


def build(plan: Plan, ctx: distributed.Context, dev: torch.device) -> Run:
    from ..models import create_model

    cfg = plan.cfg
    set_deterministic(cfg.deterministic)
    seed_everything(cfg.seed)
    classes = plan.train_split.classes
    net = create_model(cfg.model, num_classes=len(classes), input_size=cfg.input_size, labels=classes,
                       preprocessing=plan.preprocessing)
    net.to(dev)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    if cfg.sync_bn:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # in place below the root: edge_meta stays
    optimizer = torch.optim.SGD(param_groups(net, cfg.weight_decay, cfg.no_bn_decay), lr=cfg.lr, momentum=cfg.momentum)
    size = cfg.input_size
    train_ds = make_dataset(plan.spec, "train", size, plan.preprocessing, train=True, loaded=plan.train_split)
    val_ds = make_dataset(plan.spec, "val", size, plan.preprocessing, loaded=plan.val_split)
    steps_per_epoch = len(_train_loader(train_ds, cfg, ctx, 0, 0))
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = min(steps_per_epoch * int(cfg.warmup_epochs), total_steps // 2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg.schedule, s, total_steps, warmup_steps))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    run = Run(plan, ctx, dev, net, net, optimizer, scheduler, scaler, loss_fn, train_ds, val_ds, steps_per_epoch)
    state = plan.resume_state
    if state is not None:
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        run.start_epoch = int(state["epoch"]) + 1
        run.best_acc, run.best_epoch = float(state["best_val_acc"]), int(state["best_epoch"])
        run.history = list(state.get("history") or [])
        run.elapsed = float(state.get("train_seconds", 0.0))
        set_rng_state(state["rng"])
    if ctx.distributed:
        run.model = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    if ctx.is_main:
        if plan.overwrite:
            for name in RUN_FILES:
                (plan.out_dir / name).unlink(missing_ok=True)
        plan.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(plan.out_dir / "config.json", cfg.to_dict())
    return run


def announce(run: Run, show: bool) -> None:
    """The first lines of a run: what, where, and the recipe in force."""
    if not show:
        return
    cfg, plan, ctx = run.cfg, run.plan, run.ctx
    where = f"resuming at epoch {run.start_epoch + 1}" if plan.resume_state is not None else "starting"
    h, w = cfg.input_size
    report.say(show, f"{cfg.model} on {plan.spec} ({len(run.train_ds)} train / {len(run.val_ds)} val, {h}x{w}, "
                     f"{run.dev}): {where}")
    given = f" (set here: {', '.join('--' + k.replace('_', '-') for k in plan.given)})" if plan.given else ""
    report.say(show, f"recipe ({plan.spec.kind}): {describe(cfg.to_dict())}{given}")
    if ctx.distributed:
        report.say(show, f"distributed: {ctx.world_size} processes ({ctx.backend}), global batch {cfg.batch_size} = "
                         f"{ctx.world_size} x {cfg.batch_size // ctx.world_size} per process; lr {cfg.lr:.4g}: {plan.lr_how}"
                         f"{'; SyncBatchNorm' if cfg.sync_bn else ''}")
    elif plan.spec.kind in ("tinyimagenet", "imagefolder") and "lr" not in plan.given:
        report.say(show, f"lr {cfg.lr:.4g}: {plan.lr_how}")
    if cfg.amp or cfg.channels_last:
        bits = ([f"{cfg.amp} autocast on {run.dev.type}"] if cfg.amp else []) + (["channels_last"] if cfg.channels_last else [])
        report.say(show, "mixed precision / layout: " + ", ".join(bits))
    for note in notes(plan):
        report.say(show, f"note: {note}")


def notes(plan: Plan) -> list[str]:
    found = list(dict.fromkeys(plan.train_split.notes + plan.val_split.notes))
    if plan.spec.kind == "npy":
        found.append("npy data has no val/test arrays: val and test accuracy are measured on the training arrays")
    return found


# --- fit one epoch -------------------------------------------------------------------------------
def _stop_if_diverged(run: Run, value: float, epoch: int, step: int) -> None:
    bad = not math.isfinite(value)
    ctx = run.ctx
    if ctx.distributed:  # every rank learns which ranks saw it, so all stop at the same step
        flags = distributed.all_sum([1.0 if (bad and r == ctx.rank) else 0.0 for r in range(ctx.world_size)], run.dev)
        ranks = [r for r, f in enumerate(flags) if f]
    else:
        ranks = [0] if bad else []
    if not ranks:
        return
    where = f" on rank {', '.join(map(str, ranks))}" if ctx.distributed else ""
    last = run.plan.out_dir / "last.pt"
    kept = (f"{last} from epoch {epoch} is kept" if epoch > 0 and last.is_file()
            else "no checkpoint was written")
    err = TrainingDiverged(f"training stopped: the loss became {value if bad else 'non-finite'} at epoch {epoch + 1}, "
                           f"step {step + 1}{where} (lr {run.optimizer.param_groups[0]['lr']:.4g}); {kept}. "
                           "Lower --lr, or check the data for NaN/inf values")
    err.all_ranks = True
    raise err


def fit_one_epoch(run: Run, epoch: int, progress: report.Progress) -> tuple[dict, float]:
    """Train one epoch and evaluate on val; returns the log record and the exact val accuracy."""
    cfg, ctx, dev = run.cfg, run.ctx, run.dev
    t0 = time.perf_counter()
    run.model.train()
    torch.manual_seed(augment_seed(cfg.seed, epoch, ctx.rank))  # augmentation in the main process (workers=0)
    loader = _train_loader(run.train_ds, cfg, ctx, epoch, cfg.workers)
    autocast = (lambda: torch.autocast(dev.type, dtype=AMP_DTYPES[cfg.amp])) if cfg.amp else contextlib.nullcontext
    loss_sum, correct, seen = 0.0, 0, 0
    bar = progress.epoch(loader, epoch)
    for step, (x, y) in enumerate(bar):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        run.optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = run.model(x)
            loss = run.loss_fn(logits, y)
        value = float(loss.detach())
        _stop_if_diverged(run, value, epoch, step)
        _step(run, loss)
        loss_sum += value * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        progress.step()
        if progress.enabled:
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
    if ctx.distributed:
        loss_sum, correct, seen = distributed.all_sum([loss_sum, correct, seen], dev)
        distributed.broadcast_buffers(run.net)  # BN statistics: evaluate and save rank 0's on every rank
    val_logits, val_labels = logits_of(run.net, run.val_ds, dev, shard=True, batch_size=256, workers=cfg.workers,
                                      channels_last=cfg.channels_last)
    val_acc = accuracy_of(val_logits, val_labels)
    val_loss = float(nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_labels)))
    seconds = time.perf_counter() - t0
    run.elapsed += seconds
    record = {"epoch": epoch + 1, "train_loss": round(loss_sum / max(seen, 1), 5),
              "train_acc": round(correct / max(seen, 1), 5), "val_loss": round(val_loss, 5),
              "val_acc": round(val_acc, 5), "lr": run.optimizer.param_groups[0]["lr"],
              "seconds": round(seconds, 2), "elapsed": round(run.elapsed, 2)}
    run.history.append(record)
    return record, val_acc


def _step(run: Run, loss: torch.Tensor) -> None:
    clip = run.cfg.clip_grad
    if run.scaler is None:
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(run.net.parameters(), clip)
        run.optimizer.step()
    else:
        run.scaler.scale(loss).backward()
        if clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.net.parameters(), clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    run.scheduler.step()


# --- save state ----------------------------------------------------------------------------------
def _state_dict_cpu(model: nn.Module) -> dict:
    # contiguous: a channels_last run saves the same plain layout as any other
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save_state(run: Run, epoch: int, record: dict, val_acc: float) -> bool:
    """Rank 0 writes best.pt (on improvement), last.pt and log.jsonl, in that order, atomically.

    A crash between them replays this epoch. Returns whether val accuracy improved."""
    improved = val_acc > run.best_acc
    if improved:
        run.best_acc, run.best_epoch = val_acc, epoch + 1
    if not run.ctx.is_main:
        return improved
    out = run.plan.out_dir
    weights = _state_dict_cpu(run.net)
    meta = run.net.edge_meta
    extras = dict(config=run.cfg.to_dict(), epoch=epoch, best_val_acc=run.best_acc, best_epoch=run.best_epoch,
                  val_acc=val_acc, history=run.history, train_seconds=run.elapsed)
    if improved:
        save_checkpoint(out / "best.pt", meta, weights, **extras)
    training_state = dict(optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(), rng=rng_state())
    if run.scaler is not None:
        training_state["scaler"] = run.scaler.state_dict()
    save_checkpoint(out / "last.pt", meta, weights, **training_state, **extras)
    write_text(out / "log.jsonl", report.json_lines(run.history))
    return improved


# --- final test ----------------------------------------------------------------------------------
def final_test(run: Run) -> dict:
    """Test accuracy of best.pt on the whole test split; rank 0 writes summary.json and curves.png."""
    from ..models import create_model

    cfg, plan, ctx = run.cfg, run.plan, run.ctx
    out = plan.out_dir
    best_path, last_path = out / "best.pt", out / "last.pt"
    distributed.barrier()  # rank 0 has written best.pt
    summary = {"model": cfg.model, "data": str(plan.spec), "out": str(out), "epochs": cfg.epochs,
               "best_epoch": run.best_epoch, "best_val_acc": run.best_acc, "train_seconds": round(run.elapsed, 2),
               "device": str(run.dev), "best": str(best_path), "last": str(last_path)}
    if best_path.is_file():
        best_net = create_model(checkpoint=best_path).to(run.dev)
        test_split = load_split(plan.spec, "test")
        test_ds = make_dataset(plan.spec, "test", cfg.input_size, plan.preprocessing, loaded=test_split)
        test_logits, test_labels = logits_of(best_net, test_ds, run.dev, shard=True, batch_size=256, workers=cfg.workers)
        summary["test_acc"] = accuracy_of(test_logits, test_labels)
        summary["test_n"] = len(test_labels)
    if ctx.distributed:
        summary["world_size"] = ctx.world_size
    if notes(plan):
        summary["notes"] = notes(plan)
    if ctx.is_main:
        if run.history:
            title = f"{cfg.model} on {plan.spec}"
            summary["curves"] = str(report.plot_curves(run.history, out / "curves.png", title))
        write_json(out / "summary.json", summary)
    return summary
