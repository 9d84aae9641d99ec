"""Training batches for `sparsenets.train.Trainer`: random access by global step, so resumed runs see the same data.

`WindowBatches` draws (trajectory, frame) history windows at fixed particle ids with random-walk noise;
`DecoderBatches` draws (sparse state, dense queries) pairs of one ground-truth frame for the kernel decoder.
"""

from __future__ import annotations

import torch

from sparsenets.errors import ConfigError
from sparsenets.giorom.config import StepperConfig
from sparsenets.giorom.features import corrected_target, random_walk_noise, require_finite
from sparsenets.giorom.graph import radius_graph, require_neighbours
from sparsenets.train import dist

Sample = dict[str, torch.Tensor]


def _per_trajectory(x: torch.Tensor, n_traj: int, name: str) -> torch.Tensor:
    # one id list (or type list) shared by every trajectory is repeated for each
    if x.dim() == 1:
        return x.unsqueeze(0).expand(n_traj, -1)
    if x.dim() != 2 or x.shape[0] != n_traj:
        raise ConfigError(f"{name} must be [{n_traj}, K] or [K], got {tuple(x.shape)}")
    return x


def _check_positions(positions: torch.Tensor, min_frames: int) -> None:
    if positions.dim() != 4:
        raise ConfigError(f"positions must be [n_traj, T, N, d], got {tuple(positions.shape)}")
    if positions.shape[1] < min_frames:
        raise ConfigError(f"trajectories have {positions.shape[1]} frames; need at least {min_frames}")
    require_finite(positions, "positions")


def _check_ids(ids: torch.Tensor, n: int) -> None:
    if ids.shape[1] > n:
        raise ConfigError(
            f"the data set has {n} particles, too few for {ids.shape[1]} sampled ones; request M <= {n}"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ConfigError(f"particle ids must lie in [0, {n})")
    if any(row.unique().numel() != row.numel() for row in ids):
        raise ConfigError("particle ids repeat within a trajectory; give each particle once")


def gather(positions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """positions [n_traj, T, N, d] at ids [n_traj, M] -> [n_traj, T, M, d]."""
    index = ids[:, None, :, None].expand(-1, positions.shape[1], -1, positions.shape[3])
    return torch.gather(positions, 2, index)


TARGETS = ("clean", "gns")


class WindowBatches:
    """Noisy history windows at fixed particle ids: `batches(step) -> sample` for the stepper's loss.

    Args:
        positions: [n_traj, T, N, d] trajectories (T >= C + 2).
        types: [n_traj, N] or [N] particle types.
        ids: [n_traj, M] or [M] sampled particle ids (all N: `torch.arange(N)`).
        cfg: the stepper's config (history C, radius R, self-loops, noise σ).
        batch_size: windows per step (each a disjoint graph in one sample).
        seed: base seed; step s draws from a generator seeded with (seed, s).
        target: "clean" (the spec's): the acceleration that takes the noisy window to the clean x_{t+1}, so the
            model also undoes the position noise; "gns": GNS's own convention, x_{t+1} shifted by the last input
            position's noise, so only the velocity noise is corrected (a far lower loss floor: the position noise,
            ~3.3σ at C = 5, is not in the target).

    A sample holds `pos` [B·M, C + 1, d] noisy windows, `types` [B·M], `target` [B·M, d] corrected accelerations
    and `graph` [2, E] built on the noisy last positions. Under DDP each rank takes windows rank::world.
    """

    def __init__(
        self,
        positions: torch.Tensor,
        types: torch.Tensor,
        ids: torch.Tensor,
        cfg: StepperConfig,
        batch_size: int = 2,
        seed: int = 0,
        target: str = "clean",
    ) -> None:
        c = cfg.history
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
        _check_positions(positions, c + 2)
        n_traj, n = positions.shape[0], positions.shape[2]
        ids = _per_trajectory(ids.long(), n_traj, "ids")
        _check_ids(ids, n)
        if positions.shape[3] != cfg.dim:
            raise ConfigError(f"positions are {positions.shape[3]}-d but the config's bounds are {cfg.dim}-d")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.pos = gather(positions.float(), ids)
        self.types = torch.gather(_per_trajectory(types.long(), n_traj, "types"), 1, ids)
        if self.types.numel() and not 0 <= int(self.types.min()) <= int(self.types.max()) < cfg.n_types:
            raise ConfigError(f"particle types must lie in [0, {cfg.n_types}); raise StepperConfig.n_types")
        for k in range(n_traj):
            require_neighbours(self.pos[k, 0], cfg.radius, f"sampled particles of trajectory {k}")
        self.cfg, self.batch_size, self.seed, self.target = cfg, batch_size, seed, target

    def __call__(self, step: int) -> Sample:
        """The sample of global step `step` (see the class docstring for shapes)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        n_traj, n_frames, m = self.pos.shape[:3]
        c = self.cfg.history
        traj = torch.randint(n_traj, (self.batch_size,), generator=g)
        last = torch.randint(c, n_frames - 1, (self.batch_size,), generator=g)
        frames = last[:, None] + torch.arange(-c, 2)  # [B, C + 2]: the window and the next frame
        seq = self.pos[traj[:, None], frames].transpose(1, 2)  # [B, M, C + 2, d]
        window = seq[:, :, :-1]
        noise = random_walk_noise(window, self.cfg.stats.noise_std, g)
        noisy = window + noise
        shift = noise[:, :, -1] if self.target == "gns" else 0.0  # GNS keeps the last position's noise
        target = corrected_target(noisy, seq[:, :, -1] + shift)
        info = dist.current()
        keep = torch.arange(info.rank, self.batch_size, info.world_size)
        graphs = [
            radius_graph(noisy[b, :, -1], self.cfg.radius, self.cfg.self_loops) + i * m
            for i, b in enumerate(keep.tolist())
        ]
        return {
            "pos": noisy[keep].flatten(0, 1),
            "types": self.types[traj[keep]].flatten(),
            "target": target[keep].flatten(0, 1),
            "graph": torch.cat(graphs, dim=1),
        }


class DecoderBatches:
    """One ground-truth frame per step for the decoder: sparse (X, x) and a random subset of dense queries.

    Args:
        positions: [n_traj, T, N, d] trajectories; reference X = positions[:, 0] unless given.
        ids: [n_traj, M] or [M] sparse particle ids.
        n_query: dense query points per sample (<= N).
        reference: optional [n_traj, N, d] reference coordinates.
        seed: base seed.

    A sample holds `reference` [M, d], `pos` [M, d] (sparse X and x(t)), `queries` [Q, d] and `target` [Q, d].
    """

    def __init__(
        self,
        positions: torch.Tensor,
        ids: torch.Tensor,
        n_query: int,
        reference: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        _check_positions(positions, 1)
        n_traj, n = positions.shape[0], positions.shape[2]
        self.ids = _per_trajectory(ids.long(), n_traj, "ids")
        _check_ids(self.ids, n)
        if not 1 <= n_query <= n:
            raise ConfigError(f"n_query must be in [1, {n}], got {n_query}")
        self.positions = positions.float()
        self.reference = (reference if reference is not None else positions[:, 0]).float()
        require_finite(self.reference, "reference coordinates")
        self.n_query, self.seed = n_query, seed

    def __call__(self, step: int) -> Sample:
        """The sample of global step `step` (see the class docstring for shapes)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        k = int(torch.randint(self.positions.shape[0], (1,), generator=g))
        t = int(torch.randint(self.positions.shape[1], (1,), generator=g))
        q = torch.randperm(self.positions.shape[2], generator=g)[: self.n_query]
        ids = self.ids[k]
        return {
            "reference": self.reference[k, ids],
            "pos": self.positions[k, t, ids],
            "queries": self.reference[k, q],
            "target": self.positions[k, t, q],
        }
