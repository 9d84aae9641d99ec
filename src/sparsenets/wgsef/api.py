"""WGSEF's public pieces: the proximal optimizer (core, prox defaulting to WGSEF), the block builder, the prox."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sparsenets.groups import GroupLayout
from sparsenets.optim import ProxBlock, ProxOptimizer, decay_free_groups, kept_count
from sparsenets.prox import wgsef_prox
from sparsenets.pruning import coupled_blocks

__all__ = ["ProxBlock", "ProxOptimizer", "blocks", "decay_free_groups", "kept_count", "wgsef_prox"]


def blocks(
    model: nn.Module,
    example_inputs: torch.Tensor,
    keep: int | float,
    lam: float,
    round_to: int = 1,
    weights: str = "ones",
    layouts: Sequence[GroupLayout] | None = None,
) -> list[ProxBlock]:
    """WGSEF blocks for `model`: one per prunable conv/linear layer, its group j = output channel j with every
    slice coupled to it (bias, BatchNorm γ/β, the next layer's input channel j, residual partners).

    Args:
        model: the model (its parameters are referenced, not copied).
        example_inputs: a batch the model accepts, e.g. x[:1] of shape (1, C, H, W), for tracing.
        keep: keep ratio in (0, 1] or group count per layer (the classifier's outputs are never pruned).
        lam: λ, the envelope penalty's weight; each step applies the prox with τ = lr·λ.
        round_to: each layer's kept count is rounded to a multiple of this (8 or 16 suit CPU convolutions).
        weights: "ones" or "size" (group j costs its number of scalars, so wide groups are pruned first).
        layouts: your own group layouts (default: `sparsenets.groups.coupled_layouts(model, example_inputs)`).
    """
    out = coupled_blocks(model, example_inputs, keep, lam, prox="wgsef", round_to=round_to, layouts=layouts)
    if weights != "ones":
        out = [ProxBlock(b.layout, b.keep, b.lam, "wgsef", weights, b.round_to) for b in out]
    return out
