"""Typed, validated configs of the GIOROM stepper and decoders (spec: ../shared/specs/giorom.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sparsenets.errors import ConfigError

Bounds = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Statistics:
    """Per-dimension mean and std of frame velocities and accelerations over all training frames (Δt = 1 frame).

    Each field is a tuple of d floats; `noise_std` is the random-walk σ used in training (0 for none).
    """

    vel_mean: tuple[float, ...]
    vel_std: tuple[float, ...]
    acc_mean: tuple[float, ...]
    acc_std: tuple[float, ...]
    noise_std: float = 0.0

    def validate(self, dim: int) -> None:
        """Raise ConfigError unless every tuple has `dim` finite entries and every std is > 0."""
        for name in ("vel_mean", "vel_std", "acc_mean", "acc_std"):
            values = getattr(self, name)
            if len(values) != dim or not all(math.isfinite(v) for v in values):
                raise ConfigError(f"Statistics.{name} must hold {dim} finite floats, got {values}")
        if min(self.vel_std) <= 0 or min(self.acc_std) <= 0:
            raise ConfigError("Statistics stds must be > 0; compute them with giorom.statistics(positions)")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ConfigError(f"Statistics.noise_std must be a finite float >= 0, got {self.noise_std}")


@dataclass(frozen=True)
class StepperConfig:
    """The interaction-network stepper: GIOROM's (2 + 2 message passing, optional latent grid) or the full GNS.

    Attributes:
        stats: velocity/acceleration statistics (normalisation) and the training noise σ.
        bounds: walls per dimension, ((low, high), ...) of length d.
        radius: connectivity radius R of the particle graph (enlarge it as R_full·(N/M)^(1/d) for M sampled).
        history: C, the number of velocities in the input window (C + 1 positions).
        n_types: number of particle types; type_embedding: width of their embedding.
        hidden: latent width; n_mp: message-passing layers (GNS: 10; GIOROM: 4, split around the grid block).
        self_loops: include i -> i edges.
        latent_grid: points per side of the optional GNO latent grid (0: no GNO block).
        r_gno: GNO radius; 0 picks the smallest allowed, (√d/2)·h_grid·1.01.
        grid_channels: width of the GNO input head and the latent grid.
        acc_history: also feed the C − 1 past accelerations, normalised by the acceleration scale: the same
            window re-expressed, at the scale of the target instead of ~1/10 of the velocity features' spread.
    """

    stats: Statistics
    bounds: Bounds
    radius: float
    history: int = 5
    n_types: int = 9
    type_embedding: int = 16
    hidden: int = 128
    n_mp: int = 4
    self_loops: bool = True
    latent_grid: int = 0
    r_gno: float = 0.0
    grid_channels: int = 32
    acc_history: bool = False

    @property
    def dim(self) -> int:
        """Number of space dimensions d."""
        return len(self.bounds)

    @property
    def grid_spacing(self) -> float:
        """Largest spacing h_grid of the latent grid over the dimensions (0 without a grid)."""
        if not self.latent_grid:
            return 0.0
        return max(hi - lo for lo, hi in self.bounds) / (self.latent_grid - 1)

    @property
    def gno_radius(self) -> float:
        """The GNO radius in use: r_gno, or the smallest that covers every point of the box."""
        return self.r_gno or 1.01 * math.sqrt(self.dim) / 2 * self.grid_spacing

    def with_radius(self, radius: float) -> StepperConfig:
        """A copy with another graph radius (e.g. R_sparse = R_full·(N/M)^(1/d))."""
        return replace(self, radius=radius)

    def __post_init__(self) -> None:
        validate_bounds(self.bounds)
        self.stats.validate(self.dim)
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ConfigError(f"radius must be a finite float > 0, got {self.radius}")
        for name in ("history", "n_types", "type_embedding", "hidden", "n_mp", "grid_channels"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"StepperConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_grid == 1 or self.latent_grid < 0:
            raise ConfigError(
                f"latent_grid must be 0 (no grid) or >= 2 points per side, got {self.latent_grid}"
            )
        if self.latent_grid and self.n_mp < 2:
            raise ConfigError("a latent grid sits between message-passing layers: n_mp must be >= 2")
        if self.latent_grid and self.r_gno and self.r_gno < math.sqrt(self.dim) / 2 * self.grid_spacing:
            raise ConfigError(
                f"r_gno {self.r_gno} leaves particles without a grid neighbour; use >= (√d/2)·h_grid = "
                f"{math.sqrt(self.dim) / 2 * self.grid_spacing:.4g} (or 0 for the smallest allowed)"
            )


@dataclass(frozen=True)
class DecoderConfig:
    """The kernel decoder: splat sparse [f, 1, u] to a reference-space grid, Shepard-normalise, residual MLP.

    Attributes:
        bounds: the reference-space box ((low, high), ...) that holds every X (sparse and query).
        grid: grid points per side.
        smoothing: std in voxels of the Gaussian that spreads the splat (0: bilinear splat only).
        features: width of the learned per-particle feature f = gelu(Linear(u)).
        hidden: width of the residual MLP; pe_levels: sin/cos encodings of X at 2^k·π, k < pe_levels.
        min_density: below it a read point counts as empty (its Shepard mean is 0).
        scale: typical displacement |x(t) − X| of the data (e.g. its std over training frames); the networks see
            displacements in these units, so the residual MLP trains at O(1) magnitudes.
        activation: "gelu" (the reference's) or "relu" (about 4x cheaper per query on CPUs without fast erf).
    """

    bounds: Bounds
    grid: int = 64
    smoothing: float = 1.5
    features: int = 8
    hidden: int = 64
    pe_levels: int = 3
    min_density: float = 1e-5
    scale: float = 1.0
    activation: str = "gelu"

    @property
    def dim(self) -> int:
        """Number of space dimensions d."""
        return len(self.bounds)

    def __post_init__(self) -> None:
        validate_bounds(self.bounds)
        if self.grid < 2:
            raise ConfigError(f"DecoderConfig.grid must be >= 2 points per side, got {self.grid}")
        if not (math.isfinite(self.smoothing) and self.smoothing >= 0):
            raise ConfigError(f"DecoderConfig.smoothing must be a finite float >= 0, got {self.smoothing}")
        for name in ("features", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"DecoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"DecoderConfig.scale must be a finite float > 0, got {self.scale}")
        if self.activation not in ("gelu", "relu"):
            raise ConfigError(f"DecoderConfig.activation must be 'gelu' or 'relu', got {self.activation!r}")
        if self.pe_levels < 0 or not self.min_density > 0:
            raise ConfigError("DecoderConfig needs pe_levels >= 0 and min_density > 0")


def validate_bounds(bounds: Bounds) -> None:
    """Raise ConfigError unless `bounds` is ((low, high), ...) for d = 2 or 3 with finite low < high."""
    if len(bounds) not in (2, 3):
        raise ConfigError(f"bounds must give (low, high) for 2 or 3 dimensions, got {bounds}")
    for pair in bounds:
        if len(pair) != 2 or not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]:
            raise ConfigError(f"each bound must be (low, high) with finite low < high, got {pair}")
