"""Receptive fields: which source units (pixels or lower macs) feed each mac of a level.

A receptive-field table is a long tensor (M, r) of source-unit indices, padded with -1 where macs have
fewer than r units. `expand_to_cells` turns a table over macs into one over their Q·K cells.
"""

from __future__ import annotations

import math

import torch

from sparsenets.errors import SparsenetsError


def pad_table(rows: list[list[int]]) -> torch.Tensor:
    """Stack index lists of unequal length into an (M, r) long tensor padded with -1."""
    if not rows or any(len(r) == 0 for r in rows):
        raise SparsenetsError("every mac needs a non-empty receptive field; widen the radius or patch")
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def patch_fields(height: int, width: int, patch: int, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Square patches of a (height, width) image on a regular grid (row-major pixel indices).

    Returns:
        (M, patch²) long pixel indices and the (rows, cols) mac grid.
    """
    if patch < 1 or stride < 1 or patch > min(height, width):
        raise SparsenetsError(
            f"patch {patch} with stride {stride} does not fit a {height}x{width} input; "
            "use 1 <= patch <= min(height, width) and stride >= 1"
        )
    starts_r = list(range(0, height - patch + 1, stride))
    starts_c = list(range(0, width - patch + 1, stride))
    rows = [
        [(r0 + dr) * width + c0 + dc for dr in range(patch) for dc in range(patch)]
        for r0 in starts_r
        for c0 in starts_c
    ]
    return torch.tensor(rows, dtype=torch.long), (len(starts_r), len(starts_c))


def grid_positions(rows: int, cols: int) -> torch.Tensor:
    """(rows·cols, 2) unit centres of a grid, normalised to [0, 1] per axis (sparseypy's convention)."""
    r = (torch.arange(rows, dtype=torch.float32) + 0.5) / rows
    c = (torch.arange(cols, dtype=torch.float32) + 0.5) / cols
    return torch.stack(torch.meshgrid(r, c, indexing="ij"), -1).reshape(-1, 2)


def radius_fields(sources: torch.Tensor, targets: torch.Tensor, radius: float) -> torch.Tensor:
    """Source units within Euclidean `radius` of each target (normalised positions).

    Args:
        sources: (S, 2) positions; targets: (M, 2) positions.

    Returns:
        (M, r) long source indices padded with -1.
    """
    d = torch.cdist(targets, sources)
    return pad_table([torch.nonzero(row <= radius).flatten().tolist() for row in d])


def all_fields(n_targets: int, n_sources: int) -> torch.Tensor:
    """Every target sees every source: (M, S)."""
    return torch.arange(n_sources).expand(n_targets, n_sources).clone()


def expand_to_cells(table: torch.Tensor, cells_per_unit: int) -> torch.Tensor:
    """A table over macs → the same table over their cells; (M, r) → (M, r·cells_per_unit), -1 kept."""
    cells = table[..., None] * cells_per_unit + torch.arange(cells_per_unit)
    cells = torch.where(table[..., None] >= 0, cells, torch.full_like(cells, -1))
    return cells.reshape(table.shape[0], -1)


def side_of(n: int) -> int:
    """The side of a square of n units (SparsenetsError when n is not a square)."""
    s = math.isqrt(n)
    if s * s != n:
        raise SparsenetsError(f"{n} inputs do not form a square image; pass height and width explicitly")
    return s
