"""Seeds and RNG states: what makes a resumed run replay exactly.

Every epoch reseeds shuffling and augmentation from (seed, epoch[, rank]), so nothing but the
epoch number has to survive a crash; the full states still travel in ``last.pt`` as tensors and
plain lists so the file loads with ``weights_only=True``.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

MAX_SEED = 2**63 - 1


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


def epoch_seed(seed: int, epoch: int) -> int:
    """Shuffling seed of one epoch: the same on every rank, so the ranks' shards partition the data."""
    return (seed * 1_000_003 + epoch) % 2**63


def augment_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Augmentation seed of one rank in one epoch; rank 0's is the single-process run's."""
    return (epoch_seed(seed, epoch) + rank * 0x9E3779B97F4A7C15) % 2**63
