"""torch.distributed for training: who am I, and the few collectives training needs.

A process started by torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its environment) joins
the job with NCCL when CUDA is present and gloo otherwise. Outside torchrun everything here is
the single-process identity: rank 0 of 1, sums of one, no gathering.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Context:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def context() -> Context:
    if not _initialized():
        return Context()
    return Context(torch.distributed.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), torch.distributed.get_world_size(),
                   str(torch.distributed.get_backend()))


def env_rank() -> int:
    """This process's rank as torchrun announced it (0 outside torchrun), before the job is joined."""
    return int(os.environ.get("RANK", 0)) if launched_by_torchrun() else 0


def init(device: str | None = None) -> Context:
    """Join the torchrun job (once); a no-op outside torchrun."""
    if not launched_by_torchrun() or _initialized():
        return context()
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return context()


def shutdown() -> None:
    if _initialized():
        torch.distributed.destroy_process_group()


def device_for(ctx: Context, device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", ctx.local_rank) if ctx.distributed else torch.device("cuda")
    return torch.device("cpu")


def _reduce(values, op, device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=op)
    return t.tolist()


def all_sum(values: list[float], device=None) -> list[float]:
    """Element-wise sum over ranks (the values themselves outside a job)."""
    if not _initialized():
        return list(values)
    return _reduce(values, torch.distributed.ReduceOp.SUM, _collective_device(device))


def any_rank(flag: bool, device=None) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not _initialized():
        return bool(flag)
    return _reduce([1.0 if flag else 0.0], torch.distributed.ReduceOp.MAX, _collective_device(device))[0] > 0


def _collective_device(device):
    # NCCL reduces only CUDA tensors; gloo only CPU ones
    if str(torch.distributed.get_backend()) == "nccl":
        return device if device is not None and torch.device(device).type == "cuda" else torch.device("cuda")
    return torch.device("cpu")


def gather_strided(logits: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank r holds items r, r+W, ...: return all ``n`` in dataset order, on every rank."""
    world = torch.distributed.get_world_size()
    parts: list = [None] * world
    torch.distributed.all_gather_object(parts, (logits, labels))
    k = max((p[0].shape[1] for p in parts if len(p[0])), default=0)
    out = np.zeros((n, k), np.float32)
    lab = np.zeros(n, np.int64)
    for r, (lg, lb) in enumerate(parts):
        out[r::world] = lg
        lab[r::world] = lb
    return out, lab


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank's buffers (BatchNorm running statistics) rank ``src``'s."""
    if _initialized():
        for b in module.buffers():
            torch.distributed.broadcast(b, src)


def barrier() -> None:
    if _initialized():
        torch.distributed.barrier()


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (the object itself outside a job)."""
    if not _initialized():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]
