"""Distributed data parallel training: process group set-up and an atom-balanced sampler.

``torchrun --nproc-per-node N -m mlip train config.yaml`` sets RANK, WORLD_SIZE and LOCAL_RANK;
:func:`setup` then joins a process group (gloo on CPU, NCCL on GPU). All processes draw the
same *global* batches (limits times the number of processes) from the same seeded order, and
each global batch is split into one part per process with similar atom counts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..data.loader import SizeBatchSampler

log = logging.getLogger("mlip.train")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes in place (a no-op in one process)."""
        if self.distributed:
            moved = tensor.to(self.device)
            dist.all_reduce(moved)
            tensor.copy_(moved.to(tensor.device))
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any (stop together, never hang)."""
        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], dtype=torch.float64)
        return bool(self.all_reduce(t).item() > 0)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"run.device is {name!r} but no CUDA device is available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def setup(device_name: str = "auto") -> Context:
    """Join the process group when launched by torchrun; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Context(rank=rank, world=world, device=device)


def cleanup(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(model: torch.nn.Module, ctx: Context) -> None:
    """Start every process from rank 0's weights and buffers."""
    if ctx.distributed:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(model: torch.nn.Module, ctx: Context) -> None:
    """Average the gradients over processes in one flat all-reduce.

    This replaces the DistributedDataParallel wrapper: force training calls autograd.grad
    inside forward, and DDP's reducer then sees its hooks fire in the wrong order and fails.
    One all-reduce after backward is the same arithmetic (DDP also averages) and always works.
    """
    if not ctx.distributed:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def split_balanced(indices: list[int], num_atoms: np.ndarray, parts: int) -> list[list[int]]:
    """Largest first into the part with the fewest atoms so far; each part keeps the global
    order, so the result does not depend on the process that computes it."""
    loads = [0] * parts
    owner = {}
    for i in sorted(indices, key=lambda i: (-int(num_atoms[i]), i)):
        p = min(range(parts), key=lambda k: (loads[k], k))
        owner[i] = p
        loads[p] += int(num_atoms[i])
    return [[i for i in indices if owner[i] == p] for p in range(parts)]


class BalancedBatchSampler(torch.utils.data.Sampler):
    """This process's share of seeded global batches.

    ``max_atoms``, ``max_edges`` and ``max_graphs`` are per process; a global batch holds up
    to ``world`` times as much. In training, a global batch with fewer structures than
    processes is dropped (a process without data cannot join the gradient all-reduce); in
    validation (``drop_small=False``) that process simply gets fewer batches.
    ``set_epoch(epoch, start)`` fixes the order (from seed and epoch) and skips the first
    ``start`` batches, which is how a resume continues inside an epoch.
    """

    def __init__(self, num_atoms, max_atoms: int, num_edges=None, max_edges=None,
                 max_graphs=None, rank: int = 0, world: int = 1, shuffle: bool = True,
                 seed: int = 0, drop_small: bool = True):
        scale = lambda v: None if v is None else v * world  # noqa: E731
        self.num_atoms = np.asarray(num_atoms, dtype=np.int64)
        self.global_sampler = SizeBatchSampler(
            self.num_atoms, max_atoms * world, num_edges=num_edges, max_edges=scale(max_edges),
            max_graphs=scale(max_graphs), shuffle=shuffle, seed=seed,
        )
        self.rank, self.world, self.drop_small = rank, world, drop_small
        self.start = 0
        self._cache: tuple[int, list] | None = None

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.global_sampler.set_epoch(epoch)
        self.start = int(start)

    def batches(self) -> list[list[int]]:
        """Every batch of this epoch for this process, before skipping ``start``."""
        epoch = self.global_sampler.epoch
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        mine = []
        for batch in self.global_sampler:
            if len(batch) < self.world:
                if self.drop_small:
                    log.debug("dropping a global batch of %d structures", len(batch))
                    continue
            parts = split_balanced(batch, self.num_atoms, self.world)
            if parts[self.rank]:
                mine.append(parts[self.rank])
        self._cache = (epoch, mine)
        return mine

    def __iter__(self):
        yield from self.batches()[self.start:]

    def __len__(self) -> int:
        return max(len(self.batches()) - self.start, 0)
