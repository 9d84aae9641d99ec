"""2-D MLS-MPM particle simulation (core, no learning): water, jelly, sand and plasticine on taichi or numpy.

    from sparsenets.sim import random_scene, simulate
    scene = random_scene(seed=0, n_particles=512)          # a seeded block: shape, size, position, velocity
    traj = simulate(scene, "water", frames=5, engine="numpy")
    traj.positions.shape, traj.types.shape                 # (5, 512, 2) float32, (512,) int64

The default engine is taichi (CPU, compiled once per material and process, bitwise reproducible); "numpy" is a
vectorised fallback that matches it to float32 round-off. `make_solver` gives substep-level access (positions,
velocities, the grid mass of the last P2G). `gns_io` reads and writes the GNS `.npz` layout.
"""

from sparsenets.sim.gns_io import (
    GnsTrajectory,
    read_gns_metadata,
    read_gns_split,
    write_gns_metadata,
    write_gns_split,
)
from sparsenets.sim.materials import MATERIALS, Material, material
from sparsenets.sim.scenes import SHAPES, Scene, block_scene, random_scene
from sparsenets.sim.trajectory import (
    ENGINES,
    GridSetup,
    Solver,
    Trajectory,
    engine_available,
    make_solver,
    simulate,
)

__all__ = [
    "ENGINES",
    "MATERIALS",
    "SHAPES",
    "GnsTrajectory",
    "GridSetup",
    "Material",
    "Scene",
    "Solver",
    "Trajectory",
    "block_scene",
    "engine_available",
    "make_solver",
    "material",
    "random_scene",
    "read_gns_metadata",
    "read_gns_split",
    "simulate",
    "write_gns_metadata",
    "write_gns_split",
]
