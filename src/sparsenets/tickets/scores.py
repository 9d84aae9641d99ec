"""Pruning-at-initialization scores (the lottery-ticket controls): SNIP, GraSP and iterative SynFlow.

Each scorer reads the named parameters of a module and returns `{name: score}` with "higher = keep", ready for
`prune_by_scores`. Losses come in as closures `loss_fn(module) -> scalar` so any model and batch fit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.tickets.prune import level_keep, prune_by_scores, prune_members

LossOf = Callable[[nn.Module], torch.Tensor]


def _params(module: nn.Module, names: Sequence[str]) -> list[nn.Parameter]:
    table = dict(module.named_parameters())
    missing = [n for n in names if n not in table]
    if missing:
        raise SparsenetsError(
            f"module has no parameters {missing}; pass names from module.named_parameters()"
        )
    return [table[n] for n in names]


def snip_scores(module: nn.Module, loss_fn: LossOf, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """SNIP (Lee et al. 2019): |∂L/∂θ ⊙ θ| on one batch. Returns name → score of the parameter's shape."""
    params = _params(module, names)
    grads = torch.autograd.grad(loss_fn(module), params)
    return {n: (g * p).detach().abs() for n, g, p in zip(names, grads, params)}


def grasp_scores(module: nn.Module, loss_fn: LossOf, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """GraSP (Wang et al. 2020): keep-score θ ⊙ Hg (the paper removes the largest −θ ⊙ Hg).

    `loss_fn` should already divide the logits by the temperature (200 in the Synaptic-Flow code). Hg is a
    Hessian-gradient product by double backward: Hg = ∂(g_stopᵀ g)/∂θ.
    """
    params = _params(module, names)
    g_stop = [g.detach() for g in torch.autograd.grad(loss_fn(module), params)]
    grads = torch.autograd.grad(loss_fn(module), params, create_graph=True)
    hg = torch.autograd.grad(sum((a * b).sum() for a, b in zip(g_stop, grads)), params)
    return {n: (h * p).detach() for n, h, p in zip(names, hg, params)}


def synflow_masks(
    module: nn.Module,
    forward_ones: Callable[[nn.Module], torch.Tensor],
    names: Sequence[str],
    keep: float,
    *,
    rounds: int = 100,
    scope: str = "global",
    stacked: bool = False,
) -> dict[str, torch.Tensor]:
    """Iterative SynFlow (Tanaka et al. 2020): data-free, `rounds` prunings on an exponential density schedule.

    Each round sets the weights to |θ0| ⊙ mask (in float64, on a copy), computes R = Σ forward_ones(net) on an
    all-ones input, scores (∂R/∂θ) ⊙ θ and prunes to density keep^(r/rounds).

    Args:
        module: the network at initialization (not modified).
        forward_ones: runs a network on an all-ones input and returns its output (any shape).
        names: parameters to prune.
        keep: final fraction kept, in (0, 1].
        rounds: pruning iterations (100 in the paper).
        scope: "global" or "layer".
        stacked: dim 0 of every parameter indexes an independent network (prune each on its own).

    Returns:
        name → bool mask (True = kept).
    """
    if rounds < 1:
        raise SparsenetsError(f"synflow needs rounds >= 1, got {rounds}")
    level_keep(keep, 1)  # a fraction in (0, 1]: the schedule takes its powers
    net = copy.deepcopy(module).double()
    params = _params(net, names)
    with torch.no_grad():
        base = [p.abs().clone() for p in params]
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in zip(names, params)}
    prune = prune_members if stacked else prune_by_scores
    for r in range(1, rounds + 1):
        with torch.no_grad():
            for p, b, n in zip(params, base, names):
                p.copy_(b * masks[n])
        grads = torch.autograd.grad(forward_ones(net).sum(), params)
        scores = {n: (g * p).detach() for n, g, p in zip(names, grads, params)}
        masks = prune(scores, keep ** (r / rounds), scope=scope, current=masks)
    return masks
