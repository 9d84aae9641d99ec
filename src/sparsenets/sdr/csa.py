"""The Code Selection Algorithm as pure tensor functions, vectorised over a batch of inputs and a set of macs.

Shapes: B inputs, M macs, Q competitive modules (CMs) of K cells, n inputs in a mac's receptive field.
A code is one winner per CM: a long tensor (..., Q) of cell indices in [0, K); an inactive mac has -1.

Steps (spec "Code Selection Algorithm"):
  1 input sums u = x·W                       `input_sums`
  2 normalise U = u / |x|                    `normalise`
  3 evidence V = Π X^e_X                     `evidence`
  4 familiarity G = mean_q max_{i∈q} V_i     `familiarity`
  5 η(G), 6 μ(V), 7 ρ = μ / Σ_CM μ           `selection_probs`
  8 per CM: sample ρ (learning) or argmax V  `select`
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from sparsenets.sdr.params import CSAParams, eta, mu


class CSAResult(NamedTuple):
    """What one CSA pass returns.

    Attributes:
        winners: (B, M, Q) long, winner per CM, -1 for an inactive mac.
        g: (B, M) familiarity G (0 for inactive macs).
        v: (B, M, Q, K) evidence V.
        rho: (B, M, Q, K) selection probabilities ρ (empty when selection was argmax).
        active: (B, M) bool, mac inside its activation band.
    """

    winners: torch.Tensor
    g: torch.Tensor
    v: torch.Tensor
    rho: torch.Tensor
    active: torch.Tensor


def input_sums(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Step 1: u_i = Σ_{j active} w_ji for every cell of every mac.

    Args:
        x: (B, M, n) 0/1 float, the active inputs of each mac's receptive field.
        w: (M, n, C) 0/1 float weights (C = Q·K cells per mac).

    Returns:
        (B, M, C) float counts.
    """
    return torch.bmm(x.transpose(0, 1), w).transpose(0, 1)


def normalise(u: torch.Tensor, n_active: torch.Tensor, w_max: float = 1.0) -> torch.Tensor:
    """Step 2: U_i = u_i / (|x|·w_max), the fraction of active inputs with a learned weight onto cell i.

    Args:
        u: (B, M, C) input sums.
        n_active: (B, M) active input count |x| (0 gives U = 0).
    """
    return u / (n_active.clamp(min=1.0) * w_max)[..., None]


def evidence(
    terms: list[tuple[torch.Tensor, torch.Tensor | None, float]],
) -> torch.Tensor:
    """Step 3: V_i = Π over present sources X of X_i^{e_X}.

    Args:
        terms: (X, present, e_X) triples; X is (B, M, Q, K) normalised input, `present` a (B, M) bool mask
            of macs for which that source has any active input (None: present everywhere). The first term is U.

    Returns:
        (B, M, Q, K) evidence in [0, 1].
    """
    v = None
    for x, present, e in terms:
        xe = x if e == 1.0 else x.pow(e)
        if present is not None:
            xe = torch.where(present[..., None, None], xe, torch.ones_like(xe))
        v = xe if v is None else v * xe
    assert v is not None, "evidence needs at least the U term"
    return v


def familiarity(v: torch.Tensor) -> torch.Tensor:
    """Step 4: G = (1/Q) Σ_q max_{i ∈ CM q} V_i; (..., Q, K) → (...)."""
    return v.amax(-1).mean(-1)


def selection_probs(v: torch.Tensor, g: torch.Tensor, p: CSAParams) -> torch.Tensor:
    """Steps 5–7: ρ_i = μ_i / Σ_{k ∈ CM(i)} μ_k with μ shaped by η(G); (..., Q, K), (...) → (..., Q, K)."""
    m = mu(v, eta(g, v.shape[-1], p), p)
    return m / m.sum(-1, keepdim=True)


def select(
    v: torch.Tensor,
    rho: torch.Tensor,
    how: str,
    generator: torch.Generator | None = None,
    priority: torch.Tensor | None = None,
) -> torch.Tensor:
    """Step 8: one winner per CM, by sampling ρ (`sample`) or argmax V with a random tie-break (`argmax`).

    Args:
        v, rho: (..., Q, K).
        how: `sample` or `argmax`.
        priority: fixed tie-break scores broadcastable to v (argmax only); None draws fresh random ones.

    Returns:
        (..., Q) long winner indices.
    """
    if how == "argmax" and priority is not None:
        r = priority.expand_as(v)
    else:
        r = torch.rand(rho.shape[:-1] if how == "sample" else v.shape, generator=generator, device=v.device)
    if how == "sample":
        # Inverse CDF: the winner is the number of cumulative probabilities below a uniform draw.
        cdf = rho.cumsum(-1)
        idx = (cdf < r[..., None] * cdf[..., -1:]).sum(-1)
        return idx.clamp(max=rho.shape[-1] - 1)
    tied = v >= v.amax(-1, keepdim=True)
    return (r + tied).argmax(-1)  # r < 1, so a tied cell always beats an untied one


def code_selection(
    terms: Sequence[tuple[torch.Tensor, torch.Tensor, float]],
    active: torch.Tensor,
    p: CSAParams,
    how: str,
    k: int,
    generator: torch.Generator | None = None,
    priority: torch.Tensor | None = None,
) -> CSAResult:
    """Steps 2–8 for a batch of inputs on a set of macs.

    Args:
        terms: (sums (B, M, Q·K), active counts (B, M), exponent) per input source; the first (U, or H in
            cued recall) always counts, the others (H, D) only where they have active inputs.
        active: (B, M) bool, macs inside their activation band (others get no code).
        p: CSA parameters.
        how: `sample` or `argmax`.
        k: cells per CM.
        generator: random source for sampling and tie-breaks.
        priority: (M, Q, K) fixed tie-break scores for argmax (None: random tie-break per call).
    """
    b, m, c = terms[0][0].shape
    shape = (b, m, c // k, k)
    v = evidence(
        [(normalise(s, n).view(shape), None if i == 0 else n > 0, e) for i, (s, n, e) in enumerate(terms)]
    )
    g = familiarity(v)
    # argmax needs no ρ (steps 5–7); skipping them saves most of the elementwise work in recognition
    rho = selection_probs(v, g, p) if how == "sample" else torch.empty(0, device=v.device)
    winners = select(v, rho, how, generator, priority)
    winners = torch.where(active[..., None], winners, torch.full_like(winners, -1))
    return CSAResult(winners, torch.where(active, g, torch.zeros_like(g)), v, rho, active)


def code_cells(winners: torch.Tensor, k: int) -> torch.Tensor:
    """Binary cell vector of codes: (B, M, Q) winners (-1 = no code) → (B, M·Q·K) float 0/1."""
    onehot = torch.nn.functional.one_hot(winners.clamp(min=0), k).to(torch.float32)
    onehot = onehot * (winners >= 0)[..., None]
    return onehot.reshape(winners.shape[0], -1)
