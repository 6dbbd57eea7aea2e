"""``edge train``: resumable SGD training on a data spec, checkpoints in the project format.

Every epoch writes ``last.pt`` (model, optimizer, scheduler, epoch, RNG states, config, history)
and, when validation accuracy improves, ``best.pt``; both atomically, both loadable with
``torch.load(weights_only=True)``. Randomness (shuffling, augmentation) is reseeded from
(seed, epoch) at the start of each epoch, so ``--resume`` after a crash anywhere in an epoch
replays that epoch from the last finished one and ends on the same weights as an uninterrupted
run (bit-exact with ``--deterministic``).
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import data_preprocessing, default_input_size, load_split, make_dataset, parse_spec
from .errors import UsageError
from .io_utils import write_json, write_text

SCHEDULES = ("step", "cosine", "linear")

# Per-source recipes. digits: measured to pass 97% test accuracy within 5 CPU minutes (README);
# cifar10: the seed tutorial; ImageNet-sized data: megvii's (lr 0.5 per 1024 images scaled to the
# batch, linear decay, weight decay 4e-5 but none on BN/bias, label smoothing 0.1).
RECIPES = {
    "digits": dict(epochs=15, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                   label_smoothing=0.0, no_bn_decay=False, warmup_epochs=1, clip_grad=2.0),
    "npy": dict(epochs=15, batch_size=64, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                label_smoothing=0.0, no_bn_decay=False, warmup_epochs=1, clip_grad=2.0),
    "cifar10": dict(epochs=60, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
                    label_smoothing=0.0, no_bn_decay=False, warmup_epochs=0),
    "tinyimagenet": dict(epochs=60, batch_size=128, lr=0.5 * 128 / 1024, momentum=0.9, weight_decay=4e-5,
                         schedule="linear", label_smoothing=0.1, no_bn_decay=True, warmup_epochs=1),
    "imagefolder": dict(epochs=240, batch_size=128, lr=0.5 * 128 / 1024, momentum=0.9, weight_decay=4e-5,
                        schedule="linear", label_smoothing=0.1, no_bn_decay=True, warmup_epochs=1),
}


@dataclass
class TrainConfig:
    model: str
    data: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    label_smoothing: float
    no_bn_decay: bool
    warmup_epochs: int = 0
    clip_grad: float | None = None  # max gradient norm: v1's first steps have norms ~80 that wreck the fc
    seed: int = 0
    deterministic: bool = False
    workers: int = 0
    out: str = "runs"
    input_size: list[int] | None = None
    subset: int | None = None  # use this many training images (quick runs, tests)

    # what must match for --resume to continue the same run
    RESUME_KEYS = ("model", "data", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                   "label_smoothing", "no_bn_decay", "warmup_epochs", "clip_grad", "seed", "input_size", "subset")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def recipe(spec) -> dict:
    return dict(RECIPES[parse_spec(spec).kind])


def default_out(model: str, spec) -> str:
    return str(Path("runs") / f"{model}_{parse_spec(spec).kind}")


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    if step < warmup:  # linear warm-up: from-scratch ShuffleNets blow up at full lr on the first steps
        return (step + 1) / warmup
    t = min(step - warmup, total - warmup) / max(total - warmup, 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "linear":
        return max(0.0, 1.0 - t)
    return 0.1 ** sum(t >= m for m in (0.5, 0.75))  # step: x0.1 at 50% and 75% of training


def _param_groups(model: nn.Module, weight_decay: float, no_bn_decay: bool) -> list[dict]:
    if not no_bn_decay:
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]  # BN scales/shifts and biases
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def rng_state() -> dict:
    """All RNG states as tensors and plain lists (weights_only-loadable)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _state_dict_cpu(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**63


def _loader(ds, batch_size: int, workers: int, shuffle: bool, seed: int | None = None, drop_last: bool = False):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=workers,
                                       drop_last=drop_last and len(ds) > batch_size,
                                       pin_memory=torch.cuda.is_available())


def _reraise_one_line(exc: UsageError):
    # a DataLoader worker re-raises with the worker's traceback in the message: keep the cause
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if "UsageError:" in ln), lines[-1] if lines else "")
    return UsageError(last.split("UsageError:", 1)[-1].strip())


def train(model: str, data: str = "digits", *, epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, momentum: float | None = None, weight_decay: float | None = None,
          schedule: str | None = None, label_smoothing: float | None = None, no_bn_decay: bool | None = None,
          warmup_epochs: int | None = None, clip_grad: float | None = None, seed: int = 0, deterministic: bool = False, workers: int = 0, out: str | os.PathLike | None = None,
          resume: bool = False, input_size=None, subset: int | None = None, device: str | None = None,
          threads: int | None = None, quiet: bool = False) -> dict:
    """Train ``model`` on ``data``; returns the run summary (also written to ``<out>/summary.json``).

    Unset hyper-parameters come from the data spec's recipe (``RECIPES``). ``threads``: torch's
    intra-op CPU threads for this run (default: torch's own choice)."""
    if threads is not None:
        if int(threads) < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        # On a small shared CPU, torch's default pool (one thread per core) spins against other
        # processes; small-batch CPU training there ran ~10x faster with 1 thread. The setting is
        # process-wide, so torch_threads gives an API caller its own back afterwards.
        params = {k: v for k, v in locals().items() if k != "threads"}  # nothing else is bound yet
        from .bench.torch_engine import torch_threads

        with torch_threads(threads):
            return train(**params)
    from .models import create_model, get_spec, parse_input_size
    from .evaluate import accuracy_of, logits_of

    spec = parse_spec(data)
    name = get_spec(model).name
    rec = recipe(spec)
    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                 schedule=schedule, label_smoothing=label_smoothing, no_bn_decay=no_bn_decay,
                 warmup_epochs=warmup_epochs, clip_grad=clip_grad)
    rec.update({k: v for k, v in given.items() if v is not None})
    if rec["schedule"] not in SCHEDULES:
        raise UsageError(f"unknown schedule '{rec['schedule']}': expected one of {', '.join(SCHEDULES)}")
    for key in ("epochs", "batch_size"):
        if int(rec[key]) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 1, got {rec[key]}")
    if rec["lr"] <= 0 or not 0 <= rec["label_smoothing"] < 1:
        raise UsageError("--lr must be > 0 and --label-smoothing in [0, 1)")
    out_dir = Path(out if out is not None else default_out(name, spec))
    from .io_utils import check_writable

    check_writable(out_dir, need_bytes=8 << 20, what=f"--out {out_dir}")  # full or read-only: say so before training

    train_split = load_split(spec, "train")
    if train_split.labels is None:
        raise UsageError(f"data {spec} has no labels: training needs npy:X.npy,Y.npy")
    size = parse_input_size(input_size) if input_size is not None else default_input_size(spec, train_split)
    cfg = TrainConfig(model=name, data=str(spec), seed=int(seed), deterministic=bool(deterministic), workers=int(workers),
                      out=str(out_dir), input_size=list(size), subset=subset, **rec)
    if subset is not None:
        if subset < 2:
            raise UsageError(f"--subset must be >= 2, got {subset}")
        pick = np.sort(np.random.default_rng(seed).choice(len(train_split), min(subset, len(train_split)), replace=False))
        train_split = train_split.subset(pick)
    val_split = load_split(spec, "val")
    classes = train_split.classes
    preprocessing = data_preprocessing(spec)

    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    state = None
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
        old = state.get("config") or {}
        diff = [k for k in TrainConfig.RESUME_KEYS if old.get(k) != cfg.to_dict()[k]]
        if diff:
            k = diff[0]
            raise UsageError(f"--resume: {last_path} was trained with {k}={old.get(k)!r}, not {cfg.to_dict()[k]!r}")
    elif last_path.exists() and not resume:
        raise UsageError(f"{out_dir} already holds a run ({last_path.name}): pass --resume to continue it or choose another --out")

    set_deterministic(deterministic)
    seed_everything(seed)
    dev = torch.device(device) if device else default_device()
    net = create_model(name, num_classes=len(classes), input_size=size, labels=classes, preprocessing=preprocessing)
    net.to(dev)
    optimizer = torch.optim.SGD(_param_groups(net, rec["weight_decay"], rec["no_bn_decay"]), lr=rec["lr"],
                                momentum=rec["momentum"])
    train_ds = make_dataset(spec, "train", size, preprocessing, train=True, loaded=train_split)
    val_ds = make_dataset(spec, "val", size, preprocessing, loaded=val_split)
    steps_per_epoch = len(_loader(train_ds, rec["batch_size"], 0, True, 0, drop_last=True))
    total_steps = steps_per_epoch * rec["epochs"]
    warmup_steps = min(steps_per_epoch * int(rec["warmup_epochs"]), total_steps // 2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(rec["schedule"], s, total_steps, warmup_steps))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=rec["label_smoothing"])

    start_epoch, best_acc, best_epoch, history, elapsed = 0, -1.0, -1, [], 0.0
    if state is not None:
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        best_acc, best_epoch = float(state["best_val_acc"]), int(state["best_epoch"])
        history = list(state.get("history") or [])
        elapsed = float(state.get("train_seconds", 0.0))
        set_rng_state(state["rng"])
    log_path = out_dir / "log.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "config.json", cfg.to_dict())
    if not quiet:
        from tqdm import tqdm
        where = f"resuming at epoch {start_epoch + 1}" if state is not None else "starting"
        tqdm.write(f"{name} on {spec} ({len(train_ds)} train / {len(val_ds)} val, {size[0]}x{size[1]}, {dev}): {where}",
                   file=sys.stderr)

    try:
        for epoch in range(start_epoch, rec["epochs"]):
            t0 = time.perf_counter()
            net.train()
            torch.manual_seed(_epoch_seed(seed, epoch))  # augmentation in the main process (workers=0)
            loader = _loader(train_ds, rec["batch_size"], workers, True, _epoch_seed(seed, epoch), drop_last=True)
            loss_sum, correct, seen = 0.0, 0, 0
            bar = _progress(loader, f"epoch {epoch + 1}/{rec['epochs']}", quiet)
            for x, y in bar:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                logits = net(x)
                loss = loss_fn(logits, y)
                loss.backward()
                if rec.get("clip_grad"):
                    nn.utils.clip_grad_norm_(net.parameters(), rec["clip_grad"])
                optimizer.step()
                scheduler.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                if not quiet:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
            val_logits, val_labels = logits_of(net, _loader(val_ds, 256, workers, False), dev)
            val_acc = accuracy_of(val_logits, val_labels)
            val_loss = float(nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_labels)))
            seconds = time.perf_counter() - t0
            elapsed += seconds
            record = {"epoch": epoch + 1, "train_loss": round(loss_sum / max(seen, 1), 5),
                      "train_acc": round(correct / max(seen, 1), 5), "val_loss": round(val_loss, 5),
                      "val_acc": round(val_acc, 5), "lr": optimizer.param_groups[0]["lr"],
                      "seconds": round(seconds, 2), "elapsed": round(elapsed, 2)}
            history.append(record)
            improved = val_acc > best_acc
            if improved:
                best_acc, best_epoch = val_acc, epoch + 1
            weights = _state_dict_cpu(net)
            meta = net.edge_meta
            extras = dict(config=cfg.to_dict(), epoch=epoch, best_val_acc=best_acc, best_epoch=best_epoch,
                          val_acc=val_acc, history=history, train_seconds=elapsed)
            if improved:
                save_checkpoint(best_path, meta, weights, **extras)
            # last.pt goes after best.pt and the log after both: a crash in between replays this epoch
            save_checkpoint(last_path, meta, weights, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                            rng=rng_state(), **extras)
            write_text(log_path, "".join(_json_line(r) for r in history))
            if not quiet:
                from tqdm import tqdm
                tqdm.write(f"epoch {epoch + 1}: loss {record['train_loss']:.4f}  train {record['train_acc']:.2%}  "
                           f"val {val_acc:.2%}{'  (best)' if improved else ''}  {seconds:.1f}s", file=sys.stderr)
    except UsageError as exc:
        raise _reraise_one_line(exc) from None

    summary = {"model": name, "data": str(spec), "out": str(out_dir), "epochs": rec["epochs"],
               "best_epoch": best_epoch, "best_val_acc": best_acc, "train_seconds": round(elapsed, 2),
               "device": str(dev), "best": str(best_path), "last": str(last_path)}
    if best_path.is_file():
        best_net = create_model(checkpoint=best_path).to(dev)
        test_split = load_split(spec, "test")
        test_ds = make_dataset(spec, "test", size, preprocessing, loaded=test_split)
        test_logits, test_labels = logits_of(best_net, _loader(test_ds, 256, workers, False), dev)
        summary["test_acc"] = accuracy_of(test_logits, test_labels)
        summary["test_n"] = len(test_labels)
    write_json(out_dir / "summary.json", summary)
    return summary


def _json_line(obj) -> str:
    import json

    return json.dumps(obj) + "\n"


def _progress(loader, desc: str, quiet: bool):
    if quiet:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
