"""Which singular-vector pairs an SST iteration trains: r distinct indices drawn from a distribution over σ."""

from __future__ import annotations

import torch

from sparsenets.errors import ConfigError

SAMPLING_MODES = ("mixture", "sigma", "uniform", "top")


def sampling_probabilities(s: torch.Tensor, mode: str = "mixture") -> torch.Tensor:
    """Probability of each singular index being drawn first.

    Args:
        s: singular values, shape (k,), all >= 0.
        mode: "mixture" ½(1/k + σ/Σσ) (never zero), "sigma" σ/Σσ, "uniform" 1/k, "top" (deterministic: the
            probabilities are returned as "sigma", `sample_indices` takes the r largest instead).

    Returns:
        p of shape (k,), float64, summing to 1.
    """
    if mode not in SAMPLING_MODES:
        raise ConfigError(f"unknown SST sampling mode {mode!r}; choose one of {SAMPLING_MODES}")
    k = s.shape[0]
    s = s.detach().double().clamp_min(0)
    uniform = torch.full_like(s, 1.0 / k)
    total = float(s.sum())
    by_sigma = s / total if total > 0 else uniform
    if mode == "mixture":
        return 0.5 * (uniform + by_sigma)
    if mode == "uniform":
        return uniform
    return by_sigma


def sample_indices(
    s: torch.Tensor, r: int, generator: torch.Generator, mode: str = "mixture"
) -> torch.Tensor:
    """Draw r distinct singular indices without replacement.

    Args:
        s: singular values, shape (k,).
        r: number of indices, 1 <= r <= k.
        generator: CPU generator (seeded identically on every rank, so all ranks draw the same set).
        mode: see `sampling_probabilities`.

    Returns:
        int64 tensor of shape (r,) on the CPU, distinct entries in [0, k).
    """
    k = s.shape[0]
    if not 1 <= r <= k:
        raise ConfigError(f"cannot sample {r} of {k} singular indices; r must be in [1, {k}]")
    p = sampling_probabilities(s.cpu(), mode)
    if mode == "top":
        return torch.argsort(p, descending=True, stable=True)[:r]
    if int((p > 0).sum()) < r:  # "sigma" after many σ clamped to 0: fall back to the never-zero mixture
        p = sampling_probabilities(s.cpu(), "mixture")
    return torch.multinomial(p, r, replacement=False, generator=generator)
