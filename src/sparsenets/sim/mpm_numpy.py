"""Vectorised numpy MLS-MPM (APIC, quadratic B-splines, 3×3 stencil): the tested fallback of the taichi engine.

One substep, as in the spec:
    P2G:  scatter w·(m·v_p + (−dt·4·p_vol·τ/dx² + m·C_p)·dpos) and w·m to the 9 nodes
    grid: v = mv/m; v.y −= dt·g; zero the inward normal velocity of nodes within `bound` cells of an edge
    G2P:  v_p = Σ w·v_node; C_p = (4/dx²)·Σ w·v_node·dposᵀ; x_p += dt·v_p; update J or F
Scatter sums use `np.bincount`, so the result does not depend on thread timing.
"""

from __future__ import annotations

import numpy as np

from sparsenets.sim.materials import Material, update_deformation
from sparsenets.sim.scenes import Scene
from sparsenets.sim.trajectory import GridSetup

_OFFSETS = np.array([(i, j) for i in range(3) for j in range(3)], dtype=np.int64)  # [9, 2]
_OFFSETS_F = _OFFSETS.astype(np.float32)


def bspline_weights(x: np.ndarray, inv_dx: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadratic B-spline stencil of positions x [N, 2]: base node [N, 2] int64, fx [N, 2] (offset from base in
    cells), weights w [3, N, 2] (per dimension; they sum to 1 along axis 0)."""
    xs = x * np.float32(inv_dx)
    base = (xs - 0.5).astype(np.int64)
    fx = (xs - base).astype(np.float32)
    w = np.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])
    return base, fx, w.astype(np.float32)


def grid_update(mv: np.ndarray, m: np.ndarray, setup: GridSetup) -> np.ndarray:
    """Grid velocities [G, G, 2] from momenta mv [G, G, 2] and masses m [G, G]: divide, gravity, free-slip walls."""
    v = np.where(m[..., None] > 0, mv / np.where(m > 0, m, 1.0)[..., None], 0.0).astype(np.float32)
    v[..., 1] -= np.float32(setup.dt * setup.gravity) * (m > 0)
    idx = np.arange(setup.grid)
    lo, hi = idx <= setup.bound, idx >= setup.grid - setup.bound
    v[lo, :, 0] = np.maximum(v[lo, :, 0], 0.0)
    v[hi, :, 0] = np.minimum(v[hi, :, 0], 0.0)
    v[:, lo, 1] = np.maximum(v[:, lo, 1], 0.0)
    v[:, hi, 1] = np.minimum(v[:, hi, 1], 0.0)
    return v


class NumpyMPM:
    """The numpy solver (see `sparsenets.sim.trajectory.Solver`): state x, v float32 [N, 2]; C, F, τ [N, 2, 2];
    J [N]."""

    def __init__(self, scene: Scene, mat: Material, setup: GridSetup) -> None:
        self.mat, self.setup = mat, setup
        n = scene.n_particles
        self.x, self.v = scene.positions.astype(np.float32), scene.velocities.astype(np.float32)
        self.C = np.zeros((n, 2, 2), np.float32)
        self.F = np.tile(np.eye(2, dtype=np.float32), (n, 1, 1))
        self.J = np.ones(n, np.float32)
        self.tau = np.zeros((n, 2, 2), np.float32)  # Kirchhoff stress of the current state (zero at F = I)
        self._mass = 0.0

    def _one(self) -> None:
        # component-major [9, N] float32 arrays: trailing size-2 axes and float64 promotion cost 5× here
        s, n_grid, f32 = self.setup, self.setup.grid, np.float32
        dx, inv_dx, dt, m = f32(s.dx), float(s.grid), f32(s.dt), f32(s.p_mass)
        base, fx, w = bspline_weights(self.x, inv_dx)
        weight = w[_OFFSETS[:, 0], :, 0] * w[_OFFSETS[:, 1], :, 1]  # [9, N]
        d0 = (_OFFSETS_F[:, :1] - fx[None, :, 0]) * dx  # dpos, x and y components [9, N]
        d1 = (_OFFSETS_F[:, 1:] - fx[None, :, 1]) * dx
        A = f32(-dt * 4 * inv_dx * inv_dx * s.p_vol) * self.tau + m * self.C  # affine [N, 2, 2]
        node = ((base[:, 0] + _OFFSETS[:, :1]) * n_grid + base[:, 1] + _OFFSETS[:, 1:]).reshape(-1)
        mom0 = weight * (m * self.v[:, 0] + A[:, 0, 0] * d0 + A[:, 0, 1] * d1)
        mom1 = weight * (m * self.v[:, 1] + A[:, 1, 0] * d0 + A[:, 1, 1] * d1)
        size = n_grid * n_grid
        gm = np.bincount(node, weights=(weight * m).reshape(-1), minlength=size)
        gmv = np.stack([np.bincount(node, weights=q.reshape(-1), minlength=size) for q in (mom0, mom1)], -1)
        self._mass = float(gm.sum())
        gv = grid_update(gmv.reshape(n_grid, n_grid, 2), gm.reshape(n_grid, n_grid), s).reshape(size, 2)
        wg0, wg1 = weight * gv[node, 0].reshape(9, -1), weight * gv[node, 1].reshape(9, -1)
        self.v = np.stack([wg0.sum(0), wg1.sum(0)], -1).astype(np.float32)
        scale = f32(4 * inv_dx * inv_dx)
        C = [[(wg0 * d0).sum(0), (wg0 * d1).sum(0)], [(wg1 * d0).sum(0), (wg1 * d1).sum(0)]]
        self.C = (scale * np.moveaxis(np.array(C, dtype=np.float32), -1, 0)).astype(np.float32)
        # safety clamp keeping the 3×3 stencil on the grid; inactive while the walls hold (tested)
        self.x = np.clip(self.x + dt * self.v, s.dx, 1.0 - 2.0 * s.dx).astype(np.float32)
        self.tau = update_deformation(self.F, self.J, self.C, float(dt), self.mat)

    def substep(self, n: int = 1) -> None:
        """Advance `n` substeps."""
        for _ in range(n):
            self._one()

    def positions(self) -> np.ndarray:
        """Positions float32 [N, 2]."""
        return self.x.copy()

    def velocities(self) -> np.ndarray:
        """Velocities float32 [N, 2]."""
        return self.v.copy()

    def grid_mass(self) -> float:
        """Σ grid mass of the last P2G."""
        return self._mass
