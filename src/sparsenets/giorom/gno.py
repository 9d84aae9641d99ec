"""The optional GNO → latent grid → GNO block, with the standard GINO kernel on x − y (not the query-blind one).

Encode: each grid point g averages κ_in([(g − y_j)/r, f_j]) over particles y_j within r_gno (empty points get 0).
Latent operator: two residual 3^d convolutions on the grid. Decode: particle i averages κ_out((x_i − g)/r) ⊙
z(g) over grid points within r_gno. Separate heads produce f from the node state and map the result back.
"""

from __future__ import annotations

import torch
from scipy.spatial import cKDTree
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.giorom.config import StepperConfig
from sparsenets.giorom.graph import radius_pairs
from sparsenets.giorom.layers import mean_aggregate, mlp


def grid_points(bounds: tuple[tuple[float, float], ...], n: int) -> torch.Tensor:
    """[n^d, d] points of a uniform grid with n points per side spanning `bounds` (corners included),
    ordered like a C-contiguous [n, ..., n] array."""
    axes = [torch.linspace(lo, hi, n) for lo, hi in bounds]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(bounds))


class GNOBlock(nn.Module):
    """Particles → latent grid → particles; maps node states h [M, H] at positions [M, d] to an update [M, H]."""

    def __init__(self, cfg: StepperConfig) -> None:
        super().__init__()
        c, d, n = cfg.grid_channels, cfg.dim, cfg.latent_grid
        self.radius, self.n, self.dim = cfg.gno_radius, n, d
        self.register_buffer("grid", grid_points(cfg.bounds, n), persistent=False)
        self._tree = cKDTree(self.grid.double().numpy())  # the grid never moves: one tree for its lifetime
        self.head_in = nn.Linear(cfg.hidden, c)
        self.kappa_in = mlp(d + c, c, c, layer_norm=False)
        conv = nn.Conv2d if d == 2 else nn.Conv3d
        self.latent = nn.ModuleList(conv(c, c, 3, padding=1) for _ in range(2))
        self.kappa_out = mlp(d, c, c, layer_norm=False)
        self.head_out = nn.Linear(c, cfg.hidden)

    def pairs(self, pos: torch.Tensor) -> torch.Tensor:
        """[2, E] (particle, grid point) pairs within r_gno; raises if a particle has no grid neighbour."""
        edges = radius_pairs(self.grid, pos, self.radius, query_tree=self._tree)
        if bool((torch.bincount(edges[0], minlength=pos.shape[0]) == 0).any()):
            raise SparsenetsError(
                "a particle has no latent-grid neighbour within r_gno: it left the box given as bounds; "
                "widen StepperConfig.bounds to hold every particle"
            )
        return edges

    def forward(self, h: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """h: [M, H] node states, pos: [M, d] positions. Returns [M, H], to be added to h."""
        edges = self.pairs(pos)
        part, cell = edges[0], edges[1]
        rel = (self.grid[cell] - pos[part]) / self.radius  # x − y with x the grid point, y the particle
        f = self.head_in(h)
        msg = self.kappa_in(torch.cat([rel, f[part]], dim=-1))
        count = torch.bincount(cell, minlength=self.grid.shape[0]).clamp_min(1).unsqueeze(1)
        z = mean_aggregate(msg, cell, 1.0 / count.to(msg.dtype))  # empty grid points stay 0
        z = z.T.reshape(1, -1, *([self.n] * self.dim))
        for conv in self.latent:
            z = z + torch.nn.functional.gelu(conv(z))
        z = z.reshape(z.shape[1], -1).T
        back = self.kappa_out(-rel) * z[cell]  # x − y with x the particle, y the grid point
        inv = 1.0 / torch.bincount(part, minlength=pos.shape[0]).clamp_min(1).unsqueeze(1).to(back.dtype)
        return self.head_out(mean_aggregate(back, part, inv))

    def covered(self, pos: torch.Tensor) -> tuple[bool, bool]:
        """(every particle has a grid neighbour, every occupied cell has a particle neighbour) for pos [M, d].

        A grid point's cell is occupied when it is the nearest grid point of some particle.
        """
        edges = radius_pairs(self.grid, pos, self.radius, query_tree=self._tree)
        particles_ok = bool((torch.bincount(edges[0], minlength=pos.shape[0]) > 0).all())
        seen = torch.bincount(edges[1], minlength=self.grid.shape[0]) > 0
        low, step = self.grid[0], (self.grid[-1] - self.grid[0]) / (self.n - 1)
        nearest = ((pos - low) / step).round().long().clamp(0, self.n - 1)
        strides = torch.tensor([self.n ** (self.dim - 1 - k) for k in range(self.dim)], device=pos.device)
        return particles_ok, bool(seen[(nearest * strides).sum(-1)].all())
