"""The proximal operators `ProxOptimizer` applies, as functions of the group norms.

Each maps (r (m,), k, tau, weights) -> (m,) multipliers and trusts its input (the optimizer validates weights per
block and checks every block's norms with one sync per step). A `batched` attribute (lists of r, k, tau,
weights -> list of multipliers) lets the optimizer solve blocks that share no parameter together.
"""

import torch
from torch import Tensor

from sparsenets.prox.simple import group_lasso_multipliers
from sparsenets.prox.wgsef import wgsef_multipliers, wgsef_multipliers_batched


def _wgsef_trusted(r: Tensor, k: int, tau: float, weights: Tensor | None) -> Tensor:
    """WGSEF for `ProxOptimizer`: weights were validated by its block, r's finiteness is checked once per step by
    the optimizer (above 4096 groups, where the root search reads back anyway, also here)."""
    return wgsef_multipliers(r, k, tau, weights, checked=True)


def _group_lasso_k(r: Tensor, k: int, tau: float, weights: Tensor | None) -> Tensor:
    """Group lasso in the (r, k, tau, weights) contract (k unused: the penalty has no target count)."""
    return group_lasso_multipliers(r, tau, weights, checked=True)


def _group_lasso_batched(
    rs: list[Tensor], ks: list[int], taus: list[float], weights: list[Tensor | None]
) -> list[Tensor]:
    """Group lasso for several blocks at once: its multipliers are per group, so one flat call when the blocks
    share τ and all or none carry weights, else one call per block."""
    if any(t != taus[0] for t in taus) or len({w is None for w in weights}) > 1:
        return [_group_lasso_k(r, k, t, w) for r, k, t, w in zip(rs, ks, taus, weights)]
    w = None if weights[0] is None else torch.cat(list(weights))
    c = group_lasso_multipliers(torch.cat(rs), taus[0], w, checked=True)
    return list(c.split([r.numel() for r in rs]))


_wgsef_trusted.batched = wgsef_multipliers_batched  # type: ignore[attr-defined]
_group_lasso_k.batched = _group_lasso_batched  # type: ignore[attr-defined]

PROXES = {"wgsef": _wgsef_trusted, "group_lasso": _group_lasso_k}
