"""Synthetic trajectories with known accelerations: rigid rotation about the box centre, optionally under gravity."""

from __future__ import annotations

import math

import torch

BOX = ((0.0, 1.0), (0.0, 1.0))


def lattice(n_side: int, lo: float = 0.3, hi: float = 0.7) -> torch.Tensor:
    """[n_side², 2] points of a square lattice spanning [lo, hi]² (float64)."""
    axis = torch.linspace(lo, hi, n_side, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)


def rotating_block(
    frames: int,
    n_side: int = 8,
    omega: float = 0.02,
    gravity: float = 0.0,
    jitter: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:
    """[frames, n_side², 2] exact float64 positions of a block rotating by `omega` rad per frame about (0.5, 0.5)
    and falling with `gravity` per frame²; `jitter` perturbs the lattice once (the initial shape)."""
    g = torch.Generator().manual_seed(seed)
    x0 = lattice(n_side) + jitter * torch.randn(n_side * n_side, 2, generator=g, dtype=torch.float64)
    t = torch.arange(frames, dtype=torch.float64)
    c, s = torch.cos(omega * t), torch.sin(omega * t)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # [T, 2, 2]
    x = (x0 - 0.5) @ rot.transpose(1, 2) + 0.5
    x[..., 1] -= 0.5 * gravity * t[:, None] ** 2
    return x


def dataset(n_traj: int = 2, frames: int = 20, n_side: int = 8) -> torch.Tensor:
    """[n_traj, frames, n_side², 2] float32: rotating blocks of differing speeds and initial shapes."""
    return torch.stack(
        [rotating_block(frames, n_side, omega=0.01 + 0.01 * k, jitter=0.005, seed=k) for k in range(n_traj)]
    ).float()


def spacing(n_side: int = 8) -> float:
    """Lattice spacing of `lattice(n_side)`."""
    return 0.4 / (n_side - 1)


def unit_radius(n_side: int = 8) -> float:
    """A graph radius that gives each lattice point its 8 nearest neighbours (1.5 spacings)."""
    return 1.5 * spacing(n_side) * math.sqrt(1.0)
