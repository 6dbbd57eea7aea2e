"""The loops training and evaluation share: device choice, data loaders, logits and accuracy.

They live below both ``train`` and ``evaluate`` so neither imports the other. Under
torch.distributed, ``logits_of`` with ``shard=True`` splits a dataset by rank without padding and
gathers the logits back in dataset order, so every image counts exactly once on every rank.
"""
from __future__ import annotations

import numpy as np
import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_loader(ds, batch_size: int, workers: int = 0, shuffle: bool = False, seed: int | None = None,
                drop_last: bool = False, sampler=None):
    """A DataLoader whose shuffling and worker seeds come from ``seed`` (reproducible runs)."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    n = len(sampler) if sampler is not None else len(ds)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle if sampler is None else False,
                                       sampler=sampler, generator=g, num_workers=workers,
                                       drop_last=drop_last and n > batch_size,
                                       pin_memory=torch.cuda.is_available())


def _forward_all(model: torch.nn.Module, loader, device, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            x = x.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            outs.append(model(x).float().cpu().numpy())
            labels.append(np.asarray(y, dtype=np.int64))
    model.train(was_training)
    if not outs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(outs), np.concatenate(labels)


def logits_of(model: torch.nn.Module, loader_or_ds, device=None, *, shard: bool = False, batch_size: int = 256,
              workers: int = 0, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run a torch model in eval mode; returns (float32 logits N x K, int64 labels N).

    Given a loader, it runs that loader. Given a dataset with ``shard=True`` inside a
    torch.distributed job, rank r runs images r, r + W, r + 2W, ... (no sampler padding) and the
    pieces are gathered back into dataset order on every rank."""
    from . import distributed

    if not isinstance(loader_or_ds, torch.utils.data.DataLoader):
        ds = loader_or_ds
        ctx = distributed.context()
        if shard and ctx.world_size > 1:
            mine = torch.utils.data.Subset(ds, list(range(ctx.rank, len(ds), ctx.world_size)))
            logits, labels = _forward_all(model, make_loader(mine, batch_size, workers), device, channels_last)
            return distributed.gather_strided(logits, labels, len(ds))
        loader_or_ds = make_loader(ds, batch_size, workers)
    return _forward_all(model, loader_or_ds, device, channels_last)


def accuracy_of(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0
