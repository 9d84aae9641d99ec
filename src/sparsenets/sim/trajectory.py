"""What both MPM engines share: the grid setup, the solver interface, engine lookup and `simulate`."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from sparsenets.errors import SparsenetsError
from sparsenets.sim.materials import Material, material
from sparsenets.sim.scenes import Scene

ENGINES = ("taichi", "numpy")
GRAVITY = 9.8
BOUND_CELLS = 3  # free-slip walls at x = 3·dx and 1 − 3·dx: nodes on or past them lose inward normal velocity
MIN_GRID = 8


@dataclass(frozen=True)
class GridSetup:
    """Discretisation constants of one run: grid nodes per side on [0, 1]², substep dt, particle volume/mass."""

    grid: int
    dt: float
    p_vol: float
    p_mass: float
    gravity: float = GRAVITY
    bound: int = BOUND_CELLS

    @property
    def dx(self) -> float:
        """Grid spacing 1 / grid."""
        return 1.0 / self.grid

    @property
    def walls(self) -> tuple[float, float]:
        """Where the free-slip walls stand (both dimensions): (bound·dx, 1 − bound·dx), ≈ (0.05, 0.95) at 64²."""
        return self.bound * self.dx, 1.0 - self.bound * self.dx

    @staticmethod
    def of(scene: Scene, grid: int, dt: float) -> GridSetup:
        """The setup for `scene`: particle volume = block area / N, density 1."""
        if grid < MIN_GRID:
            raise SparsenetsError(f"grid must be at least {MIN_GRID} nodes per side, not {grid}")
        if not 0.0 < dt <= 1e-2:
            raise SparsenetsError(f"dt must be in (0, 0.01] seconds, not {dt}")
        p_vol = scene.area / scene.n_particles
        return GridSetup(grid, dt, p_vol, p_vol)


class Solver(Protocol):
    """One running simulation; both engines implement this (state is float32, N particles)."""

    def substep(self, n: int = 1) -> None:
        """Advance `n` substeps of dt."""

    def positions(self) -> np.ndarray:
        """Particle positions float32 [N, 2] (a copy)."""

    def velocities(self) -> np.ndarray:
        """Particle velocities float32 [N, 2] (a copy)."""

    def grid_mass(self) -> float:
        """Σ of the grid node masses scattered by the last substep's P2G (float64 sum)."""


class Trajectory(NamedTuple):
    """positions float32 [T, N, 2] (frame 0 = the initial state); types int64 [N] (the material's type id)."""

    positions: np.ndarray
    types: np.ndarray


def engine_available(engine: str) -> bool:
    """Whether `engine` can run here (numpy always can; taichi when the package is installed)."""
    return engine == "numpy" or importlib.util.find_spec(engine) is not None


def make_solver(
    scene: Scene, mat: str | Material, grid: int = 64, dt: float = 2e-4, engine: str = "taichi"
) -> Solver:
    """A solver for `scene` made of `mat` on `engine` ("taichi" or "numpy").

    Raises SparsenetsError for an unknown engine, or one whose package is missing (naming the install command).
    """
    m, setup = material(mat), GridSetup.of(scene, grid, dt)
    if engine not in ENGINES:
        raise SparsenetsError(f"unknown MPM engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if not engine_available(engine):
        raise SparsenetsError(
            f"MPM engine '{engine}' is not installed; run: pip install taichi==1.7.4 (or use engine='numpy')"
        )
    if engine == "numpy":
        from sparsenets.sim.mpm_numpy import NumpyMPM

        return NumpyMPM(scene, m, setup)
    from sparsenets.sim.mpm_taichi import TaichiMPM

    return TaichiMPM(scene, m, setup)


def simulate(
    scene: Scene,
    mat: str | Material,
    frames: int,
    substeps: int = 25,
    dt: float = 2e-4,
    grid: int = 64,
    engine: str = "taichi",
) -> Trajectory:
    """Run MLS-MPM from `scene` and save every `substeps` substeps.

    Returns Trajectory(positions float32 [frames, N, 2], types int64 [N]); frame 0 is the scene itself, frame k
    is after k·substeps substeps (frame Δt = substeps·dt).
    Raises SparsenetsError on bad sizes or when the simulation produces a non-finite position.
    """
    if frames < 2 or substeps < 1:
        raise SparsenetsError(f"need frames >= 2 and substeps >= 1, got frames={frames}, substeps={substeps}")
    m = material(mat)
    solver = make_solver(scene, m, grid, dt, engine)
    out = np.empty((frames, scene.n_particles, 2), dtype=np.float32)
    out[0] = scene.positions
    for k in range(1, frames):
        solver.substep(substeps)
        out[k] = solver.positions()
        if not np.isfinite(out[k]).all():
            raise SparsenetsError(
                f"the {m.name} simulation produced NaN/inf at frame {k}; lower dt (now {dt}) or the initial speed"
            )
    return Trajectory(out, np.full(scene.n_particles, m.type_id, dtype=np.int64))
