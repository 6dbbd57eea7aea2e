"""What a training run shows and leaves behind besides checkpoints: progress bars, log lines, curves.

Only rank 0 of a distributed run reports. The per-epoch line (``epoch N: loss ...``) is the
stable line to follow progress by; the bars' text is for people and may change.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


class Progress:
    """One overall bar over every remaining step (with the run's ETA) and the epoch's bar inside it."""

    def __init__(self, enabled: bool, total_steps: int, first_epoch: int, epochs: int):
        self.enabled = enabled
        self.epochs = epochs
        self.overall = None
        if enabled:
            from tqdm import tqdm

            self.overall = tqdm(total=total_steps, desc=f"training (epochs {first_epoch + 1}-{epochs})", unit="step",
                                position=0, leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def epoch(self, loader, epoch: int):
        if not self.enabled:
            return loader
        from tqdm import tqdm

        return tqdm(loader, desc=f"epoch {epoch + 1}/{self.epochs}", position=1, leave=False, file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.5)

    def step(self) -> None:
        if self.overall is not None:
            self.overall.update(1)

    def write(self, line: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.overall is not None:
            self.overall.close()
            self.overall = None


def say(enabled: bool, line: str) -> None:
    if enabled:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)


def epoch_line(record: dict, improved: bool) -> str:
    return (f"epoch {record['epoch']}: loss {record['train_loss']:.4f}  train {record['train_acc']:.2%}  "
            f"val {record['val_acc']:.2%}{'  (best)' if improved else ''}  {record['seconds']:.1f}s")


def json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def plot_curves(history: list[dict], path: Path, title: str) -> Path:
    """``curves.png``: loss (train/val), accuracy (train/val) and learning rate per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_path

    ep = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(ep, [r["train_loss"] for r in history], "o-", label="train")
    axes[0].plot(ep, [r["val_loss"] for r in history], "o-", label="val")
    axes[0].set_title("loss")
    axes[1].plot(ep, [r["train_acc"] for r in history], "o-", label="train")
    axes[1].plot(ep, [r["val_acc"] for r in history], "o-", label="val")
    axes[1].set_title("accuracy")
    axes[2].plot(ep, [r["lr"] for r in history], "o-", color="tab:green")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def next_commands(summary: dict) -> list[str]:
    """The commands a user runs next on this run's best checkpoint, with its real paths."""
    from shlex import quote

    best = quote(summary["best"])
    data = quote(summary["data"])
    return [f"edge eval --checkpoint {best} --data {data}",
            f"edge export --checkpoint {best} --format onnx --out exports"]
