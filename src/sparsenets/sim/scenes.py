"""Seeded initial conditions: one block of material (rectangle, disc or triangle) with a uniform velocity.

Particles are drawn uniformly inside the shape (rejection sampling from its bounding box), so the particle volume
is area / N and the density is 1 whatever N is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sparsenets.errors import SparsenetsError

WALLS = (0.05, 0.95)  # the box the walls enclose, in both dimensions
SHAPES = ("rectangle", "disc", "triangle")
MIN_PARTICLES = 16


@dataclass(frozen=True)
class Scene:
    """Initial state: positions and velocities float32 [N, 2], the block's area (for the particle volume)."""

    positions: np.ndarray
    velocities: np.ndarray
    area: float
    shape: str = "rectangle"

    @property
    def n_particles(self) -> int:
        """N."""
        return int(self.positions.shape[0])


def _inside(shape: str, p: np.ndarray) -> np.ndarray:
    """Which of the unit-box points p [K, 2] lie inside `shape` scaled to the unit box."""
    if shape == "rectangle":
        return np.ones(len(p), dtype=bool)
    if shape == "disc":
        return ((p - 0.5) ** 2).sum(-1) <= 0.25
    return p[:, 1] <= 1.0 - np.abs(2.0 * p[:, 0] - 1.0)  # isosceles triangle, apex up


_AREA_FRACTION = {"rectangle": 1.0, "disc": math.pi / 4.0, "triangle": 0.5}


def block_scene(
    n_particles: int,
    lower: tuple[float, float],
    size: tuple[float, float],
    velocity: tuple[float, float] = (0.0, 0.0),
    shape: str = "rectangle",
    seed: int = 0,
) -> Scene:
    """N particles uniform in `shape` inscribed in the box [lower, lower + size], all moving at `velocity`.

    Returns a Scene with positions/velocities float32 [N, 2].
    """
    if shape not in SHAPES:
        raise SparsenetsError(f"unknown scene shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    if n_particles < MIN_PARTICLES:
        raise SparsenetsError(f"n_particles must be at least {MIN_PARTICLES}, not {n_particles}")
    lo, sz = np.asarray(lower, dtype=np.float64), np.asarray(size, dtype=np.float64)
    if np.any(sz <= 0) or np.any(lo < WALLS[0]) or np.any(lo + sz > WALLS[1]):
        raise SparsenetsError(
            f"block {lower}+{size} must have positive size and lie inside the walls {WALLS}"
        )
    rng = np.random.default_rng(seed)
    unit = np.empty((0, 2))
    while len(unit) < n_particles:  # rejection sampling; at least half the box is inside every shape
        draw = rng.random((2 * n_particles, 2))
        unit = np.concatenate([unit, draw[_inside(shape, draw)]])
    pos = (lo + unit[:n_particles] * sz).astype(np.float32)
    vel = np.broadcast_to(np.asarray(velocity, dtype=np.float32), pos.shape).copy()
    return Scene(pos, vel, float(sz[0] * sz[1] * _AREA_FRACTION[shape]), shape)


def random_scene(seed: int, n_particles: int) -> Scene:
    """A seeded random block: shape, size (side 0.2–0.4), position inside the walls and velocity (each
    component ±1–2 m/s). Same seed → same scene."""
    rng = np.random.default_rng([seed, 2029])
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    size = rng.uniform(0.2, 0.4, size=2)
    lower = WALLS[0] + 0.02 + rng.random(2) * (WALLS[1] - WALLS[0] - 0.04 - size)
    speed = rng.uniform(1.0, 2.0, size=2) * rng.choice([-1.0, 1.0], size=2)
    return block_scene(
        n_particles, tuple(lower), tuple(size), tuple(speed), shape, seed=int(rng.integers(2**31))
    )
