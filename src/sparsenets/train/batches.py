"""Batch sources with random access by global step, so a resumed run sees exactly the batches it would have seen.

A batch source is any callable `source(step) -> batch`; the trainer never iterates a DataLoader. Under DDP each
rank receives its own slice of the same global batch, so N processes train like one process with that batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sparsenets.errors import ConfigError
from sparsenets.train import dist

Batch = Any


class TensorBatches:
    """Shuffled mini-batches over in-memory tensors that share their first dimension.

    Epoch e uses the permutation drawn from a generator seeded with (seed, e); batch b of that epoch is the b-th
    slice of it. Under DDP, rank r of w takes rows r::w of the global batch.

    Args:
        tensors: tensors of shape (N, ...) each.
        batch_size: global batch size (summed over ranks).
        seed: shuffling seed.
        shuffle: draw a fresh permutation per epoch; False keeps the stored order.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0, shuffle: bool = True) -> None:
        if not tensors:
            raise ConfigError("TensorBatches needs at least one tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ConfigError(f"TensorBatches: tensors disagree on length: {[t.shape[0] for t in tensors]}")
        if not 1 <= batch_size <= n:
            raise ConfigError(f"batch_size must be in [1, {n}] for {n} examples, got {batch_size}")
        self.tensors, self.batch_size, self.seed, self.shuffle = tensors, batch_size, seed, shuffle
        self.steps_per_epoch = n // batch_size
        self._perm_epoch, self._perm = -1, torch.arange(n)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self.shuffle and epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.tensors[0].shape[0], generator=g), epoch
        return self._perm

    def __call__(self, step: int) -> tuple[torch.Tensor, ...]:
        """The batch of global step `step`: a tuple of tensors of shape (batch_size / world, ...)."""
        epoch, b = divmod(step, self.steps_per_epoch)
        idx = self._permutation(epoch)[b * self.batch_size : (b + 1) * self.batch_size]
        info = dist.current()
        idx = idx[info.rank :: info.world_size]
        return tuple(t[idx] for t in self.tensors)


class SampledBatches:
    """Batches drawn by a function of a step-seeded generator (random windows of a text, generated tasks).

    Args:
        sample: `sample(generator, batch_size) -> batch`; must draw all randomness from the generator.
        batch_size: global batch size; under DDP each rank draws the full batch and keeps its slice.
        seed: base seed.
    """

    def __init__(
        self, sample: Callable[[torch.Generator, int], Batch], batch_size: int, seed: int = 0
    ) -> None:
        self.sample, self.batch_size, self.seed = sample, batch_size, seed

    def __call__(self, step: int) -> Batch:
        """The batch of global step `step`."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        batch = self.sample(g, self.batch_size)
        info = dist.current()
        if info.enabled:
            batch = tuple(t[info.rank :: info.world_size] for t in batch)
        return batch


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move a tensor, or a tuple/list/dict of tensors, to `device` (non-tensors pass through)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
