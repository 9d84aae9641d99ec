"""A next-token task on random 11-symbol sequences, shared by the SST tests that drive a Trainer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.train import SampledBatches


def token_batches() -> SampledBatches:
    """Batches of 8 random sequences of 9 symbols as (inputs (8, 8), next-symbol targets (8, 8))."""

    def sample(g: torch.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 11, (b, 9), generator=g)
        return x[:, :-1], x[:, 1:]

    return SampledBatches(sample, batch_size=8, seed=0)


def next_token_loss(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the model's (B, T, V) logits against the (B, T) targets."""
    x, y = batch
    return F.cross_entropy(m(x).flatten(0, 1), y.flatten())
