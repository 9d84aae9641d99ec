"""The compression protocol every structured method ends with: exact selection → compact → fine-tune the
compacted model → measure.

Fine-tuning the compacted model, not the masked one: once the hard top-k has zeroed every pruned group (held
at zero, so it never reaches the output), `compact` gives an ordinary smaller module whose SGD steps are the
same steps at a fraction of the FLOPs. What "fine-tune" and "evaluate" mean (data, schedule, metric) is the
caller's, passed in as functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sparsenets.compact import compact, count_flops, count_params
from sparsenets.groups import coupled_layouts
from sparsenets.optim import ProxOptimizer

Evaluate = Callable[[nn.Module], float]
# finetune(model, optimizer or None, phase): "tune-compact" (a fresh optimizer is the caller's) or "tune" (masked)
Finetune = Callable[[nn.Module, torch.optim.Optimizer | None, str], None]
MakeOptimizer = Callable[[nn.Module], torch.optim.Optimizer]


def compact_checked(
    model: nn.Module, example_inputs: torch.Tensor, check_inputs: torch.Tensor
) -> tuple[nn.Module, float]:
    """`compact(model)` on the CPU and its max |output difference| from the masked model on `check_inputs`.

    Args:
        model: the masked model (moved to the CPU, put in eval mode).
        example_inputs: (1, ...) one input for tracing.
        check_inputs: (B, ...) inputs on which the two models' outputs are compared.

    Returns:
        (the compacted model, max |compacted − masked| over the check outputs).
    """
    model.cpu()
    small = compact(model.eval(), example_inputs)
    with torch.no_grad():
        diff = float((small(check_inputs) - model(check_inputs)).abs().max())
    return small, diff


def kept_groups(model: nn.Module, example_inputs: torch.Tensor) -> list[int]:
    """Nonzero coupled groups per prunable layer of `model` (of a compacted model: its layer widths)."""
    return [int((lay.norms() > 0).sum()) for lay in coupled_layouts(model, example_inputs)]


def finish_pruning(
    model: nn.Module,
    opt: ProxOptimizer,
    example_inputs: torch.Tensor,
    check_inputs: torch.Tensor,
    evaluate: Evaluate,
    finetune: Finetune,
    make_optimizer: MakeOptimizer,
    finetune_compact: bool = True,
    record_before: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Exact top-k, fine-tune (the compacted model, or the masked one with its mask held), measure.

    Args:
        model: the sparse-trained (or dense) model `opt`'s blocks were built on.
        opt: its proximal optimizer; its `select` gives exactly k groups per block.
        example_inputs: (1, ...) one input (tracing, FLOPs).
        check_inputs: (B, ...) inputs for the compacted-vs-masked output check.
        evaluate: model → accuracy (or any score) on held-out data.
        finetune: trains a model in place for the fine-tune phase (see `Finetune`).
        make_optimizer: a fresh optimizer for a model (every method fine-tunes alike).
        finetune_compact: fine-tune the compacted model (default) or the masked one.
        record_before: record the kept groups and score before the selection.

    Returns:
        (the compacted model, a record: k, kept groups, scores before/after selection and after fine-tuning,
        the compacted model's score, params, FLOPs and max output difference).
    """
    rec: dict[str, Any] = {}
    if record_before:
        rec["kept_before_select"] = opt.kept()
        rec["accuracy_before_select"] = evaluate(model)
    # every method fine-tunes alike with a fresh optimizer: the compacted model's, or the masked one's (held)
    opt.hold_mask(None if finetune_compact else make_optimizer(model))
    rec["accuracy_after_select"] = evaluate(model)
    rec["k"] = [b.k for b in opt.blocks]
    if finetune_compact:
        small, rec["max_abs_diff"] = compact_checked(model, example_inputs, check_inputs)
        small.train()
        finetune(small, make_optimizer(small), "tune-compact")
        small.cpu().eval()
        rec["kept"] = kept_groups(small, example_inputs)
        tuned = small
    else:
        finetune(model, opt, "tune")
        rec["kept"] = opt.kept()
        small, rec["max_abs_diff"] = compact_checked(model, example_inputs, check_inputs)
        tuned = model
    rec.update(
        accuracy=evaluate(tuned),
        accuracy_compact=evaluate(small),
        params=count_params(small),
        flops=count_flops(small, example_inputs),
    )
    return small, rec
