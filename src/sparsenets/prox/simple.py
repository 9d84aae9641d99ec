"""Group lasso, l1 and hard top-k on the same "group norms → multipliers" core as WGSEF."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sparsenets.errors import SparsenetsError
from sparsenets.prox.checks import check_finite_norms, check_k, check_tau, check_weights
from sparsenets.prox.layout import group_norms, resolve_layout, scale_groups

if TYPE_CHECKING:
    from sparsenets.groups import GroupLayout


def group_lasso_multipliers(
    r: torch.Tensor, tau: float, weights: torch.Tensor | None = None, *, checked: bool = False
) -> torch.Tensor:
    """(m,) multipliers of prox of τ·Σ_j w_j r_j (group soft-threshold): c_j = max(0, 1 − τw_j/r_j).

    r: (m,) group norms; weights: (m,) positive; checked: r and weights were validated by the caller.
    """
    tau = check_tau(tau)
    if checked:
        w = None if weights is None else weights.to(r.device)
    else:
        w = check_weights(weights, r.numel(), r)
        check_finite_norms(r)
    thr = tau if w is None else tau * w.to(r.dtype)
    return torch.clamp(1 - thr / r.clamp_min(torch.finfo(r.dtype).tiny), min=0)


def group_lasso_prox(
    x: torch.Tensor,
    tau: float,
    groups: torch.Tensor | GroupLayout | None = None,
    weights: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """prox of τ·Σ_j w_j‖x_{g_j}‖ (SSL / group lasso); layout and `out` rules as in `wgsef_prox`. Returns z
    like x (`out` when given)."""
    layout = resolve_layout(x, groups)
    return scale_groups(x, group_lasso_multipliers(group_norms(x, layout), tau, weights), layout, out)


def l1_prox(x: torch.Tensor, tau: float) -> torch.Tensor:
    """Elementwise soft-threshold, prox of τ‖x‖₁ (any shape; every element is a group)."""
    return group_lasso_prox(x.reshape(-1), tau).reshape(x.shape)


def topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """The library's one top-k: a bool (n,) mask of the k largest entries of score (n,), 0 <= k <= n.

    Ties go to the lower index (a stable descending sort in float64), so a selection is the same on every
    platform and device; structured selection (`topk_multipliers`) and ticket pruning both use it.
    """
    flat = score.reshape(-1)
    if not 0 <= k <= flat.numel():
        raise SparsenetsError(f"top-k needs 0 <= k <= {flat.numel()} entries; got k={k}")
    out = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        out[torch.sort(flat.double(), descending=True, stable=True).indices[:k]] = True
    return out


def topk_multipliers(r: torch.Tensor, k: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(m,) 0/1 multipliers keeping the k groups with the largest r_j/√w_j (ties: lower index first)."""
    k = check_k(k, r.numel())
    w = check_weights(weights, r.numel(), r)
    check_finite_norms(r)
    score = r.double() if w is None else r.double() / w.sqrt()
    return topk_mask(score, k).to(r.dtype)


def hard_topk_prox(
    x: torch.Tensor,
    k: int,
    groups: torch.Tensor | GroupLayout | None = None,
    weights: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Zero all but the k strongest groups (the projection onto ≤ k groups; with weights, ranks by r/√w);
    z like x, or written into `out` (x itself for in place)."""
    layout = resolve_layout(x, groups)
    return scale_groups(x, topk_multipliers(group_norms(x, layout), k, weights), layout, out)
