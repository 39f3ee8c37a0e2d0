"""Data-parallel training across processes with PyTorch DDP, launched by torchrun or accelerate.

    torchrun --nproc_per_node 2 -m ckt.cli train --set mode=embedding --save runs/ddp      # 2 CPU processes (gloo)
    torchrun --nproc_per_node 4 -m ckt.cli train --set mode=lora --set device=cuda --save runs/ddp   # 4 GPUs (nccl)
    accelerate launch --num_processes 2 -m ckt.cli train ...                                # the same, via accelerate

Every rank uses the same seed, so it draws the same batch order; each batch is cut into contiguous
shards, one per rank, and the objective (:func:`ckt.core.train.loss_terms`) runs inside a
``DistributedDataParallel`` module, which averages the gradients across ranks during backward.
Each shard's loss is weighted by ``n_shard · world / n_batch``, so the averaged gradient is the
gradient of the whole batch's mean loss: N processes take the same optimizer steps as one, up to
float rounding.

Two terms do not split over shards exactly, as with any data-parallel training: random
perturbations (Gaussian noise, PGD's random start) are drawn per rank, and the gradient-norm
penalty (Eq. 5) is the norm of each shard's gradient rather than of the whole batch's. Runs with
FGSM and λ = 0 match one process to float tolerance (``tests/test_distributed.py``); the others
match in distribution.

Rank 0 prepares data, teacher and features first (filling the caches) while the others wait, and
only rank 0 evaluates, prints and saves.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, world size); under a launcher, accelerate's ``PartialState`` sets up the process group on
    first use (gloo on CPU or with ``CKT_DDP_BACKEND=gloo``, else NCCL, with the rank's GPU selected)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    from accelerate import PartialState

    gloo = not torch.cuda.is_available() or os.environ.get("CKT_DDP_BACKEND") == "gloo"
    state = PartialState(cpu=gloo, backend="gloo" if gloo else "nccl")
    return state.process_index, state.num_processes


def finish() -> None:
    """Destroy the process group at the end of a run (accelerate's ``destroy_process_group``): the ranks
    exit cleanly instead of tearing the group down in their interpreter's exit handlers."""
    if dist.is_available() and dist.is_initialized():
        from accelerate import PartialState

        PartialState().destroy_process_group()


def is_main() -> bool:
    return world()[0] == 0


@contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. builds the caches); the other ranks then run it (cache hits)."""
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    yield
    if size > 1 and rank == 0:
        dist.barrier()


def shard(batch: dict[str, torch.Tensor], rank: int, size: int) -> tuple[dict, float]:
    """This rank's contiguous slice of every tensor in the batch, and its loss weight n_r·size/n."""
    n = len(batch["y"])
    bounds = [n * r // size for r in range(size + 1)]
    lo, hi = bounds[rank], bounds[rank + 1]
    return {k: v[lo:hi] for k, v in batch.items()}, (hi - lo) * size / n


class Objective(nn.Module):
    """The training objective as a module, so that DDP can wrap it (DDP syncs through forward)."""

    def __init__(self, student: nn.Module, terms_fn, cfg, spec):
        super().__init__()
        self.student, self.terms_fn, self.cfg, self.spec = student, terms_fn, cfg, spec

    def forward(self, batch: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return self.terms_fn(self.student, batch, self.cfg, self.spec, gen)


def data_parallel(student: nn.Module, terms_fn, cfg, spec):
    """``(objective, rank, size)``: the DDP-wrapped objective under a launcher, else a plain one."""
    rank, size = world()
    objective = Objective(student, terms_fn, cfg, spec)
    if size > 1:
        device = next(student.parameters()).device
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    return objective, rank, size
