"""Binary test patterns: random sparse inputs, controlled-overlap variants, moved bits and occlusion."""

from __future__ import annotations

import torch

from sparsenets.errors import SparsenetsError


def random_patterns(n: int, size: int, active: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, size) 0/1 float patterns with exactly `active` ones each, uniformly at random."""
    if not 0 < active <= size:
        raise SparsenetsError(f"active must lie in [1, size={size}], got {active}")
    idx = torch.rand(n, size, generator=generator).argsort(1)[:, :active]
    return torch.zeros(n, size).scatter_(1, idx, 1.0)


def move_bits(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Move round(fraction·|x|) active bits of each row to random inactive positions (density kept).

    (N, D) 0/1 → (N, D) 0/1; the result shares exactly |x| − moved bits with x.
    """
    if not 0.0 <= fraction <= 1.0:
        raise SparsenetsError(f"fraction must lie in [0, 1], got {fraction}")
    out = x.clone()
    for i in range(len(x)):
        on = torch.nonzero(x[i]).flatten()
        off = torch.nonzero(x[i] == 0).flatten()
        m = min(round(fraction * len(on)), len(off))
        if m == 0:
            continue
        out[i, on[torch.randperm(len(on), generator=generator)[:m]]] = 0
        out[i, off[torch.randperm(len(off), generator=generator)[:m]]] = 1
    return out


def occlude(x: torch.Tensor, keep: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep a random fraction `keep` of each row's active bits (a partial cue); (N, D) → (N, D)."""
    out = torch.zeros_like(x)
    for i in range(len(x)):
        on = torch.nonzero(x[i]).flatten()
        m = max(1, round(keep * len(on)))
        out[i, on[torch.randperm(len(on), generator=generator)[:m]]] = 1
    return out


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Jaccard similarity of 0/1 rows; (N, D), (N, D) → (N,)."""
    inter = (a * b).sum(1)
    union = ((a + b) > 0).sum(1).clamp(min=1)
    return inter / union
