"""Data-parallel primitives for :mod:`qfm.core.engine` (torchrun; NCCL on GPU, gloo on CPU).

Split out of the engine to keep each file small; the engine (and the distillation driver,
which must let rank 0 alone write the expanded set) imports this module, so the engine stays
the one place that decides about devices, AMP and DDP. Every rank draws the same
seeded global batches and takes its slice (:func:`shard_batches`); gradients are averaged by an
explicit all-reduce after ``backward`` (:func:`sync_gradients`), which — unlike DDP's hooks —
covers objectives that call ``model.features/select/head`` directly (QFM-IQM does).
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch.utils.data import Dataset


def init_distributed(device: torch.device) -> tuple[torch.device, int, int]:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU).

    The group lives until the process exits, so several fits in one process (distillation:
    teacher, then student) share it.

    Args:
        device: the device asked for (``qfm.core.inference.resolve_device``).
    Returns:
        (device — ``cuda:LOCAL_RANK`` under torchrun on GPU, rank, world size).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not dist.is_initialized():
        return device, 0, 1
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return device, dist.get_rank(), dist.get_world_size()


def barrier(world: int) -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if world > 1 and dist.is_initialized():
        dist.barrier()


def sync_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Average gradients over ranks in place (no-op for one process).

    A parameter without a gradient on every rank keeps none (AdamW then skips it, as it
    would in one process); one with a gradient on some ranks gets zeros on the others.
    """
    if world <= 1 or not params:
        return
    dev = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=dev)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    grads = []
    for p, h in zip(params, has.tolist()):
        if h:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
    for dtype in {g.dtype for g in grads}:  # one bucket per dtype
        group = [g for g in grads if g.dtype == dtype]
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        flat /= world
        for g, part in zip(group, flat.split([g.numel() for g in group])):
            g.copy_(part.view_as(g))


@torch.no_grad()
def sync_model(model: torch.nn.Module, world: int, average_buffers: bool = False) -> None:
    """Make every rank hold rank 0's parameters and buffers, or with ``average_buffers``
    the mean of each floating buffer (BatchNorm statistics, computed per rank)."""
    if world <= 1:
        return
    if average_buffers:
        for b in model.buffers():
            if b.is_floating_point():
                dist.all_reduce(b)
                b /= world
        return
    for t in model.state_dict().values():
        dist.broadcast(t, 0)


def mean_over_ranks(logs: dict, world: int) -> dict:
    """Average a dict of floats over ranks (identity for one process)."""
    if world <= 1 or not logs:
        return logs
    keys = sorted(logs)
    vals = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        vals = vals.cuda()
    dist.all_reduce(vals)
    return dict(zip(keys, (vals / world).tolist()))


class SeededItems(Dataset):
    """Seed torch's RNG per item from (epoch seed, index): an image's random crop depends on
    the run's seed, the epoch and the image only — not on the worker, the rank or the batch."""

    def __init__(self, ds: Dataset, seed: int):
        self.ds, self.seed = ds, seed

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + int(i)) % (2 ** 63))
            return self.ds[i]


def shard_batches(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's contiguous slice of each global batch (sizes must divide by ``world``)."""
    out = []
    for b in batches:
        if len(b) % world:
            raise ValueError(f"train.batch_size: batch of {len(b)} does not divide by "
                             f"{world} processes")
        k = len(b) // world
        out.append(list(b[rank * k:(rank + 1) * k]))
    return out
