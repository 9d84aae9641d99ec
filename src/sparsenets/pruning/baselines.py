"""Blocks for structured sparse training and the pruning baselines, on coupled group layouts.

- `coupled_blocks`: one `ProxBlock` per prunable layer (its filter/neuron with every coupled slice) with one
  budget and one λ — WGSEF's blocks when prox="wgsef".
- `magnitude_blocks`: no penalty; the final exact top-k by group norm is L1/L2-norm filter pruning.
- `group_lasso_blocks`: SSL's group lasso with λ matched per layer to WGSEF's band threshold at initialisation.
- `GroupNormRegularizer` / `tp_groupnorm_pruner`: Torch-Pruning's GroupNorm sparse-training term as a Trainer
  callback (or call `.step(model)` after `loss.backward()` in a plain loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from sparsenets.groups import GroupLayout, coupled_layouts
from sparsenets.optim import ProxBlock, ProxFn
from sparsenets.train.callbacks import Callback, TrainState


def _layouts(model: nn.Module, example_inputs: torch.Tensor) -> list[GroupLayout]:
    """Coupled layouts of `model`, traced with the example on the model's device."""
    return coupled_layouts(model, example_inputs.to(next(model.parameters()).device))


def coupled_blocks(
    model: nn.Module,
    example_inputs: torch.Tensor,
    keep: int | float,
    lam: float,
    prox: str | ProxFn = "wgsef",
    round_to: int = 1,
    layouts: Sequence[GroupLayout] | None = None,
) -> list[ProxBlock]:
    """One block per prunable layer of `model` (its coupled layout), each with budget `keep` and penalty `lam`.

    Args:
        model: the model (its parameters are referenced, not copied).
        example_inputs: a batch the model accepts, e.g. x[:1] of shape (1, C, H, W), for tracing.
        keep: keep ratio in (0, 1] or group count per layer (`sparsenets.optim.kept_count`).
        lam: λ of every block.
        prox: "wgsef", "group_lasso", "none" or a prox function of the group norms.
        round_to: a ratio's count per layer is rounded to a multiple of this.
        layouts: the layouts to use (default: `coupled_layouts(model, example_inputs)`).
    """
    lays = list(layouts) if layouts is not None else _layouts(model, example_inputs)
    return [ProxBlock(lay, keep, lam, prox=prox, round_to=round_to) for lay in lays]


def magnitude_blocks(
    model: nn.Module, example_inputs: torch.Tensor, keep: int | float, round_to: int = 1
) -> list[ProxBlock]:
    """Blocks with no penalty: `ProxOptimizer.finalize` then keeps the top-k coupled groups by norm (L2-norm
    filter pruning of a trained model). Args as in `coupled_blocks`."""
    return coupled_blocks(model, example_inputs, keep, 0.0, prox="none", round_to=round_to)


def group_lasso_blocks(
    model: nn.Module, example_inputs: torch.Tensor, keep: int | float, lam: float, round_to: int = 1
) -> list[ProxBlock]:
    """Group-lasso (SSL) blocks whose λ per layer is matched to WGSEF's band threshold at initialisation:
    λ_gl = λ·(m/k)·mean(r_init) for a layer of m groups keeping k, r_init its (m,) group norms now.
    Args as in `coupled_blocks`."""
    blocks = coupled_blocks(model, example_inputs, keep, 0.0, prox="group_lasso", round_to=round_to)
    for b in blocks:
        b.lam = lam * b.layout.m / b.k * float(b.layout.norms().mean())
    return blocks


def classifier(model: nn.Module) -> nn.Module:
    """The last Linear/Conv2d: its outputs are the classes, so no structured method prunes them."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]


def tp_groupnorm_pruner(model: nn.Module, example_inputs: torch.Tensor, reg: float) -> Any:
    """Torch-Pruning's `GroupNormPruner` over `model` (group L2 importance, the last Linear/Conv2d ignored: the
    classifier keeps its outputs); only its `regularize` is used, the cut is the exact top-k of the blocks."""
    return tp.pruner.GroupNormPruner(
        model,
        example_inputs,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        reg=reg,
        ignored_layers=[classifier(model)],
    )


class GroupNormRegularizer(Callback):
    """Torch-Pruning's GroupNorm sparse-training term, added to the gradients after each backward.

    In a plain loop call `step(model)` between `loss.backward()` and `optimizer.step()`.
    """

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner

    def step(self, model: nn.Module) -> None:
        """Add the regularizer's gradient to `model`'s gradients (after backward, before the optimizer step)."""
        self.pruner.regularize(model)

    def after_backward(self, state: TrainState) -> None:
        self.step(state.module)
