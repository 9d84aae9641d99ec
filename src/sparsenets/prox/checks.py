"""Argument checks shared by the prox functions: one clear `SparsenetsError` per kind of bad input."""

from __future__ import annotations

import math
import operator

import torch

from sparsenets.errors import SparsenetsError


def check_k(k: int, m: int) -> int:
    """k must be an integer in 1..m (m groups)."""
    try:
        if isinstance(k, bool):
            raise TypeError
        k = operator.index(k)
    except TypeError:
        raise SparsenetsError(f"k must be an integer number of groups to keep; got {k!r}") from None
    if not 1 <= k <= m:
        raise SparsenetsError(f"k must be between 1 and the number of groups ({m}); got k={k}")
    return k


def check_tau(tau: float) -> float:
    """tau (the prox step, lr·λ) must be a finite number >= 0."""
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise SparsenetsError(f"tau must be a finite number >= 0 (step size × λ); got {tau}")
    return tau


def check_weights(weights: torch.Tensor | None, m: int, like: torch.Tensor) -> torch.Tensor | None:
    """weights: None (all ones) or m finite positive group weights; returned in float64 on like's device."""
    if weights is None:
        return None
    w = torch.as_tensor(weights).to(device=like.device, dtype=torch.float64).reshape(-1)
    if w.numel() != m:
        raise SparsenetsError(f"weights must hold one value per group ({m}); got {w.numel()}")
    if not bool(torch.isfinite(w).all()):
        raise SparsenetsError("weights contain NaN or inf; give finite positive group weights")
    if bool((w <= 0).any()):
        raise SparsenetsError(f"weights must be > 0; the smallest is {float(w.min())}")
    return w


def check_finite_norms(r: torch.Tensor) -> None:
    """Group norms are finite iff x is (one cheap reduction instead of a pass over x)."""
    if not math.isfinite(float(r.sum(dtype=torch.float64) if r.numel() < 1 << 20 else r.sum())):
        raise SparsenetsError("x contains NaN or inf; the prox is defined for finite inputs only")
