"""From a FLOPs budget ("4× fewer FLOPs") to the per-layer keep ratio that gives it on a given model."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from sparsenets.compact import compact, count_flops
from sparsenets.errors import ConfigError
from sparsenets.groups import coupled_layouts
from sparsenets.optim import kept_count


def flops_at_keep(model: nn.Module, example: torch.Tensor, keep: float, round_to: int = 1) -> float:
    """FLOPs of `model` with every prunable layer cut to kept_count(m, keep, round_to) groups (the first ones:
    which groups does not change the count)."""
    return count_flops(architecture_at_keep(model, example, keep, round_to), example)


def architecture_at_keep(
    model: nn.Module, example: torch.Tensor, keep: float, round_to: int = 1
) -> nn.Module:
    """A compacted copy of `model` with kept_count(m, keep, round_to) groups in every prunable layer (the
    layer widths every structured method reaches at that budget; which groups does not change the shape)."""
    m = copy.deepcopy(model).cpu().eval()
    for lay in coupled_layouts(m, example):  # tracing needs autograd; scale_ itself runs without it
        c = torch.zeros(lay.m)
        c[: kept_count(lay.m, keep, round_to)] = 1
        lay.scale_(c)  # zero the dropped groups in every coupled slice
    return compact(m, example)


def keep_for_flops(
    make_model: Callable[[], nn.Module], example: torch.Tensor, reduction: float, round_to: int = 1
) -> float:
    """The keep ratio (3 decimals) whose compacted model has FLOPs closest to dense / `reduction`.

    Args:
        make_model: builds the model.
        example: (1, ...) one input.
        reduction: the FLOPs budget as a factor > 1 (2.0 = half the FLOPs).
        round_to: kept counts rounded to a multiple of this, as in training.
    """
    if not reduction > 1:
        raise ConfigError(f"a FLOPs budget is a reduction factor > 1 (e.g. 2, 4, 8); got {reduction}")
    model = make_model()
    target = count_flops(model, example) / reduction
    lo, hi = 0.001, 1.0
    for _ in range(10):  # bisection on a monotone (step) function of keep
        mid = (lo + hi) / 2
        if flops_at_keep(model, example, mid, round_to) > target:
            hi = mid
        else:
            lo = mid
    best = min((lo, hi), key=lambda k: abs(flops_at_keep(model, example, k, round_to) - target))
    return round(best, 3)
