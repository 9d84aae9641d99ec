"""Training losses for `sparsenets.train.Trainer`: the stepper's one-step acceleration MSE in normalised units and
the decoder's position MSE (reported metrics live in `sparsenets.giorom.metrics`)."""

from __future__ import annotations

import torch
from torch import nn

Sample = dict[str, torch.Tensor]


def acceleration_loss(model: nn.Module, sample: Sample) -> torch.Tensor:
    """Mean squared error of the normalised acceleration (the training loss), a scalar.

    `sample` is a `WindowBatches` sample (`pos`, `types`, `graph`, `target` [B·M, d] in data units); `model`
    may be wrapped in DDP (its bare module's `normalise_acc` maps the target).
    """
    bare = getattr(model, "module", model)
    pred = model(sample)["acc_norm"]
    return ((pred - bare.normalise_acc(sample["target"])) ** 2).mean()


def decoder_loss(decoder: nn.Module, sample: Sample) -> torch.Tensor:
    """Mean over queries of Σ_dims (x̂ − x)² for a `DecoderBatches` sample, a scalar."""
    pred = decoder(sample["reference"], sample["pos"], sample["queries"])
    return ((pred - sample["target"]) ** 2).sum(-1).mean()
