"""Generated MPM particle data sets (`mpm-water2d`, `mpm-jelly2d`, `mpm-sand2d`, `mpm-plasticine2d`).

    sparsenets data install mpm-water2d                     # default parameters; minutes on 2 cores
    python -m sparsenets.data.mpm water --n-particles 16384 # any other parameters
    ds = sparsenets.data.load("mpm-water2d", split="train") # ParticleSet, see below

Each set is simulated by `sparsenets.sim` (taichi, else numpy) from seeded random scenes: trajectory k of a set
uses scene seed (seed, k), and train/val/test take consecutive, disjoint k. Arrays are cached by their
parameters under `cache_dir()/arrays/` with a size + sha256 stamp (`sparsenets.data.arrays`), checked per split
at load. Velocities and accelerations in the metadata are per-frame differences (GNS convention, Δt = 1 frame).
`export_gns` writes a set in the GNS `.npz` layout for GNS-style code.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sparsenets.data.arrays import arrays_dir, read_arrays, read_stamp, write_arrays
from sparsenets.data.sources import Log
from sparsenets.errors import DataNotFoundError, SparsenetsError
from sparsenets.files import sha256_json

SPLITS = ("train", "val", "test")
MATERIALS = ("water", "jelly", "sand", "plasticine")
MIN_PARTICLES, MIN_FRAMES = 64, 8  # a GNS window needs 6 positions and a target
RADIUS_PER_SPACING = 2.75  # default graph radius ≈ 24 neighbours at uniform density
FORMAT_VERSION = 1  # bump when the simulator changes, so old caches are not reused
DT, GRID = 2e-4, 64
# substeps of DT per saved frame; jelly's elastic ringing (period ≈ 4 frames at 25) aliases at coarser frames
FRAME_SUBSTEPS = {"water": 25, "jelly": 10, "sand": 25, "plasticine": 25}
FIRST_SUBSTEPS = 25  # every set's frame rate before FRAME_SUBSTEPS: such sets keep their cache names


class ParticleSet(NamedTuple):
    """One split: positions float32 [n_traj, T, N, 2], types int64 [n_traj, N], reference float32 [n_traj, N, 2]
    (= positions[:, 0]), random_ids / fps_ids int64 [n_traj, N] (orderings: the first M entries are a random /
    farthest-point subset, nested in M), metadata dict (bounds, dim, dt, N, T, material, radius, vel/acc
    mean/std over all training frame differences, params)."""

    positions: torch.Tensor
    types: torch.Tensor
    reference: torch.Tensor
    random_ids: torch.Tensor
    fps_ids: torch.Tensor
    metadata: dict[str, Any]


@dataclass(frozen=True)
class MPMParams:
    """The parameters a generated set is cached by."""

    material: str
    n_particles: int = 4096
    frames: int = 160
    n_train: int = 24
    n_val: int = 4
    n_test: int = 4
    seed: int = 0
    substeps: int | None = None  # substeps of DT per frame; None: the material's FRAME_SUBSTEPS

    def __post_init__(self) -> None:
        if self.material not in MATERIALS:
            raise SparsenetsError(
                f"unknown MPM material {self.material!r}; choose one of: {', '.join(MATERIALS)}"
            )
        if self.substeps is None:
            object.__setattr__(self, "substeps", FRAME_SUBSTEPS[self.material])
        if not isinstance(self.substeps, int) or self.substeps < 1:
            raise SparsenetsError(
                f"an MPM set needs substeps >= 1 per frame (an integer), got {self.substeps!r}"
            )
        if self.n_particles < MIN_PARTICLES or self.frames < MIN_FRAMES:
            raise SparsenetsError(
                f"an MPM set needs n_particles >= {MIN_PARTICLES} and frames >= {MIN_FRAMES}, "
                f"got {self.n_particles} and {self.frames}"
            )
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise SparsenetsError("an MPM set needs at least one trajectory in each of train, val and test")

    @property
    def frame_dt(self) -> float:
        """Seconds between saved frames (substeps × DT)."""
        return self.substeps * DT

    @property
    def name(self) -> str:
        """Registry name, e.g. mpm-water2d."""
        return f"mpm-{self.material}2d"

    def counts(self) -> dict[str, int]:
        """Trajectories per split."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}

    def folder(self) -> Path:
        """The cache folder of exactly these parameters."""
        p = self
        frames = f"{p.frames}f" + ("" if p.substeps == FIRST_SUBSTEPS else f"x{p.substeps}")
        key = f"{p.n_particles}p-{frames}-{p.n_train}-{p.n_val}-{p.n_test}-s{p.seed}-v{FORMAT_VERSION}"
        return arrays_dir(f"{p.name}-{key}")

    def command(self) -> str:
        """The shell command that generates this set."""
        default = asdict(MPMParams(self.material))
        extra = [f"--{k.replace('_', '-')} {v}" for k, v in asdict(self).items() if v != default[k]]
        if not extra:
            return f"sparsenets data install {self.name}"
        return f"python -m sparsenets.data.mpm {self.material} {' '.join(extra)}"


def farthest_point_order(x: np.ndarray) -> np.ndarray:
    """Farthest-point ordering of points x [N, d] from the one nearest their centroid: int64 [N], a permutation
    whose first M entries are the greedy FPS subset of size M for every M."""
    n = len(x)
    order = np.empty(n, dtype=np.int64)
    dist = np.full(n, np.inf)
    cur = int(np.argmin(((x - x.mean(0)) ** 2).sum(-1)))
    for i in range(n):
        order[i] = cur
        dist = np.minimum(dist, ((x - x[cur]) ** 2).sum(-1))
        dist[cur] = -1.0  # chosen points never win again, even among duplicates
        cur = int(np.argmax(dist))
    return order


def _scene_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _progress(total: int, label: str, log: Log) -> Any:
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=label, unit="traj")
    except ImportError:  # a line per trajectory instead

        class _Lines:
            def __init__(self) -> None:
                self.done = 0

            def update(self, n: int = 1) -> None:
                self.done += n
                log(f"{label}: trajectory {self.done}/{total}")

            def close(self) -> None:
                pass

        return _Lines()


def _frame_stats(positions: np.ndarray) -> np.ndarray:
    """Rows: vel mean, vel std, acc mean, acc std [4, d] over every frame difference of positions [n, T, N, d]."""
    sums = np.zeros((2, 3, positions.shape[-1]))  # (vel, acc) × (count, Σ, Σ²)
    for traj in positions:  # one trajectory at a time keeps the float64 copies small
        vel = np.diff(traj.astype(np.float64), axis=0)
        for row, q in enumerate((vel, np.diff(vel, axis=0))):
            q = q.reshape(-1, q.shape[-1])
            sums[row] += [np.full(q.shape[-1], len(q)), q.sum(0), (q * q).sum(0)]
    mean = sums[:, 1] / sums[:, 0]
    std = np.sqrt(np.maximum(sums[:, 2] / sums[:, 0] - mean**2, 0.0))
    return np.stack([mean[0], std[0], mean[1], std[1]])


def generate(material: str, log: Log = print, engine: str | None = None, **params: Any) -> Path:
    """Simulate and cache the set of `material` with `params` (see MPMParams); a complete cache is kept.

    Returns the cache folder. Raises SparsenetsError on bad params or a simulation that produced NaN.
    """
    from sparsenets.sim import GridSetup, engine_available, random_scene, simulate

    p = MPMParams(material, **params)
    folder = p.folder()
    if read_stamp(folder) is not None:
        log(f"ok {p.name} ({folder})")
        return folder
    engine = engine or ("taichi" if engine_available("taichi") else "numpy")
    total = p.n_train + p.n_val + p.n_test
    bar, arrays, spacing, k = _progress(total, f"{p.name} ({engine})", log), {}, [], 0
    try:
        for split, count in p.counts().items():
            pos = np.empty((count, p.frames, p.n_particles, 2), np.float32)
            rand, fps = np.empty((2, count, p.n_particles), np.int64)
            for i in range(count):
                scene = random_scene(_scene_seed(p.seed, k), p.n_particles)
                traj = simulate(scene, material, p.frames, p.substeps, DT, GRID, engine)
                pos[i], types = traj.positions, traj.types
                rand[i] = np.random.default_rng([p.seed, k, 1]).permutation(p.n_particles)
                fps[i] = farthest_point_order(scene.positions)
                if split == "train":
                    spacing.append(np.sqrt(scene.area / p.n_particles))
                k += 1
                bar.update(1)
            arrays |= {f"positions_{split}": pos, f"random_ids_{split}": rand, f"fps_ids_{split}": fps}
            arrays[f"types_{split}"] = np.tile(types, (count, 1))
    finally:
        bar.close()
    mean_spacing = float(np.mean(spacing))
    extra = np.array([[RADIUS_PER_SPACING * mean_spacing, mean_spacing]])
    arrays["stats"] = np.concatenate([_frame_stats(arrays["positions_train"]), extra])
    write_arrays(folder, arrays, sha256_json(asdict(p)))
    bounds = GridSetup(GRID, DT, 1.0, 1.0).walls
    log(
        f"generated {p.name}: {total} trajectories × {p.frames} frames × {p.n_particles} particles into {folder}"
    )
    log(f"walls {bounds[0]:.4f}..{bounds[1]:.4f}; radius {extra[0, 0]:.4f}")
    return folder


def _metadata(p: MPMParams, stats: np.ndarray) -> dict[str, Any]:
    from sparsenets.sim import GridSetup

    lo, hi = GridSetup(GRID, DT, 1.0, 1.0).walls
    return {
        "name": p.name,
        "material": p.material,
        "bounds": [[lo, hi], [lo, hi]],
        "dim": 2,
        "dt": p.frame_dt,
        "substeps": p.substeps,
        "substep_dt": DT,
        "grid": GRID,
        "N": p.n_particles,
        "T": p.frames,
        "radius": float(stats[4, 0]),
        "mean_spacing": float(stats[4, 1]),
        "vel_mean": stats[0].tolist(),
        "vel_std": stats[1].tolist(),
        "acc_mean": stats[2].tolist(),
        "acc_std": stats[3].tolist(),
        "params": asdict(p),
    }


def load_particles(
    material: str,
    split: str = "train",
    n_particles: int = 4096,
    frames: int = 160,
    n_train: int = 24,
    n_val: int = 4,
    n_test: int = 4,
    seed: int = 0,
    substeps: int | None = None,
) -> ParticleSet:
    """One split of a generated set as a ParticleSet (shapes in its docstring).

    Raises DataNotFoundError naming the command that generates exactly these parameters when they are not
    cached, SparsenetsError when a cached file fails its stamp.
    """
    p = MPMParams(material, n_particles, frames, n_train, n_val, n_test, seed, substeps)
    if split not in SPLITS:
        raise SparsenetsError(f"dataset '{p.name}' has splits {', '.join(SPLITS)}, not '{split}'")
    folder = p.folder()
    if read_stamp(folder) is None:
        raise DataNotFoundError(f"dataset '{p.name}' with {asdict(p)} is not generated; run: {p.command()}")
    keys = [f"{k}_{split}" for k in ("positions", "types", "random_ids", "fps_ids")]
    got = read_arrays(folder, [*keys, "stats"], p.name)
    pos = torch.from_numpy(got[keys[0]])
    return ParticleSet(
        pos,
        torch.from_numpy(got[keys[1]]),
        pos[:, 0].clone(),
        torch.from_numpy(got[keys[2]]),
        torch.from_numpy(got[keys[3]]),
        _metadata(p, got["stats"]),
    )


def export_gns(material: str, folder: Path | str, **params: Any) -> Path:
    """Write a generated set in the GNS layout (train/valid/test.npz + metadata.json, `sparsenets.sim.gns_io`)
    so GNS-style code can read it; returns `folder`. Raises like `load_particles` when the set is missing."""
    from sparsenets.sim.gns_io import GnsTrajectory, write_gns_metadata, write_gns_split

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, gns_name in zip(SPLITS, ("train", "valid", "test")):
        ds = load_particles(material, split, **params)
        trajs = [GnsTrajectory(p.numpy(), t.numpy()) for p, t in zip(ds.positions, ds.types)]
        write_gns_split(folder / f"{gns_name}.npz", trajs)
    meta = ds.metadata
    gns_keys = ("bounds", "dim", "dt", "vel_mean", "vel_std", "acc_mean", "acc_std")
    extra = {"sequence_length": meta["T"], "default_connectivity_radius": meta["radius"]}
    write_gns_metadata(folder, {**{k: meta[k] for k in gns_keys}, **extra})
    return folder


def params_folder(material: str) -> Path:
    """The cache folder of the default parameters (what `sparsenets data verify` checks)."""
    return MPMParams(material).folder()


def main(argv: list[str] | None = None) -> int:
    """`python -m sparsenets.data.mpm MATERIAL [--n-particles N ...]`: generate one set; 2 on bad input."""
    ap = argparse.ArgumentParser(prog="python -m sparsenets.data.mpm", description="generate an MPM data set")
    ap.add_argument("material", choices=MATERIALS)
    for key, default in asdict(MPMParams("water")).items():
        if key != "material":  # substeps defaults to the material's own frame rate
            ap.add_argument(
                f"--{key.replace('_', '-')}", type=int, default=None if key == "substeps" else default
            )
    ap.add_argument("--engine", choices=("taichi", "numpy"), default=None)
    args = vars(ap.parse_args(argv))
    try:
        generate(args.pop("material"), engine=args.pop("engine"), **args)
    except SparsenetsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
